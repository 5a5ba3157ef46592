"""``recs build-index --engine spark --out URI``: an index in an object store or HDFS, committed by its manifest.

An index directory on one machine is written in a temporary sibling and renamed into place: readers
see the old index or the new one, never half of one. Object stores have no rename (S3 copies every
byte, and not atomically across files), so an index at a URI is committed the way table formats
(Delta, Iceberg) commit: every file of a run is written under names of that run, and the manifest,
written last in one ``create`` (one PUT), names them. The manifest is the commit point:

    URI/manifest.json                                   the commit: format, counts, and every file below
                                                        with its size (and the faiss files' blake2b)
    URI/candidates/<set>/<run>/part-<i>-...parquet      written by Spark's executors, straight to the URI
    URI/indexes/<run>/<target>.<score>.faiss            built on the driver, copied up through Hadoop

- readers read the manifest, then exactly the files it lists (``candidate_uris``, ``read_candidates_at``);
  anything else below the URI (a dead run's parts, Spark's ``_SUCCESS``) is not part of the index;
- a run that dies before its manifest leaves files no manifest names; the next writer sweeps them after
  its own commit. It keeps the files of the manifest it replaced, so a reader that read that manifest
  a moment earlier still finds its files; the writer after it removes them. One writer at a time.

The candidate rows are the ones ``recs.spark.search`` writes for a local index (the same tasks), in
query order: part files sort by their partition number, and Spark writes none for an empty partition.

The other commands read local index directories; ``recs.spark.fetch`` copies a committed index down
into one (``recs fetch-index``, and ``eval-hitrate --index URI`` / ``check URI`` through a temporary one).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recs import __version__
from recs.artifacts import fingerprint_file, fingerprint_json
from recs.candidates.build import _check_pairs, _checked
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.index_check import set_name
from recs.candidates.registry import OURS
from recs.columns import Col
from recs.config import IndexConfig, IndexEngineConfig, config_dict
from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError, ConfigError
from recs.progress import NullProgress, Progress
from recs.sessions.files import is_skipped
from recs.spark.uri import delete, list_files, read_bytes, upload, write_bytes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

STORE_FORMAT = "recs-index-store"  # not "recs-index": a local reader must not take it for a directory index
STORE_VERSION = 1
MANIFEST = "manifest.json"


def join(uri: str, *parts: str) -> str:
    return "/".join([uri.rstrip("/"), *parts])


def read_store_manifest(spark: SparkSession, uri: str,
                        refusing: str = "refusing to replace it") -> dict[str, Any] | None:
    """The committed manifest at ``uri`` (None: nothing committed there yet). Something else at that
    name is refused (``refusing`` says what a writer or reader does not do with it) rather than
    overwritten: the URI may be another tool's."""
    data = read_bytes(spark, join(uri, MANIFEST))
    if data is None:
        return None
    try:
        manifest = json.loads(data)
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != STORE_FORMAT:
        raise ArtifactError(f"{join(uri, MANIFEST)}: not the manifest of a recs index store; {refusing}")
    return manifest


def candidate_uris(manifest: dict[str, Any], uri: str, name: str) -> list[str]:
    """The URIs of a candidate set's parts, in query order: exactly the files the manifest names."""
    sets = manifest["candidate_sets"]
    if name not in sets:
        raise ConfigError(f"{uri}: no candidate set {name!r}; it has {', '.join(sets)}")
    return [join(uri, f) for f in sets[name]["files"]]


def read_candidates_at(spark: SparkSession, uri: str, name: str) -> DataFrame:
    """A candidate set of the index committed at ``uri`` as a Spark DataFrame of its listed parts."""
    manifest = read_store_manifest(spark, uri)
    if manifest is None:
        raise ArtifactError(f"{uri}: no index committed here ({MANIFEST} is missing)")
    files = candidate_uris(manifest, uri, name)
    if not files:
        raise ArtifactError(f"{uri}: candidate set {name!r} has no rows")
    return spark.read.parquet(*files)


def _part_number(name: str) -> int:
    """Spark's partition number of a part (``part-00003-<job>.c000.zstd.parquet`` -> 3)."""
    return int(name.split("-")[1])


def _summary(spark: SparkSession, files: list[str]) -> dict[str, Any]:
    """items, rows and mean list length of a set (``recs.candidates.base.describe``'s fields), on Spark."""
    from pyspark.sql import functions as F

    if not files:
        return {"items": 0, "rows": 0, "mean_list_length": 0.0}
    row = spark.read.parquet(*files).agg(F.count(F.lit(1)).alias("rows"),
                                         F.count_distinct(Col.ITEM).alias("items")).first()
    rows, items = int(row["rows"]), int(row["items"])
    return {"items": items, "rows": rows, "mean_list_length": rows / items if items else 0.0}


