"""How the ``dfstream`` command shows what the library says: the one place that decides.

Library code logs to the ``dfstream`` loggers (:mod:`logging`) and reports long work to a
:class:`~dfstream.engine.core.progress.Progress`; it never prints. The command picks one of
three styles, by what it is:

* ``plain`` (batch commands: replay, train, eval, index, ...): ``dfstream: message`` lines on
  stderr, written through tqdm so that they do not tear a progress bar, and progress bars
  (:class:`Bars`) on stderr when it is a terminal;
* ``timed`` (the call hook, a long-running server read by people): a timestamp, logger and
  level before each message;
* ``json`` (``serve``, read by log pipelines): one JSON object per line (:class:`JsonFormatter`),
  the structured fields of an event (``extra={"fields": {...}}``) included.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from tqdm import tqdm

from dfstream.engine.core.progress import Progress

LOGGER = "dfstream"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event and the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(time.time(), 3), "level": record.levelname.lower(), "event": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


class _TqdmHandler(logging.StreamHandler):
    """Writes through ``tqdm.write`` so that a line never lands inside a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # noqa: BLE001 - logging must not raise (logging.Handler.handleError reports it)
            self.handleError(record)


FORMATS = {"plain": "dfstream: %(message)s", "timed": "%(asctime)s %(name)s %(levelname)s %(message)s"}


def use_style(style: str, stream=None) -> logging.Handler:
    """Show the ``dfstream`` loggers' INFO and above on ``stream`` (stderr) in ``style`` (``plain``,
    ``timed`` or ``json``); returns the handler, for :func:`stop`."""
    stream = stream or sys.stderr
    handler = _TqdmHandler(stream) if style == "plain" else logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if style == "json" else logging.Formatter(FORMATS[style]))
    log = logging.getLogger(LOGGER)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    return handler


def stop(handler: logging.Handler) -> None:
    """Remove a handler :func:`use_style` added."""
    logging.getLogger(LOGGER).removeHandler(handler)


class _Bar:
    def __init__(self, bar: tqdm):
        self.bar = bar

    def advance(self, amount: float = 1) -> None:
        bar = self.bar
        if bar.total is not None and bar.n + amount > bar.total:  # files decode a few ms past their declared end
            bar.total = bar.n + amount
        bar.update(round(amount, 3) if isinstance(amount, float) else amount)

    def describe(self, text: str) -> None:
        self.bar.set_description_str(text)

    def close(self) -> None:
        self.bar.close()


class Bars:
    """:class:`~dfstream.engine.core.progress.Progress` as tqdm bars on stderr: ``show`` True always,
    False never, None (the default) when stderr is a terminal."""

    def __init__(self, show: bool | None = None):
        self.disable = None if show is None else not show

    def task(self, description: str, total: float | None = None, unit: str = "item") -> _Bar:
        seconds = unit == "media-s"
        fmt = (
            "{desc} {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} media-s [{elapsed}<{remaining}]"
            if seconds and total
            else None
        )
        bar = tqdm(
            total=round(total, 1) if seconds and total else total,
            desc=description,
            unit=unit,
            disable=self.disable,
            mininterval=0.5,
            leave=False,
            bar_format=fmt,
        )
        return _Bar(bar)


def progress(enabled: bool = True) -> Progress:
    """The command's progress display: bars on a terminal, or none (``--quiet``)."""
    return Bars(None if enabled else False)
