"""How long work says how far it is, without deciding how that is shown.

Library code (replay, training, the index, toy data, report rendering) takes a
:class:`Progress` and opens a :class:`Task` per piece of long work; the
application decides what a task looks like (a progress bar on a terminal,
nothing in a service: :mod:`dfstream.app.logs`). What is said rather than
counted goes to :mod:`logging` under the ``dfstream`` loggers. The default,
:data:`SILENT`, shows nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import Protocol


class Task(Protocol):
    """One piece of long work under way."""

    def advance(self, amount: float = 1) -> None:
        """``amount`` more units done."""

    def describe(self, text: str) -> None:
        """What is being done now (e.g. which file)."""

    def close(self) -> None:
        """The work is over (done or given up)."""


class Progress(Protocol):
    """Opens tasks; the application's implementation shows them."""

    def task(self, description: str, total: float | None = None, unit: str = "item") -> Task:
        """A task of ``total`` units (None: unknown), each a ``unit``."""


class _Silent:
    def task(self, description: str, total: float | None = None, unit: str = "item") -> _Silent:
        return self

    def advance(self, amount: float = 1) -> None:
        pass

    def describe(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


SILENT: Progress = _Silent()
"""Progress that shows nothing."""


def tracked(
    progress: Progress, items: Iterable, description: str, unit: str = "item", total: int | None = None
) -> Iterator:
    """``items``, one task unit each, as a task of ``progress`` (closed when the iteration ends)."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    task = progress.task(description, total, unit)
    try:
        for item in items:
            yield item
            task.advance()
    finally:
        task.close()
