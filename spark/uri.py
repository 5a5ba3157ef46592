"""Sessions at a Hadoop URI (``file://``, ``hdfs://``, ``s3a://``, ``abfs://``, ``gs://``): listed and
checked on the driver through Hadoop's FileSystem API, read by Spark's executors.

On a cluster the log is rarely on the driver's disk: it is in an object store or HDFS, which Spark
reads with the connectors on its classpath (``hadoop-aws`` for ``s3a://``, ...) and this Python
process cannot read at all. So for an input given as a URI everything the driver learns goes through
the JVM's Hadoop client, with the session's Hadoop configuration (credentials, endpoints,
``--spark-conf spark.hadoop.fs.s3a.*``):

- the members, by the rule of ``recs.sessions.files`` (a file; a directory's parquet files at any
  depth; a glob), Spark's skip rule on every component below the root, sorted by relative path;
- their footers, read through a Hadoop input stream (``HadoopFile``, a seekable file object pyarrow
  reads the footer from: the last bytes of each part, not its rows), so the checks are the ones
  ``read_sessions`` applies to local parts, with the same messages;
- the fingerprint, from the listing: (relative path, size, modification time) of every member.
  Reading every byte of an object-store log to hash it would cost as much as the job; a rewritten or
  added part changes its size or time, which is what an artifact's provenance needs to notice.

Members are kept as ``Path`` objects of the URI's path part (``/bucket/logs/dt=1/part-0.parquet``),
so partition parsing, run grouping and the footer-agreement checks are ``recs.sessions`` code as it
is; ``UriFiles.uri`` maps them back to the URI Spark reads and messages name.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import polars as pl

from recs.artifacts import fingerprint_json
from recs.errors import InputError
from recs.sessions.files import SKIP_RULE, SessionFiles, _check_partition_names, is_parquet_name, is_skipped

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# a scheme of two letters or more (``C:`` is a Windows drive, not a URI), then ``:``
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):")
_GLOB = re.compile(r"[*?\[{]")
FINGERPRINT_OF = "listing: relative path, size and modification time of each member"


def is_uri(path: str | Path) -> bool:
    """True for a Hadoop URI (``file:///x``, ``file:/x``, ``s3a://b/x``): read through Spark, not this process.
    A local file whose name merely looks like one (``day:1.parquet``) is that file."""
    return isinstance(path, str) and _SCHEME.match(path) is not None and not Path(path).exists()


def java_message(e: BaseException) -> str:
    """The Java exception behind a py4j error as one line (``FileNotFoundException: File ... does not exist``)."""
    java = getattr(e, "java_exception", None)
    text = str(java.toString()) if java is not None else str(e)
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return re.sub(r"^(?:[a-z0-9_$]+\.)+(?=[A-Z])", "", first)  # java.io.FileNotFoundException -> FileNotFoundException


def jvm(spark: SparkSession) -> Any:
    """The driver JVM's py4j view (``spark._jvm``): there is none over Spark Connect, so say which API needs it."""
    from recs.spark.session import require_classic

    require_classic(spark, "Hadoop's FileSystem API on the driver (spark._jvm), to list and check a URI input")
    return spark._jvm  # type: ignore[attr-defined]


def hadoop_fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """(FileSystem, qualified Path) of ``uri`` with the session's Hadoop configuration."""
    vm = jvm(spark)
    try:
        path = hadoop_path(vm, uri)
        # the session's Hadoop configuration: the context's plus the session's spark.hadoop.* (--spark-conf)
        hadoop_conf = spark._jsparkSession.sessionState().newHadoopConf()  # type: ignore[attr-defined]
        fs = path.getFileSystem(hadoop_conf)
        return fs, fs.makeQualified(path)
    except Exception as e:  # py4j's Py4JJavaError: no FileSystem for the scheme, bad authority, ...
        raise InputError(f"{uri}: cannot open its file system ({java_message(e)})") from None


def hadoop_path(vm: Any, uri: str) -> Any:
    """Hadoop's Path of ``uri``: an escaped URI (``file:///a%20b``, what ``Path.as_uri`` gives) is decoded;
    text that is not a valid URI (``s3a://b/my logs``, as Spark users type paths) is taken as written."""
    try:
        return vm.org.apache.hadoop.fs.Path(vm.java.net.URI(uri))
    except Exception:  # URISyntaxException: a raw space, a lone %
        return vm.org.apache.hadoop.fs.Path(uri)


@dataclass(frozen=True)
class Member:
    path: Path  # the URI's path part: what SessionFiles holds
    uri: str  # what Spark reads and messages name
    size: int
    mtime_ms: int


@dataclass(frozen=True)
class UriFiles:
    """A URI input's members (``SessionFiles`` over their path parts) and the URIs behind them."""

    source: SessionFiles
    members: tuple[Member, ...]

    def uri(self, path: Path) -> str:
        return self._by_path[path]

    @property
    def _by_path(self) -> dict[Path, str]:
        return {m.path: m.uri for m in self.members}

    def fingerprint(self) -> str:
        """Hash of the sorted (relative path, size, modification time) of the members (module doc)."""
        root = self.source.root
        return fingerprint_json(sorted((m.path.relative_to(root).as_posix(), m.size, m.mtime_ms)
                                       for m in self.members))


def _member(status: Any) -> Member:
    p = status.getPath()
    return Member(Path(str(p.toUri().getPath())), str(p.toString()), int(status.getLen()),
                  int(status.getModificationTime()))


def _root_path(uri_path: str) -> str:
    """The fixed leading directories of a glob's path part (``/logs`` for ``/logs/dt=*/x``)."""
    parts = PurePosixPath(uri_path).parts
    n = next((i for i, p in enumerate(parts) if _GLOB.search(p)), len(parts))
    return str(PurePosixPath(*parts[:n])) if n else "/"


def list_uri(spark: SparkSession, given: str) -> UriFiles:
    """The members of the input at URI ``given`` by ``recs.sessions.files``' rule, listed by Hadoop."""
    fs, path = hadoop_fs(spark, given)
    try:
        if _GLOB.search(str(path.toUri().getPath())):
            found = fs.globStatus(path)
            hits = list(found) if found is not None else []
            root = _root_path(str(path.toUri().getPath()))
            if not hits:
                raise InputError(f"{given}: no file matches this pattern ({SKIP_RULE})")
        else:
            status = fs.getFileStatus(path)
            if status.isFile():
                m = _member(status)
                src = SessionFiles(given, m.path.parent, (m.path,), single=True)
                return UriFiles(src, (m,))
            hits, root = [status], str(path.toUri().getPath())
        members: dict[Path, Member] = {}
        for hit in hits:
            if hit.isFile():
                m = _member(hit)
                members[m.path] = m
                continue
            it = fs.listFiles(hit.getPath(), True)  # recursive; skipped names are filtered below
            while it.hasNext():
                m = _member(it.next())
                members[m.path] = m
    except InputError:
        raise
    except Exception as e:  # FileNotFoundException, AccessDeniedException, an unreachable store
        raise InputError(f"{given}: cannot list it ({java_message(e)})") from None
    root_path = Path(root)
    kept = [m for p, m in members.items() if not any(is_skipped(n) for n in p.relative_to(root_path).parts)]
    kept.sort(key=lambda m: m.path.relative_to(root_path).parts)
    if not kept:
        raise InputError(f"{given}: no parquet files below this URI ({SKIP_RULE})")
    for m in kept:
        if not is_parquet_name(m.path):
            raise InputError(f"{m.uri}: not a parquet file in the sessions input {given}; a directory or glob is "
                             f"read as parquet parts (.parquet, .pq; {SKIP_RULE})")
    _check_partition_names([m.path for m in kept], root_path)
    return UriFiles(SessionFiles(given, root_path, tuple(m.path for m in kept), single=False), tuple(kept))


class HadoopFile(io.RawIOBase):
    """A read-only, seekable file object over a Hadoop input stream, for pyarrow's footer reader.

    Bytes cross py4j as ``byte[]`` return values (commons-io's ``IOUtils.toByteArray``, on Spark's
    classpath); pyarrow asks for the last few kilobytes of a part, so this is a handful of calls per file.
    """

    def __init__(self, spark: SparkSession, member: Member) -> None:
        super().__init__()
        fs, path = hadoop_fs(spark, member.uri)
        self._vm = jvm(spark)
        self._stream = fs.open(path)
        self._size = member.size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        self._stream.seek(self._pos)
        data = bytes(self._vm.org.apache.commons.io.IOUtils.toByteArray(self._stream, n))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


def uri_schema(spark: SparkSession, member: Member) -> dict[str, pl.DataType]:
    """A part's columns from its footer, read through Hadoop (the polars types ``read_parquet_schema`` gives)."""
    import pyarrow.parquet as pq

    if member.size == 0:
        raise InputError(f"{member.uri}: is empty (0 bytes), not a parquet file")
    try:
        with HadoopFile(spark, member) as f:
            schema = pq.read_schema(f)
    except InputError:
        raise
    except Exception as e:  # pyarrow's ArrowInvalid (not parquet, truncated) or a py4j read error
        why = java_message(e) if hasattr(e, "java_exception") else str(e).strip().splitlines()[0]
        raise InputError(f"{member.uri}: cannot read it as parquet ({why})") from None
    return dict(pl.from_arrow(schema.empty_table()).schema)  # type: ignore[union-attr]


# -- writing and reading whole files at a URI (the index store, recs.spark.store) -----------------------


def _io_error(uri: str, doing: str, e: BaseException) -> InputError:
    return InputError(f"{uri}: cannot {doing} ({java_message(e)})")


def read_bytes(spark: SparkSession, uri: str) -> bytes | None:
    """The bytes of the file at ``uri``, or None when there is none (a small file: a manifest)."""
    fs, path = hadoop_fs(spark, uri)
    try:
        if not fs.exists(path):
            return None
        stream = fs.open(path)
        try:
            return bytes(jvm(spark).org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
    except Exception as e:
        raise _io_error(uri, "read it", e) from None


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Create or replace the file at ``uri`` with ``data`` in one ``create(overwrite)``: on an object store
    one PUT, which readers see whole or not at all (the commit point of recs.spark.store)."""
    fs, path = hadoop_fs(spark, uri)
    try:
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
    except Exception as e:
        raise _io_error(uri, "write it", e) from None


def upload(spark: SparkSession, local: Path, uri: str) -> None:
    """Copy the local file ``local`` to ``uri`` (Hadoop's copyFromLocalFile, overwriting)."""
    fs, path = hadoop_fs(spark, uri)
    try:
        fs.copyFromLocalFile(False, True, jvm(spark).org.apache.hadoop.fs.Path(f"file://{local.resolve()}"), path)
    except Exception as e:
        raise _io_error(uri, f"copy {local.name} there", e) from None


def download(spark: SparkSession, uri: str, local: Path) -> None:
    """Copy the file or directory tree at ``uri`` to the local path ``local`` (Hadoop's copyToLocalFile,
    through the raw local file system: no ``.crc`` files beside the copies)."""
    fs, path = hadoop_fs(spark, uri)
    try:
        fs.copyToLocalFile(False, path, jvm(spark).org.apache.hadoop.fs.Path(f"file://{local.resolve()}"), True)
    except Exception as e:
        raise _io_error(uri, f"copy it to {local}", e) from None


def list_files(spark: SparkSession, uri: str) -> list[tuple[str, int]]:
    """(path relative to ``uri``, size) of every file below the directory ``uri``; empty when it is absent."""
    fs, path = hadoop_fs(spark, uri)
    base = str(path.toUri().getPath()).rstrip("/")
    out = []
    try:
        if not fs.exists(path):
            return []
        it = fs.listFiles(path, True)
        while it.hasNext():
            status = it.next()
            out.append((str(status.getPath().toUri().getPath())[len(base) + 1:], int(status.getLen())))
    except Exception as e:
        raise _io_error(uri, "list it", e) from None
    return sorted(out)


def delete(spark: SparkSession, uri: str) -> None:
    """Remove the file or directory tree at ``uri`` (nothing when it is absent)."""
    fs, path = hadoop_fs(spark, uri)
    try:
        fs.delete(path, True)
    except Exception as e:
        raise _io_error(uri, "delete it", e) from None
