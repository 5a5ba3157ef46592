"""The block-overlapped build-index (issue 23) writes what the plain loop wrote, byte for byte.

``recs build-index`` now searches block i + 1 in a thread while block i's rows are made, writes each
block in another thread, hashes the tables as they are written and the faiss index in a thread
(``recs.overlap``). None of that may change an output: the candidate tables, the faiss index files
and the manifest's ``files`` record are compared here with the plain, one-after-the-other build
(``EmbeddingCandidates.overlap = False``, ``write_blocks`` as it was: one ``ParquetWriter`` on the
path, blocks written in turn) on many small blocks, so that the pipeline really overlaps.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import faiss
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

from recs.artifacts import _hash_file, record_files
from recs.candidates import base, build
from recs.candidates.build import build_index, load_candidates
from recs.candidates.embedding import EmbeddingCandidates
from recs.config import IndexConfig
from recs.overlap import HashingFile, ahead

from helpers import planted_small_model

# small blocks: the 20k-event model's ~1.5k queries per set become a dozen blocks in flight
CFG = IndexConfig(k=20, threads=1, batch_size=128)
SETS = ("click_to_cart", "cart_to_cart")


def plain_write_blocks(blocks, path: Path) -> None:
    """``write_blocks`` before issue 23: the blocks written in turn to a writer opened on the path."""
    writer = None
    try:
        for block in blocks:
            table = block.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("overlap")
    planted_small_model(d, 5)
    build_index(d / "model", d / "overlapped", CFG)
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(EmbeddingCandidates, "overlap", False)
        mp.setattr(build, "write_blocks", plain_write_blocks)
        build_index(d / "model", d / "plain", CFG)
    finally:
        mp.undo()
    return d


def test_tables_and_indexes_are_byte_identical(built: Path) -> None:
    plain, overlapped = built / "plain", built / "overlapped"
    files = sorted(p.relative_to(plain).as_posix() for p in plain.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(overlapped).as_posix() for p in overlapped.rglob("*") if p.is_file())
    for rel in files:
        if rel != "manifest.json":
            assert (plain / rel).read_bytes() == (overlapped / rel).read_bytes(), rel
    for index_file in (overlapped / "indexes").glob("*.faiss"):  # faiss's own bytes for that index
        again = built / f"again-{index_file.name}"
        faiss.write_index(faiss.read_index(str(index_file)), str(again))
        assert again.read_bytes() == index_file.read_bytes()
    for name in SETS:  # many row groups: the blocks, each in its place
        assert pq.ParquetFile(overlapped / "candidates" / f"{name}.parquet").num_row_groups > 5
        assert load_candidates(overlapped, name).equals(load_candidates(plain, name))


def test_manifest_records_the_bytes_written(built: Path) -> None:
    """The hashes taken while writing are the hashes of the files on disk (as ``recs check`` reads them),
    and the manifests agree on everything but the clock."""
    plain = json.loads((built / "plain" / "manifest.json").read_text())
    overlapped = json.loads((built / "overlapped" / "manifest.json").read_text())
    assert overlapped["files"] == plain["files"] == record_files(built / "overlapped")
    for key in ("created_utc", "timings"):
        plain.pop(key), overlapped.pop(key)
    assert overlapped == plain


def test_hashing_file_records_what_a_reread_finds(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    with HashingFile(path) as f:
        for chunk in (b"abc", bytearray(range(256)) * 5000, np.arange(1000, dtype=np.int64)):
            f.write(chunk)
    assert f.record() == {"bytes": path.stat().st_size, "blake2b": _hash_file(path)}
    pl.DataFrame({"x": range(10_000)}).write_parquet(tmp_path / "p.parquet")
    table = pq.read_table(tmp_path / "p.parquet")
    with HashingFile(tmp_path / "q.parquet") as sink, pq.ParquetWriter(sink, table.schema, compression="zstd") as w:
        w.write_table(table)
    reference = tmp_path / "r.parquet"
    with pq.ParquetWriter(reference, table.schema, compression="zstd") as w:
        w.write_table(table)
    assert (tmp_path / "q.parquet").read_bytes() == reference.read_bytes()
    assert sink.record()["blake2b"] == _hash_file(reference)


def test_ahead_keeps_order_errors_and_early_exit() -> None:
    threads = set()

    def numbers(n: int):
        for i in range(n):
            threads.add(threading.current_thread().name)
            yield i

    assert list(ahead(numbers(50))) == list(range(50))
    assert threads and threading.current_thread().name not in threads  # produced in the worker

    def failing():
        yield 1
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        for x in ahead(failing()):
            got.append(x)
    assert got == [1]

    closed = []

    def tracked():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    it = ahead(tracked())
    assert next(it) == 0
    it.close()  # the caller stops early: the source is closed, as a for loop would close it
    assert closed == [True]


def test_write_blocks_without_blocks_writes_nothing(tmp_path: Path) -> None:
    assert base.write_blocks(iter(()), tmp_path / "none.parquet") is None
    assert not (tmp_path / "none.parquet").exists()
