"""Progress reporting without printing from the library.

Library functions take a ``Progress`` and call ``progress.stage(...)``; the CLI passes a
``TqdmProgress``, the Python API defaults to ``NullProgress``. This keeps long stages visible to a
user at the terminal while the library itself stays silent.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any, Protocol


class Bar(Protocol):
    def update(self, n: int = 1) -> object: ...


class Progress(Protocol):
    def stage(self, name: str, total: int | None = None, unit: str = "it") -> AbstractContextManager[Bar]: ...


class _NullBar:
    def update(self, n: int = 1) -> None:
        return None


class NullProgress:
    """Reports nothing."""

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Bar]:
        yield _NullBar()


class _CountingBar:
    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


# a stage without a total shows its time, not "0it", until it counts something
_UNCOUNTED = "{desc}: {elapsed}"


class _TerminalBar:
    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        if self.bar.bar_format == _UNCOUNTED:
            self.bar.bar_format = None  # tqdm's own format: count, time and rate
        self.bar.update(n)


def plural(unit: str, count: int) -> str:
    """``1 epoch``, ``5 epochs``, ``2 queries``: units are English words, read in logs by people."""
    if count == 1 or unit.endswith("s"):
        return unit
    return unit[:-1] + "ies" if unit.endswith("y") and unit[-2:-1] not in "aeiou" else unit + "s"


def stage_line(name: str, seconds: float, count: int | None = None, unit: str = "it") -> str:
    """``training: 5 epochs in 12.3 s``, or ``write: 0.4 s`` for a stage that counted nothing."""
    if count is None:
        return f"{name}: {seconds:.1f} s"
    return f"{name}: {count:,} {plural(unit, count)} in {seconds:.1f} s"


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class TqdmProgress:
    """Stage progress on stderr, so stdout stays clean for tables and JSON.

    Each stage writes one plain line when it ends, with its count and time: ``training: 5 epoch in
    12.3 s`` (a stage that counts nothing: ``write: 0.4 s``). On a terminal a tqdm bar shows the stage
    while it runs; anywhere else (CI, a log file, cron, a test runner) bars would be carriage returns
    and cursor codes, so there is only the line.
    A stage that ends in an error writes nothing; the error says what happened. ``enabled=False``
    (``--quiet``) writes nothing at all.
    """

    def __init__(self, enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.enabled = enabled
        self._stream = stream

    @property
    def stream(self) -> IO[str]:
        # looked up on use, not at construction: a test runner may swap sys.stderr in between
        return self._stream if self._stream is not None else sys.stderr

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Bar]:
        if not self.enabled:
            yield _NullBar()
            return
        stream = self.stream
        start = time.perf_counter()
        if _is_terminal(stream):
            from tqdm.auto import tqdm

            # the live bar goes when the stage ends, and the stage's line takes its place
            bar = tqdm(total=total, desc=name, unit=unit, leave=False, dynamic_ncols=True, file=stream,
                       bar_format=_UNCOUNTED if total is None else None)
            try:
                yield _TerminalBar(bar)  # an exception propagates from here and skips the line
            finally:
                bar.close()
            line = stage_line(name, time.perf_counter() - start, bar.n if bar.n or total is not None else None, unit)
            tqdm.write(line, file=stream)  # above any bar still running (compare's outer stage)
            return
        counter = _CountingBar()
        yield counter  # an exception propagates from here and skips the line
        count = counter.n if counter.n or total is not None else None
        stream.write(stage_line(name, time.perf_counter() - start, count, unit) + "\n")
        stream.flush()


class LoggingProgress:
    """Stage progress as log records of the ``recs`` logger (or ``logger``), never printed.

    Each stage logs its start at DEBUG and, when it ends, the line ``TqdmProgress`` prints (``training: 5
    epochs in 12.3 s``) at ``level`` (INFO): what a caller sees depends on the logging it configured, as
    for any library (``logging.basicConfig(level=logging.INFO)`` shows the stages). A stage that ends in
    an error logs nothing more; the error says what happened."""

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO) -> None:
        self.logger = logger if logger is not None else logging.getLogger("recs")
        self.level = level

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Bar]:
        self.logger.debug("%s: started%s", name, f" ({total:,} {plural(unit, total)})" if total is not None else "")
        start = time.perf_counter()
        counter = _CountingBar()
        yield counter  # an exception propagates from here and skips the line
        count = counter.n if counter.n or total is not None else None
        self.logger.log(self.level, "%s", stage_line(name, time.perf_counter() - start, count, unit))
