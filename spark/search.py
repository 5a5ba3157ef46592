"""``recs build-index --engine spark``: our model's HNSW search in parallel Spark tasks.

What runs where:

* Driver: the target side and its HNSW index are built once per target, as on one machine
  (``recs.candidates.embedding`` / ``hnsw``), and written into the index directory as always
  (``indexes/<target>.<score>.faiss``). With ``--shards N`` the target rows are split into N
  contiguous ranges (``recs.candidates.shards.shard_bounds``) and each range gets an index of its own
  (``indexes/<target>.<score>.shard-<i>.faiss``), built and written one at a time, so neither the
  driver nor an executor ever holds more than one shard's graph.
* Shipping: the index files, and the target items in index order (a small parquet file), go to
  the executors through ``SparkContext.addFile`` (over Spark Connect: the session's file artifacts;
  each executor fetches a local copy once). Spark
  registers a shipped file by its name for the life of the context, so each build ships hard links
  with names unique to it, made in a scratch directory beside the output and removed afterwards.
* Executors: the query rows (row, item code, item id, vector) are a DataFrame, range-partitioned by
  row so partition i holds the i-th run of queries in order. ``mapInArrow`` runs one task per
  partition: it loads the index once (cached in the Python worker across tasks; of a sharded index
  one shard at a time), searches the partition's queries in batches (``search_shards``: every shard,
  top-k merged), turns ids into candidate rows with the single-machine code
  (``recs.candidates.base.candidate_block``) and the DataFrame writer writes each partition's rows as
  one parquet part. Part i of ``candidates/<set>/`` is partition i, so the table reads back in the
  single-machine row order.

Storage: the executors write their parts into the index directory's temporary sibling, so on a
cluster the output path must be on storage every node sees at the same path (NFS or similar), or
``--work-dir URI`` names a place every node reads and writes, where they write the parts and from
where the driver copies them down (``recs.spark.work``); with ``local[*]`` any path works. Off a local
master the location is proved with two tiny jobs before any index is built (``check_reach``), and
``--out URI`` (``recs.spark.store``) needs neither: the executors write the parts there.

The executors' Python must import recs (the same install as the driver's; a local master runs this
interpreter). The rest of the index (manifest, hashes, the atomic rename) is done by the driver as for
every index (``recs.candidates.build.write_index``).

Threads: faiss in each task uses ``spark.task.cpus`` threads, so tasks x threads matches the cores
Spark was given rather than oversubscribing them.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from recs.atomic import scratch_dir
from recs.candidates.base import candidate_block
from recs.candidates.build import write_faiss_indexes
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.hnsw import Hnsw, build_hnsw
from recs.candidates.index_check import part_file, set_name
from recs.candidates.scoring import query_side, target_side
from recs.candidates.shards import search_shards, shard_bounds
from recs.columns import Col
from recs.config import IndexConfig, IndexEngineConfig, parse_spark_conf
from recs.errors import OutputError
from recs.progress import Progress
from recs.spark.failures import spark_failures
from recs.spark.files import local_uri
from recs.spark.session import (
    default_parallelism,
    effective_settings,
    master_of,
    require_pyspark,
    ship_file,
    task_cpus,
)
from recs.spark.work import SparkWork, check_reach, needs_check

ENGINE = "spark"
WORK_HINT = ("on a cluster the executors write the candidate parts there, so it must be storage every node reads and "
             "writes: give --work-dir URI (hdfs://..., s3a://..., or a shared mount), or write the index to a URI "
             "(--out s3a://...)")
ROWS_PER_PARTITION = 50_000  # queries per task at most: a task holds its queries' top-k, n x (k+1) x 12 bytes
_ROW, _CODE, _VECTOR = "_row", "_code", "_vector"
_ARROW_CHUNK = 1 << 18  # query rows per Arrow chunk handed to Spark (x dim x 4 bytes: 200 MiB at dim 201)


@dataclass(frozen=True)
class Shard:
    """One shipped index: its SparkFiles name, first global target row, rows, MIPS norm bound."""

    file: str
    offset: int
    rows: int
    mips_norm2: float | None


@dataclass(frozen=True)
class TargetShipment:
    """Everything a task needs about one target: pickled into the task closure, so small (names, not data)."""

    shards: tuple[Shard, ...]
    targets_file: str  # parquet: item_id of the target rows, in index order


@dataclass(frozen=True)
class TaskSpec:
    target: TargetShipment
    width: int  # neighbours asked for: k + 1, or all target rows when fewer
    k: int
    index: IndexConfig  # ef_search, batch_size; threads = spark.task.cpus
    item_type: str  # "int" or "str": the Spark type of the id columns


class SparkSearch:
    """A ``recs.candidates.build.SetWriter``: our model's indexes built on the driver, searched by Spark.

    Use as a context manager around ``write_index`` (it is, in ``build_index``): entering starts or
    joins the Spark session and makes the scratch directory for shipped files; leaving removes it.
    ``work_dir``: ``--work-dir``, where the executors write the parts when the index's directory is not
    shared storage (``recs.spark.work``); ``local_parts=False`` for a writer whose parts go to a URI
    (``recs.spark.store``), which needs no shared directory and so no check of one.
    """

    def __init__(self, cfg: IndexEngineConfig, progress: Progress, out: str | Path, work_dir: str | None = None,
                 local_parts: bool = True) -> None:
        require_pyspark()  # before the model is read: a missing extra is one line, not a late traceback
        self.cfg = cfg
        self.progress = progress
        self.out = Path(out)
        self.work_dir = work_dir
        self.local_parts = local_parts
        self._work: SparkWork | None = None
        self._stack = ExitStack()
        self._spark: Any = None
        self._ship: Path | None = None
        self._shipped: dict[str, TargetShipment] = {}
        self._targets: dict[str, pl.Series] = {}  # target items in index order, kept on the driver

    def __enter__(self) -> SparkSearch:
        from recs.spark.session import session_settings, spark_session

        conf = parse_spark_conf(self.cfg.spark_conf)
        self._spark = spark_session(self.cfg.spark_master, conf, self.cfg.spark_remote)
        self._stack.enter_context(session_settings(self._spark, conf))
        self._ship = self._stack.enter_context(scratch_dir(self.out, "work"))
        self._work = self._stack.enter_context(SparkWork(self._spark, self._ship, self.work_dir, kind="index"))
        if self.local_parts and needs_check(self._spark):  # executors that may be elsewhere write the parts
            check_reach(self._work, self._work.where("the index's directory"), WORK_HINT)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self._ship = None
        self._work = None

    @property
    def spark(self) -> Any:
        if self._spark is None:
            raise RuntimeError("SparkSearch is used inside `with`")
        return self._spark

    def describe(self) -> dict[str, Any]:
        return {"name": ENGINE, "master": master_of(self.spark), "spark_version": self.spark.version,
                "default_parallelism": default_parallelism(self.spark), "shards": self.cfg.shards,
                "partitions": self.cfg.partitions,  # None: per set, from the queries (see _partitions)
                "spark_conf": effective_settings(self.spark, parse_spark_conf(self.cfg.spark_conf))}

    # -- driver: indexes -------------------------------------------------------------------------------

    def write_indexes(self, tmp: Path, gen: EmbeddingCandidates, pairs: Iterable[tuple[str, str]], k: int,
                      timings: dict[str, float]) -> dict[str, Any]:
        """The faiss index (or shards) of every target into ``tmp/indexes``, each shipped to the executors."""
        pairs = list(pairs)
        cfg = gen.index_config
        if self.cfg.shards == 1:  # the single-machine writer: the same file, built by the same code
            indexes = write_faiss_indexes(tmp, gen, pairs, k, timings)
            for target in indexes:
                built = gen.target_index(target)
                side, hnsw = built.side, built.hnsw
                rel = f"indexes/{target}.{cfg.score}.faiss"
                self._ship_target(target, tmp, side.items, [(rel, 0, len(side.items), hnsw.mips_norm2)])
            return indexes
        indexes: dict[str, Any] = {}
        (tmp / "indexes").mkdir()
        for target in dict.fromkeys(t for _, t in pairs):
            t = time.perf_counter()
            side = target_side(_model(gen), target, cfg)
            shards, record = [], []
            for i, (a, b) in enumerate(shard_bounds(len(side.items), self.cfg.shards)):
                hnsw = build_hnsw(side.vectors[a:b], cfg, unit=cfg.score == "cosine")
                rel = f"indexes/{target}.{cfg.score}.shard-{i}.faiss"
                _write_faiss_file(hnsw, tmp / rel)
                shards.append((rel, a, b - a, hnsw.mips_norm2))
                record.append({"file": rel, "offset": a, "rows": b - a, "mips_to_l2_norm2": hnsw.mips_norm2,
                               "ef_search": hnsw.effective_ef_search(cfg, min(k + 1, b - a))})
                del hnsw
            timings[f"index_{target}_s"] = time.perf_counter() - t
            self._ship_target(target, tmp, side.items, shards)
            indexes[target] = {"rows": len(side.items), "backoff_rows": side.backoff, "shards": record}
        return indexes

    def _ship_target(self, target: str, tmp: Path, items: pl.Series,
                     shards: list[tuple[str, int, int, float | None]]) -> None:
        """Hand the index files and the target items of ``target`` to Spark under names of this build."""
        assert self._ship is not None
        token = self._ship.name.rsplit("-", 1)[-1]  # unique to this build (the scratch directory's)
        shipped = []
        for rel, offset, rows, norm2 in shards:
            name = f"recs-{token}-{Path(rel).name}"
            _link(tmp / rel, self._ship / name)
            ship_file(self.spark, self._ship / name)
            shipped.append(Shard(name, offset, rows, norm2))
        targets = f"recs-{token}-{target}.targets.parquet"
        pl.DataFrame({Col.ITEM: items}).write_parquet(self._ship / targets)
        ship_file(self.spark, self._ship / targets)
        self._shipped[target] = TargetShipment(tuple(shipped), targets)
        self._targets[target] = items

    # -- executors: one candidate set ------------------------------------------------------------------

    def write_set(self, tmp: Path, gen: EmbeddingCandidates, source: str, target: str, k: int) -> int:
        """Search ``source`` queries against ``target``'s shipped index in Spark tasks and write the
        candidate rows as ``candidates/<set>/part-<i>.parquet``, one per query partition; return the
        number of parts."""
        name = set_name(source, target)
        if self._work is not None and self._work.remote:  # --work-dir: written there, copied down here
            rel = f"candidates-{name}"
            partitions, item_type = self.write_set_at(gen, source, target, k, self._work.spark_uri(rel))
            return _collect_parts(self._work.fetch(rel), tmp, name, partitions, item_type)
        staging = tmp / "candidates" / f".spark-{name}"
        partitions, item_type = self.write_set_at(gen, source, target, k, local_uri(staging))
        return _collect_parts(staging, tmp, name, partitions, item_type)

    def write_set_at(self, gen: EmbeddingCandidates, source: str, target: str, k: int, dest: str) -> tuple[int, str]:
        """Search as ``write_set`` does and have the executors write the parts straight to the directory
        URI ``dest`` (Spark's names: ``part-<partition>-<job>.c000.zstd.parquet``; none for an empty
        partition). Returns (query partitions, id type)."""
        cfg = gen.index_config
        src = query_side(_model(gen), source, cfg)
        gen.backoff_queries[(source, target)] = src.backoff  # the manifest's backoff_queries, as on one machine
        shipment, targets = self._shipped[target], self._targets[target]
        n_targets = len(targets)
        partitions = self._partitions(len(src.items))
        queries = self._queries(src.items, _own_target_rows(src.items, targets), src.vectors, partitions)
        cpus = task_cpus(self.spark)
        spec = TaskSpec(shipment, min(k + 1, n_targets), k, replace(cfg, threads=cpus),
                        "str" if src.items.dtype == pl.String else "int")
        with self.progress.stage(f"{source}->{target} on spark ({partitions} tasks)", total=len(src.items),
                                 unit="query") as bar, spark_failures(f"searching {source}->{target}", OutputError):
            (queries.mapInArrow(functools.partial(search_partition, spec), _out_schema(spec.item_type))
             .write.mode("error").option("compression", "zstd")
             .option("maxRecordsPerFile", 0)  # one file per partition whatever the session says: part i = partition i
             .parquet(dest))
            bar.update(len(src.items))
        return partitions, spec.item_type

    def _partitions(self, queries: int) -> int:
        """Query partitions: as configured, else enough for every core and at most ROWS_PER_PARTITION each."""
        if self.cfg.partitions is not None:
            return max(1, min(self.cfg.partitions, queries))
        wanted = max(default_parallelism(self.spark), math.ceil(queries / ROWS_PER_PARTITION))
        return max(1, min(wanted, queries))

    def _queries(self, items: pl.Series, codes: np.ndarray, vectors: np.ndarray, partitions: int) -> Any:
        """The query rows as a Spark DataFrame in ``partitions`` contiguous, ordered runs of rows."""
        n, dim = vectors.shape
        ids = items.to_arrow().cast(pa.string() if items.dtype == pl.String else pa.int64())
        chunks = []
        for a in range(0, n, _ARROW_CHUNK):  # list offsets are int32: chunks keep n x dim below 2**31 each
            b = min(n, a + _ARROW_CHUNK)
            flat = pa.array(np.ascontiguousarray(vectors[a:b], dtype=np.float32).reshape(-1))
            chunks.append(pa.table({
                _ROW: pa.array(np.arange(a, b, dtype=np.int64)),
                _CODE: pa.array(np.asarray(codes[a:b], dtype=np.int64)),
                Col.ITEM: ids.slice(a, b - a),
                _VECTOR: pa.ListArray.from_arrays(pa.array(np.arange(0, (b - a) * dim + 1, dim, dtype=np.int32)),
                                                  flat),
            }))
        df = self.spark.createDataFrame(pa.concat_tables(chunks))
        # range partitions keep rows in order: partition i is the i-th run of rows, so part i is too
        return df.repartitionByRange(partitions, _ROW).sortWithinPartitions(_ROW)


def _model(gen: EmbeddingCandidates) -> Any:
    gen.interactions()  # NotFittedError without a model
    return gen.model


def _own_target_rows(queries: pl.Series, targets: pl.Series) -> np.ndarray:
    """Per query item, the target row of the same item, or -1: the code ``candidate_block`` compares
    with the target rows' codes (their row numbers) to leave the item itself out of its list."""
    rows = pl.DataFrame({Col.ITEM: targets}).with_row_index(_CODE)
    return (pl.DataFrame({Col.ITEM: queries}).join(rows, on=Col.ITEM, how="left", maintain_order="left")[_CODE]
            .cast(pl.Int64).fill_null(-1).to_numpy())


