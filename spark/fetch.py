"""An index committed at a URI (``recs.spark.store``) copied down into a local index directory.

``build-index --engine spark --out URI`` leaves an index that only its manifest defines: parts under
run names, the faiss files under ``indexes/<run>/``, dead runs' files beside them. Copying the prefix
(``hadoop fs -get``, ``aws s3 sync``) gives a directory that is not an index: its manifest is the
store's (``recs-index-store``), which every local reader refuses, and it may hold files of other
runs. ``fetch_index`` reads the committed manifest and copies exactly the files it names, through the
same Hadoop client that wrote them (``recs.spark.uri.download``; the session's Hadoop settings, so
``spark.hadoop.fs.s3a.*`` apply), into the layout of a local partitioned index (``recs.candidates.build``):

    candidates/<set>/part-00000.parquet ...    the set's files in the manifest's (query) order
    indexes/<target>.<score>[.shard-<i>].faiss the run's faiss files
    manifest.json                              format recs.index, the store's fields, ``fetched``
                                               (URI, run, when), every file's size and blake2b

Each copied file is checked against the size the store recorded (and a faiss file against its
hash), the new manifest against the index rules and each part's footer against the candidate schema,
before the directory is renamed into place (``atomic_dir``): a half-copied or foreign store is one
Error line, not an index. ``eval-hitrate --index URI`` and ``check URI`` read through a temporary
copy (``local_index``); ``recs fetch-index`` keeps one for ``recommend`` and ``serve``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from recs.artifacts import atomic_dir, fingerprint_file, preflight_artifact, record_files, write_manifest
from recs.candidates.build import INDEX_FORMAT, INDEX_VERSION
from recs.candidates.index_check import check_candidates_schema, check_index_manifest, part_file
from recs.errors import ArtifactError, ConfigError
from recs.names import is_safe_name, is_safe_relative_path
from recs.spark.store import MANIFEST, join, read_store_manifest
from recs.spark.uri import download, is_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FETCH_MASTER = "local[1]"  # a session only for its JVM's Hadoop client: no tasks run
# fields of a store manifest a local index keeps as they are
_KEPT = ("config", "engine", "method", "model", "training_catalogue_items", "catalogue_items", "timings")


@contextmanager
def hadoop_session(conf: Mapping[str, str] | None = None) -> Iterator[SparkSession]:
    """The active SparkSession, else a local one started for its Hadoop client (``FETCH_MASTER``), with
    ``conf`` (``--spark-conf``: credentials, endpoints) applied for the block."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise ConfigError("an index at a URI is read through Spark's Hadoop client: pip install 'recs[spark]' "
                          "(and Java 17+), or copy it to a local directory with recs fetch-index where it is") from None
    from recs.spark.session import active_session, session_settings, spark_session

    spark = active_session() or spark_session(FETCH_MASTER, conf)
    with session_settings(spark, conf or {}):
        yield spark


def _store_files(uri: str, manifest: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]], list[str]]:
    """(files record, set -> its part names, faiss file names) of a committed manifest, every name
    checked: it is read from a file anyone with write access to the store can edit."""
    where = join(uri, MANIFEST)
    record = manifest.get("files")
    sets = manifest.get("candidate_sets")
    if not isinstance(record, dict) or not isinstance(sets, dict) or not sets:
        raise ArtifactError(f"{where}: fields 'files' and 'candidate_sets' must be objects naming the index's files")
    parts: dict[str, list[str]] = {}
    for name, entry in sets.items():
        files = entry.get("files") if isinstance(entry, dict) else None
        if not is_safe_name(name) or not isinstance(files, list) or not files:
            raise ArtifactError(f"{where}: candidate set {name!r} must list its part files")
        parts[name] = files
    names = [f for files in parts.values() for f in files] + [f for f in record if f.startswith("indexes/")]
    for rel in names:
        if not is_safe_relative_path(rel):
            raise ArtifactError(f"{where}: names {rel!r}; index files are relative paths inside the store")
    return record, parts, [f for f in record if f.startswith("indexes/")]


