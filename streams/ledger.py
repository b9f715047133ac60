"""Per-stream bookkeeping of ``dfstream serve``: which chunk comes next, which were done.

For every stream the ledger remembers the last sequence number and input
offset it handled, the sequence numbers it saw skipped (so that a late chunk is
told from a duplicate), and whether the stream has ended. It decides for each
chunk whether it is the stream's next one, the start of a new stream, a
redelivery of a chunk already done (after a worker took a partition over), a
duplicate or a late (out-of-order) arrival. The entry travels with the stream's
state in the state topic, as the JSON header :data:`HEADER`.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field

from dfstream.engine.core.types import Chunk
from dfstream.streams.kafka_contract import BadRecord

HEADER = "dfs-ledger"
MAX_SKIPPED = 1024


@dataclass
class Entry:
    """What the ledger knows of one stream."""

    partition: int
    last_seq: int = -1
    last_offset: int = -1
    skipped: set = field(default_factory=set)
    finished: bool = False

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "partition": self.partition,
                "last_seq": self.last_seq,
                "last_offset": self.last_offset,
                "skipped": sorted(self.skipped),
                "finished": self.finished,
            }
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Entry:
        d = json.loads(data)
        return cls(
            int(d["partition"]),
            int(d["last_seq"]),
            int(d["last_offset"]),
            {int(s) for s in d["skipped"]},
            bool(d["finished"]),
        )


class Ledger:
    """Sequencing of the streams of the partitions a worker owns.

    Ended streams are remembered (up to ``max_finished``, oldest forgotten first)
    so that a redelivered final chunk is recognised.
    """

    def __init__(self, max_finished: int = 100_000):
        self.entries: OrderedDict[str, Entry] = OrderedDict()
        self.max_finished = max_finished

    def admit(self, partition: int, offset: int, chunk: Chunk) -> str:
        """Classify ``chunk`` (read at ``offset``) and record it.

        Returns ``"next"``, ``"new"`` (a stream this worker has no state for, or
        one that ended and starts again at seq 0) or ``"redelivered"`` (handled
        before, at an offset not yet committed when its partition moved).
        Raises :class:`BadRecord` ``duplicate`` or ``out-of-order``.
        """
        entry = self.entries.get(chunk.stream_id)
        if entry is not None and offset <= entry.last_offset:
            return "redelivered"
        if entry is None or (entry.finished and (chunk.seq == 0 or chunk.seq > entry.last_seq)):
            entry = self.entries[chunk.stream_id] = Entry(partition)
            self.entries.move_to_end(chunk.stream_id)
            kind = "new"
        else:
            kind = "next"
        entry.last_offset = offset
        if chunk.seq <= entry.last_seq:
            if chunk.seq in entry.skipped:
                entry.skipped.discard(chunk.seq)
                raise BadRecord(
                    "out-of-order", f"seq {chunk.seq} of stream {chunk.stream_id!r} arrived after seq {entry.last_seq}"
                )
            raise BadRecord(
                "duplicate",
                f"seq {chunk.seq} of stream {chunk.stream_id!r} was already received (last seq {entry.last_seq})",
            )
        if chunk.seq > entry.last_seq + 1 and chunk.seq - entry.last_seq <= MAX_SKIPPED:
            entry.skipped.update(range(entry.last_seq + 1, chunk.seq))
            while len(entry.skipped) > MAX_SKIPPED:
                entry.skipped.discard(min(entry.skipped))
        entry.last_seq, entry.finished = chunk.seq, chunk.final
        self._trim()
        return kind

    def restore(self, stream_id: str, entry: Entry) -> None:
        self.entries[stream_id] = entry
        self._trim()

    def forget(self, partitions) -> list[str]:
        """Drop the streams of ``partitions``; returns their ids."""
        gone = [sid for sid, e in self.entries.items() if e.partition in partitions]
        for sid in gone:
            del self.entries[sid]
        return gone

    def _trim(self) -> None:
        finished = [sid for sid, e in self.entries.items() if e.finished]
        for sid in finished[: max(0, len(finished) - self.max_finished)]:
            del self.entries[sid]