def sweep(spark: SparkSession, uri: str, manifest: dict[str, Any], keep_runs: set[str]) -> list[str]:
    """Remove what no kept manifest names: run directories of other runs (dead or superseded twice) and
    files of the kept runs that are not index files (Spark's ``_SUCCESS``). Files recs did not lay out
    (anything outside ``candidates/<set>/<run>/`` and ``indexes/<run>/``) are left alone. Returns what went."""
    named = {f for s in manifest["candidate_sets"].values() for f in s["files"]} | set(manifest["files"])
    gone: list[str] = []
    for rel, _size in list_files(spark, uri):
        parts = rel.split("/")
        if parts[0] == "candidates" and len(parts) >= 4:
            run, top = parts[2], "/".join(parts[:3])
        elif parts[0] == "indexes" and len(parts) >= 3:
            run, top = parts[1], "/".join(parts[:2])
        else:
            continue
        if run not in keep_runs:
            if top not in gone:
                delete(spark, join(uri, top))
                gone.append(top)
        elif run == manifest["store"]["run"] and rel not in named:
            delete(spark, join(uri, rel))
            gone.append(rel)
    return gone


def build_index_at_uri(
    model_dir: str | Path, uri: str, cfg: IndexConfig | None = None, progress: Progress | None = None,
    engine: IndexEngineConfig | None = None,
) -> dict[str, Any]:
    """Our model's indexes and candidate sets for ``cfg.pairs``, written to ``uri`` and committed by the
    manifest (module doc); return the manifest."""
    from recs.spark.search import SparkSearch

    cfg = _checked(cfg)
    progress = progress or NullProgress()
    engine = engine or IndexEngineConfig(engine="spark")
    engine.validate()
    if engine.engine != "spark":
        raise ConfigError(f"--out {uri}: an index at a URI is written by Spark's executors; give --engine spark")
    model = EmbeddingModel.load(model_dir)
    gen = EmbeddingCandidates(index_config=cfg, model=model, progress=progress, name=OURS)
    _check_pairs(gen.interactions(), cfg, "the model")
    trained = model.manifest.get("counts", {}).get("items")  # catalogue reach's denominator, as build_index's
    run = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory(prefix="recs-store-") as local, \
            SparkSearch(engine, progress, Path(local) / "index", local_parts=False) as writer:
        spark = writer.spark
        previous = read_store_manifest(spark, uri)  # before any work: a foreign file there stops the run now
        tmp = Path(local) / "build"
        tmp.mkdir()
        timings: dict[str, float] = {}
        indexes = writer.write_indexes(tmp, gen, cfg.pairs, cfg.k, timings)
        sets: dict[str, Any] = {}
        recorded: dict[str, dict[str, Any]] = {}  # every file of the index: its size (faiss files: and hash)
        for source, target in cfg.pairs:
            name = set_name(source, target)
            t = time.perf_counter()
            rel = f"candidates/{name}/{run}"
            writer.write_set_at(gen, source, target, cfg.k, join(uri, rel))
            parts = sorted(((f, n) for f, n in list_files(spark, join(uri, rel)) if f.endswith(".parquet")
                            and not is_skipped(f.rsplit("/", 1)[-1])), key=lambda fn: _part_number(fn[0]))
            files = [f"{rel}/{f}" for f, _ in parts]
            recorded |= {f"{rel}/{f}": {"bytes": n} for f, n in parts}
            timings[f"search_{name}_s"] = time.perf_counter() - t
            sets[name] = {"source": source, "target": target, "files": files,
                          **_summary(spark, [join(uri, f) for f in files]), **gen.set_details(source, target)}
        for path in sorted((tmp / "indexes").rglob("*")):
            if path.is_file():
                rel = f"indexes/{run}/{path.relative_to(tmp / 'indexes').as_posix()}"
                upload(spark, path, join(uri, rel))
                recorded[rel] = {"bytes": path.stat().st_size, "blake2b": fingerprint_file(path)}
        for entry in indexes.values():  # the index files' names at the URI, where a local index has indexes/...
            for shard in entry.get("shards", []):
                shard["file"] = f"indexes/{run}/{Path(shard['file']).name}"
        manifest: dict[str, Any] = {
            "format": STORE_FORMAT, "format_version": STORE_VERSION, "recs_version": __version__,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "store": {"run": run, "previous_run": previous["store"]["run"] if previous else None,
                      "commit": f"{MANIFEST} is written last; the index is exactly the files it names"},
            "config": config_dict(cfg), "engine": writer.describe(),
            "method": {"name": gen.name, "config": gen.settings()},
            "model": {"path": str(model_dir), "fingerprint": fingerprint_json(model.manifest)},
            "training_catalogue_items": trained, "catalogue_items": trained,
            "indexes": indexes, "candidate_sets": sets, "timings": timings, "files": recorded,
        }
        write_bytes(spark, join(uri, MANIFEST), (json.dumps(manifest, indent=2, default=str) + "\n").encode())
        keep = {run} | ({previous["store"]["run"]} if previous else set())
        sweep(spark, uri, manifest, keep)
    return manifest