def _copy(spark: SparkSession, uri: str, rel: str, dest: Path, recorded: Mapping[str, Any] | None) -> None:
    """Copy ``uri/rel`` to ``dest`` and compare it with the size (and hash) the store recorded."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    download(spark, join(uri, rel), dest)
    if not dest.is_file():
        raise ArtifactError(f"{join(uri, rel)}: named by {MANIFEST} but not a file there")
    if recorded is None:
        return  # a store written before sizes were recorded: the footer check below still reads it
    size = dest.stat().st_size
    if isinstance(recorded.get("bytes"), int) and size != recorded["bytes"]:
        raise ArtifactError(f"{join(uri, rel)}: {size:,} bytes, but {MANIFEST} recorded {recorded['bytes']:,}; the "
                            "store was changed after its commit: rebuild the index")
    if isinstance(recorded.get("blake2b"), str) and fingerprint_file(dest) != recorded["blake2b"]:
        raise ArtifactError(f"{join(uri, rel)}: its content differs from the blake2b {MANIFEST} recorded; the store "
                            "was changed after its commit: rebuild the index")


def fetch_index(spark: SparkSession, uri: str, out: str | Path) -> dict[str, Any]:
    """Copy the index committed at ``uri`` into the local index directory ``out`` (module doc); return
    the local manifest."""
    manifest = read_store_manifest(spark, uri, refusing="not an index written by recs build-index --out URI")
    if manifest is None:
        raise ArtifactError(f"{uri}: no index committed there ({MANIFEST} is missing); build one with "
                            "recs build-index --engine spark --out URI")
    record, parts, faiss_files = _store_files(uri, manifest)
    run = manifest.get("store", {}).get("run")
    with atomic_dir(out, INDEX_FORMAT) as tmp:
        sets: dict[str, Any] = {}
        for name, files in parts.items():
            for i, rel in enumerate(files):
                local = tmp / part_file(name, i)
                _copy(spark, uri, rel, local, record.get(rel))
                try:
                    check_candidates_schema(local, pl.Schema(pl.read_parquet_schema(local)))
                except ArtifactError:
                    raise
                except Exception as e:  # not parquet at all
                    raise ArtifactError(f"{join(uri, rel)}: not a candidate parquet file "
                                        f"({str(e).strip().splitlines()[0]})") from None
            entry = {k: v for k, v in manifest["candidate_sets"][name].items() if k != "files"}
            sets[name] = {**entry, "parts": len(files)}
        local_names = {}
        for rel in faiss_files:
            local_names[rel] = f"indexes/{rel.rsplit('/', 1)[-1]}"  # indexes/<run>/x.faiss -> indexes/x.faiss
            _copy(spark, uri, rel, tmp / local_names[rel], record[rel])
        indexes = manifest.get("indexes", {})
        for entry in indexes.values() if isinstance(indexes, dict) else ():
            for shard in entry.get("shards", []) if isinstance(entry, dict) else ():
                shard["file"] = local_names.get(shard.get("file"), shard.get("file"))
        fields = {k: manifest.get(k) for k in _KEPT}
        fetched = {"uri": uri, "run": run, "committed_utc": manifest.get("created_utc")}
        local_manifest = {**fields, "indexes": indexes, "candidate_sets": sets, "fetched": fetched}
        check_index_manifest(tmp, local_manifest)  # the rules every local reader applies, before the commit
        return write_manifest(tmp, INDEX_FORMAT, INDEX_VERSION, **local_manifest, files=record_files(tmp))


@contextmanager
def local_index(index: str | Path, conf: Mapping[str, str] | None = None) -> Iterator[Path]:
    """``index`` itself when it is a local directory; for a URI, a temporary local copy of the index
    committed there (``fetch_index``), removed when the block ends."""
    if not is_uri(str(index)):
        yield Path(index)
        return
    with hadoop_session(conf) as spark, tempfile.TemporaryDirectory(prefix="recs-fetched-") as d:
        local = Path(d) / "index"
        fetch_index(spark, str(index), local)
        yield local


def fetch_to_dir(uri: str, out: str | Path, conf: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``recs fetch-index``: ``out`` checked before anything is read (as every writer's), then fetched."""
    if not is_uri(uri):
        raise ArtifactError(f"{uri}: not a URI (s3a://, hdfs://, file://...); a local index directory needs no fetch")
    preflight_artifact(out, INDEX_FORMAT)
    with hadoop_session(conf) as spark:
        return fetch_index(spark, uri, out)