def _write_faiss_file(hnsw: Hnsw, path: Path) -> None:
    try:
        faiss.write_index(hnsw.index, str(path))
    except RuntimeError as e:  # faiss reports a failed fwrite (disk full) as a RuntimeError
        raise OutputError(f"{path.name}: cannot write ({str(e).strip().splitlines()[0]})") from None


def _link(src: Path, dst: Path) -> None:
    """A second name for ``src`` (a hard link; a copy where links are not supported)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _out_schema(item_type: str) -> str:
    ids = "string" if item_type == "str" else "bigint"
    return f"{Col.ITEM} {ids}, {Col.CANDIDATE} {ids}, {Col.RANK} int, {Col.SCORE} float"


def _arrow_schema(item_type: str) -> pa.Schema:
    ids = pa.string() if item_type == "str" else pa.int64()
    return pa.schema([(Col.ITEM, ids), (Col.CANDIDATE, ids), (Col.RANK, pa.int32()), (Col.SCORE, pa.float32())])


def _collect_parts(staging: Path, tmp: Path, name: str, partitions: int, item_type: str) -> int:
    """Move Spark's ``part-<i>-<uuid>...parquet`` files to ``candidates/<name>/part-<i>.parquet``.

    Spark writes no file for an empty partition; an empty part with the table's schema stands in for
    it, so part i is always partition i and the count is the one the manifest records. Spark's
    ``_SUCCESS`` and checksum files go with the staging directory."""
    final = tmp / part_file(name, 0)
    final.parent.mkdir()
    files = sorted(staging.glob("part-*.parquet"))
    written = {int(p.name.split("-")[1]): p for p in files}
    if len(written) != len(files):
        raise OutputError(f"{staging}: Spark wrote more than one file for a partition ({len(files)} files)")
    for i in range(partitions):
        if i in written:
            os.replace(written[i], tmp / part_file(name, i))
        else:
            pq.write_table(_arrow_schema(item_type).empty_table(), tmp / part_file(name, i), compression="zstd")
    extra = sorted(set(written) - set(range(partitions)))
    if extra:
        raise OutputError(f"{staging}: Spark wrote parts {extra} beyond the {partitions} query partitions")
    shutil.rmtree(staging)
    return partitions


# -- executor side: runs in Spark's Python workers ------------------------------------------------------

_LOADED: dict[str, Any] = {}  # per Python worker, kept across tasks: the last index and target items


def _cached(kind: str, name: str, load: Any) -> Any:
    """One object of each kind per worker: a second target or shard replaces the first, so a worker
    holds one shard's graph at a time however many it searches."""
    key = f"{kind}:{name}"
    if key not in _LOADED:
        for old in [k for k in _LOADED if k.startswith(f"{kind}:")]:
            del _LOADED[old]
        _LOADED[key] = load(name)
    return _LOADED[key]


