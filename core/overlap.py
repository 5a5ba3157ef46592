"""Overlapping a native library's work with the Python around it, without changing what is produced.

faiss (``index.search``), pyarrow (``write_table``), hashlib (``update`` on large buffers) and polars
release the GIL while they compute, so one stage of a pipeline can run in a thread while the caller
does the next: ``recs build-index`` searches block i + 1 while block i's candidate rows are made, and
writes block i - 1 (issue 23). Each stage stays sequential in itself, so the items come out in the
order and with the bytes of the plain loop; only their timing overlaps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
_END = object()


def ahead(items: Iterable[T], name: str = "recs-ahead") -> Iterator[T]:
    """``items``, each one produced in a worker thread while the caller works on the one before.

    One item ahead, never more (memory: two items). The source is advanced by one thread only, one
    step at a time, so a generator keeps its order and its thread-local state (faiss's OpenMP thread
    count, set in the generator, applies to the thread that searches). An exception of the source is
    raised here, where the plain loop would have raised it. If the caller stops early, the step in
    flight is waited for and the source is closed, as a ``for`` loop over it would close it.
    """
    source = iter(items)

    def step() -> Any:
        return next(source, _END)

    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    pending: Future[Any] | None = pool.submit(step)
    try:
        while pending is not None:
            item = pending.result()
            if item is _END:
                pending = None
                break
            pending = pool.submit(step)
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            wait([pending])  # the step in flight ends before the source is closed under it
        pool.shutdown(wait=True)
        close: Callable[[], None] | None = getattr(source, "close", None)
        if close is not None:
            close()


class HashingFile:
    """A binary file opened for writing that hashes (blake2b, 16 bytes, as ``recs.artifacts`` records)
    every byte as it is written, so the manifest's ``files`` record needs no second read of it.

    Enough of the file protocol for pyarrow's ``ParquetWriter`` and faiss's callback writer; bytes
    reach the file unchanged and in order, so the file is the one a path-based writer makes."""

    def __init__(self, path: str | Path) -> None:
        self._file = open(path, "wb")  # noqa: SIM115  (closed by close(), the writer's protocol)
        self._hash = hashlib.blake2b(digest_size=16)
        self._size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._file.write(view)
        self._size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        self._file.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._file.closed

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self) -> dict[str, Any]:
        """The ``files`` record of what was written: ``{"bytes": n, "blake2b": hex}``."""
        return {"bytes": self._size, "blake2b": self._hash.hexdigest()}


def file_record(path: str | Path, chunk: int = 1 << 22) -> dict[str, Any]:
    """The ``files`` record (``{"bytes": n, "blake2b": hex}``) of a file just written, read back: for a
    thread to take while the caller goes on (hashlib releases the GIL on large blocks)."""
    h = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return {"bytes": size, "blake2b": h.hexdigest()}


__all__ = ["HashingFile", "ahead", "file_record"]
