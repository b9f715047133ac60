"""The Kafka message contract and the serve ledger, without a broker."""

import json

import pytest

from dfstream.engine.core.types import Chunk
from dfstream.streams.kafka_contract import BadRecord, chunk_headers, dead_letter_headers, parse_record
from dfstream.streams.ledger import Entry, Ledger

LIMIT = 1000


def headers(seq="0", **extra):
    h = [] if seq is None else [("dfs-seq", str(seq).encode())]
    return h + [(k.replace("_", "-"), v.encode()) for k, v in extra.items()]


def test_parse_a_good_record():
    chunk = parse_record(
        b"cam/7", b"\x00" * 8, headers(3, dfs_t0="6.5", dfs_final="1", content_type="audio/wav"), LIMIT
    )
    assert chunk == Chunk("cam/7", 3, b"\x00" * 8, "audio/wav", 6.5, True)
    back = parse_record(b"cam/7", chunk.payload, chunk_headers(chunk), LIMIT)
    assert back == chunk


def test_defaults_without_optional_headers():
    chunk = parse_record(b"s", b"x", headers(0), LIMIT)
    assert (chunk.t0, chunk.final, chunk.content_type) == (None, False, "application/octet-stream")


@pytest.mark.parametrize(
    "key,value,hdrs,reason",
    [
        (None, b"x", headers(0), "no-stream-id"),
        (b"", b"x", headers(0), "no-stream-id"),
        (b"\xff\xfe", b"x", headers(0), "bad-header"),
        (b"s", b"x", headers(None), "bad-seq"),
        (b"s", b"x", headers("two"), "bad-seq"),
        (b"s", b"x", headers("1.5"), "bad-seq"),
        (b"s", b"x", headers(-1), "bad-seq"),
        (b"s", b"x" * (LIMIT + 1), headers(0), "too-large"),
        (b"s", b"x", headers(0, dfs_t0="soon"), "bad-header"),
        (b"s", b"x", headers(0, dfs_t0="nan"), "bad-header"),
        (b"s", b"x", headers(0, dfs_final="maybe"), "bad-header"),
        (b"s", b"x", headers(0) + headers(1), "bad-header"),
    ],
)
def test_contract_violations_have_reason_codes(key, value, hdrs, reason):
    with pytest.raises(BadRecord) as e:
        parse_record(key, value, hdrs, LIMIT)
    assert e.value.reason == reason


def test_dead_letter_keeps_headers_and_adds_the_error():
    original = headers(4, content_type="audio/wav") + [("dfs-error", b"old")]
    out = dead_letter_headers(original, "not-media", "garbage")
    assert out[:2] == original[:2]
    assert [v for k, v in out if k == "dfs-error"] == [b"not-media: garbage"]


def chunk(seq, final=False, sid="s"):
    return Chunk(sid, seq, b"", "audio/wav", None, final)


def test_ledger_sequencing():
    ledger = Ledger()
    assert ledger.admit(0, 10, chunk(0)) == "new"
    assert ledger.admit(0, 11, chunk(1)) == "next"
    assert ledger.admit(0, 11, chunk(1)) == "redelivered"  # an offset already handled
    with pytest.raises(BadRecord) as e:
        ledger.admit(0, 12, chunk(1))  # same seq at a new offset
    assert e.value.reason == "duplicate"
    assert ledger.admit(0, 13, chunk(4)) == "next"  # 2 and 3 skipped
    with pytest.raises(BadRecord) as e:
        ledger.admit(0, 14, chunk(2))
    assert e.value.reason == "out-of-order"
    with pytest.raises(BadRecord) as e:
        ledger.admit(0, 15, chunk(2))  # the late one again: now a duplicate
    assert e.value.reason == "duplicate"
    assert ledger.admit(0, 16, chunk(5, final=True)) == "next"
    assert ledger.admit(0, 16, chunk(5, final=True)) == "redelivered"
    assert ledger.admit(0, 17, chunk(0)) == "new"  # the id starts again
    assert ledger.admit(1, 3, chunk(2, sid="late-joiner")) == "new"
    with pytest.raises(BadRecord) as e:
        ledger.admit(1, 4, chunk(0, sid="late-joiner"))
    assert e.value.reason == "out-of-order"


def test_ledger_entry_round_trip_and_forget():
    ledger = Ledger()
    ledger.admit(2, 5, chunk(0, sid="a"))
    ledger.admit(2, 9, chunk(3, sid="a"))
    ledger.admit(1, 1, chunk(0, sid="b"))
    entry = Entry.from_json(ledger.entries["a"].to_json())
    assert entry == ledger.entries["a"] and entry.skipped == {1, 2}
    assert json.loads(entry.to_json())["last_offset"] == 9
    assert ledger.forget({2}) == ["a"] and list(ledger.entries) == ["b"]


def test_ledger_forgets_oldest_finished_streams_first():
    ledger = Ledger(max_finished=2)
    for i, sid in enumerate("abc"):
        ledger.admit(0, i, chunk(0, final=True, sid=sid))
    ledger.admit(0, 9, chunk(0, sid="open"))
    assert list(ledger.entries) == ["b", "c", "open"]