def _load_index(shard: Shard) -> Hnsw:
    from pyspark import SparkFiles

    return Hnsw(faiss.read_index(SparkFiles.get(shard.file)), shard.mips_norm2)


def _load_targets(name: str) -> pl.Series:
    from pyspark import SparkFiles

    return pl.read_parquet(SparkFiles.get(name))[Col.ITEM]


def search_partition(spec: TaskSpec, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One task of ``mapInArrow``: the candidate rows of one partition of query rows.

    The partition's queries are gathered first (small: ids and vectors), so each shard is loaded once
    per task and not once per Arrow batch; results are made and sent in blocks of the index batch size.
    """
    faiss.omp_set_num_threads(spec.index.threads)
    table = pa.Table.from_batches(list(batches))
    if table.num_rows == 0:
        return
    targets = _cached("targets", spec.target.targets_file, _load_targets)
    vectors = table.column(_VECTOR).combine_chunks()
    queries = vectors.flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, -1)
    items = pl.Series(Col.ITEM, table.column(Col.ITEM).combine_chunks())
    q_code = table.column(_CODE).to_numpy()
    shards = spec.target.shards
    one = len(shards) == 1

    def load(s: int) -> Hnsw:
        return _cached("index", shards[s].file, lambda _: _load_index(shards[s])) if one else _load_index(shards[s])

    scores, ids = search_shards(load, [s.offset for s in shards], [s.rows for s in shards], queries, spec.width,
                                spec.index)
    t_code = np.arange(len(targets), dtype=np.int64)  # a target row's code is its row (see _own_target_rows)
    schema = _arrow_schema(spec.item_type)
    for a in range(0, table.num_rows, spec.index.batch_size):
        b = min(table.num_rows, a + spec.index.batch_size)
        block = candidate_block(items, targets, ids[a:b], scores[a:b], q_code, t_code, spec.k, a)
        yield from block.to_arrow().cast(schema).to_batches()

