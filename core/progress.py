"""Progress reporting without printing from the library.

Library functions take a ``Progress`` and call ``progress.stage(...)``; the CLI passes a tqdm-backed
one, the Python API defaults to ``NullProgress``. This keeps long stages visible to a user at the
terminal while the library itself stays silent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol


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


class TqdmProgress:
    """One tqdm bar per stage, on stderr, so stdout stays clean for tables and JSON."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    @contextmanager
    def stage(self, name: str, total: int | None = None, unit: str = "it") -> Iterator[Bar]:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=name, unit=unit, disable=not self.enabled, leave=True, dynamic_ncols=True)
        try:
            yield bar
        finally:
            bar.close()
