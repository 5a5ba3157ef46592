"""Self-describing artifacts, written atomically.

A model or index directory carries ``manifest.json`` (format name and version, parameters, input
fingerprint, counts, timings). Directories are built in a temporary sibling and renamed into place,
so an interrupted or failed run never leaves a half-written artifact where a later stage would read
it. Single files (split outputs, reports) go through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from recs._version import __version__
from recs.atomic import atomic_dir as _atomic_dir
from recs.atomic import describe_os_error, prepare_out
from recs.errors import ArtifactError, InputError, OutputError, RecsError
from recs.names import inside, is_safe_relative_path
from recs.paths import check_paths
from recs.temps import recover, restore

MANIFEST = "manifest.json"


def _hash_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """blake2b (16 bytes) of a file's bytes; an OSError is left to the caller, who knows whose file it is."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def fingerprint_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content hash of an input file (blake2b, 16 bytes), so an artifact names exactly what it was built from."""
    try:
        return _hash_file(path, chunk)
    except OSError as e:
        raise InputError(describe_os_error(e, path, doing="read")) from e


def fingerprint_members(root: str | Path, files: Iterable[str | Path], chunk: int = 1 << 20) -> str:
    """Hash of an input made of several files (a directory of parquet parts, a glob): blake2b over the
    sorted (path relative to ``root``, size, content hash) of each, so it changes when a member changes,
    appears, goes or is renamed, and not when the whole input is moved or listed in another order."""
    root = Path(root)
    rows = []
    for f in files:
        f = Path(f)
        try:
            rows.append((f.relative_to(root).as_posix(), f.stat().st_size, _hash_file(f, chunk)))
        except OSError as e:
            raise InputError(describe_os_error(e, f, doing="read")) from e
    return fingerprint_json(sorted(rows))


def fingerprint_json(obj: Any) -> str:
    """Hash of a JSON-ready object (a manifest), used to tie an index to the model it came from."""
    data = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _is_artifact_of(path: Path, kind: str) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("format") == kind
    except (OSError, ValueError, AttributeError):
        return False


def atomic_dir(out: str | Path, kind: str) -> AbstractContextManager[Path]:
    """A temporary directory that replaces ``out`` atomically on success (``recs.atomic.atomic_dir``);
    an existing ``out`` is replaced only if it is an artifact of the same ``kind`` or empty."""
    return _atomic_dir(out, kind, lambda p: _is_artifact_of(p, kind))


def preflight_artifact(out: str | Path, kind: str, inputs: Iterable[tuple[str, str | Path | None]] = ()) -> None:
    """Everything that can refuse ``out`` before minutes of work are spent: it is not an input, not
    the working directory, and replaceable (missing, empty or a ``kind`` artifact); leftovers of an
    interrupted run are restored or cleaned. Writability is proven by the caller's first temporary."""
    out = Path(out)
    check_paths(inputs, [("--out", out)], directories=True)
    prepare_out(out, kind, lambda p: _is_artifact_of(p, kind))


def recover_artifact(out: str | Path, kind: str) -> list[str]:
    """Restore or clean what an interrupted write of a ``kind`` artifact to ``out`` left behind."""
    return recover(out, lambda p: _is_artifact_of(p, kind))


def write_manifest(directory: Path, kind: str, version: int, **fields: Any) -> dict[str, Any]:
    """Write ``manifest.json``; the common header comes first so a person can read it at a glance."""
    manifest = {
        "format": kind,
        "format_version": version,
        "recs_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **fields,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n")
    return manifest


def read_manifest(directory: str | Path, kind: str, version: int | tuple[int, ...]) -> dict[str, Any]:
    """Read and check a manifest: right kind, a format version this recs reads (``version``: one, or
    the tuple of those it reads), or a clear ArtifactError."""
    versions = version if isinstance(version, tuple) else (version,)
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.exists():
        # A writer killed between the two renames of a swap (where the OS has no atomic exchange) left
        # the artifact beside its path; put it back rather than report it missing.
        # only puts it back; removing other leftovers is for the next writer
        restore(directory, lambda p: _is_artifact_of(p, kind))
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such {kind} directory")
    try:
        manifest = manifest_object(path)
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: no {MANIFEST}; not a {kind} directory (or an unfinished one)") from None
    if manifest.get("format") != kind:
        raise ArtifactError(f"{directory}: is a {manifest.get('format')!r} directory, expected {kind!r}")
    found = manifest.get("format_version")
    if isinstance(found, bool) or found not in versions:
        raise ArtifactError(
            f"{directory}: {kind} format version {found!r}, this recs reads version "
            f"{' or '.join(map(str, versions))}; rebuild it with this recs"
        )
    check_recorded_sizes(directory, manifest)
    return manifest


def json_type(value: Any) -> str:
    """How a JSON value reads in a message: ``a list``, ``null``, ``a string``."""
    if value is None:
        return "null"
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
             dict: "an object"}
    return names.get(type(value), type(value).__name__)


def manifest_object(path: Path) -> dict[str, Any]:
    """Parse ``manifest.json``, which must be a JSON object; anything else is an ArtifactError naming it.

    ``FileNotFoundError`` is left to the caller, whose message knows which kind of directory it expected.
    Any other OSError (permission denied, a directory named manifest.json) names the path and the reason.
    """
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except OSError as e:
        raise ArtifactError(describe_os_error(e, path, doing="read")) from None
    except ValueError as e:
        raise ArtifactError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: expected a JSON object (format, format_version, ...), got {json_type(manifest)}")
    return manifest


def record_files(directory: Path, hashed: Mapping[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The manifest's ``files`` field: ``{relative path: {"bytes": n, "blake2b": hex}}`` of every file in
    ``directory`` but the manifest.

    Call it on the temporary directory just before ``write_manifest``, so the record describes exactly
    the bytes that are renamed into place. Readers compare sizes on every load (a stat per file) and
    ``recs check`` compares hashes, so a file changed afterwards is noticed instead of scored.
    ``hashed``: records of files hashed as they were written (``recs.overlap.HashingFile``), by relative
    path; such a file is not read again (the large ones: candidate tables, faiss indexes), unless its
    size on disk is not the recorded one.
    """
    hashed = hashed or {}
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path != directory / MANIFEST:
            rel = path.relative_to(directory).as_posix()
            try:
                size = path.stat().st_size
                known = hashed.get(rel)
                record = dict(known) if known is not None and known["bytes"] == size else {
                    "bytes": size, "blake2b": _hash_file(path)}
            except OSError as e:  # a file this run has just written: a failure of the write, not of an input
                raise OutputError(describe_os_error(e, path, doing="read back the output")) from e
            files[rel] = record
    return files


def recorded_files(directory: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The checked ``files`` record of a manifest, or None for an artifact written before recs recorded it.

    Every name must be a plain relative path inside ``directory``: the record is read from a file
    anyone can edit, and its names are stat-ed and hashed.
    """
    if "files" not in manifest:
        return None
    path = directory / MANIFEST
    files = manifest["files"]
    if not isinstance(files, dict):
        raise ArtifactError(f"{path}: field 'files' must be an object of relative path -> "
                            f"{{bytes, blake2b}}, got {json_type(files)}")
    for rel, rec in files.items():
        if not is_safe_relative_path(rel):
            raise ArtifactError(f"{path}: field 'files' names {rel!r}; recorded files are relative paths of "
                                f"letters, digits, '.', '_' and '-' inside the directory")
        digest = rec.get("blake2b") if isinstance(rec, dict) else None
        size = rec.get("bytes") if isinstance(rec, dict) else None
        if not (isinstance(size, int) and not isinstance(size, bool) and size >= 0
                and isinstance(digest, str) and len(digest) == 32 and all(c in "0123456789abcdef" for c in digest)):
            raise ArtifactError(f"{path}: field 'files.{rel}' must be {{\"bytes\": n >= 0, \"blake2b\": 32 hex "
                                f"digits}}, got {rec!r}")
        inside(directory, rel, f"{MANIFEST} field 'files'")
    return files


def check_recorded_sizes(directory: Path, manifest: dict[str, Any]) -> None:
    """Compare each recorded file's size with the file's: a stat each, cheap enough for every read.

    A missing file is left to the reader that needs it (it names the file it cannot open); hashes are
    for ``recs check``, which reads every byte.
    """
    for rel, rec in (recorded_files(directory, manifest) or {}).items():
        path = directory / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            continue
        except OSError as e:
            raise ArtifactError(describe_os_error(e, path, doing="read")) from None
        if size != rec["bytes"]:
            raise ArtifactError(
                f"{path}: {size:,} bytes, but {MANIFEST} recorded {rec['bytes']:,}; the file was changed after "
                f"it was written: rebuild the artifact (recs check {directory} compares every file)"
            )


def verify_artifact(directory: str | Path) -> dict[str, Any]:
    """Compare every file of a model or index directory with the size and hash its manifest recorded.

    Reads every byte, so it is a command of its own (``recs check``) rather than part of every load.
    Returns ``directory``, ``format``, ``format_version``, ``recorded`` (False for an artifact written
    before recs recorded files: nothing to compare), ``ok`` and ``files``: one row per file with
    ``file``, ``bytes`` (on disk, None if missing), ``recorded_bytes`` and ``status``: ``ok``,
    ``mismatch`` (size or content differs), ``missing``, ``unreadable`` or ``not recorded`` (a file
    the manifest does not list: no reader opens it, so it is listed but not an error).
    """
    directory = Path(directory)
    if not directory.is_dir():
        what = "is a file, not a model or index directory" if directory.exists() else "no such directory"
        raise ArtifactError(f"{directory}: {what}")
    try:
        manifest = manifest_object(directory / MANIFEST)
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: no {MANIFEST}; not a recs model or index directory") from None
    kind = manifest.get("format")
    if not (isinstance(kind, str) and kind.startswith("recs.")):
        raise ArtifactError(f"{directory / MANIFEST}: field 'format' is {kind!r}; not a recs artifact")
    files = recorded_files(directory, manifest)
    rows: list[dict[str, Any]] = []
    for rel, rec in (files or {}).items():
        path = directory / rel
        row: dict[str, Any] = {"file": rel, "bytes": None, "recorded_bytes": rec["bytes"]}
        try:
            row["bytes"] = path.stat().st_size
            same = row["bytes"] == rec["bytes"] and fingerprint_file(path) == rec["blake2b"]
            row["status"] = "ok" if same else "mismatch"
        except FileNotFoundError:
            row["status"] = "missing"
        except (OSError, InputError):
            row["status"] = "unreadable"
        rows.append(row)
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory).as_posix()
        if path.is_file() and rel != MANIFEST and rel not in (files or {}):
            rows.append({"file": rel, "bytes": path.stat().st_size, "recorded_bytes": None, "status": "not recorded"})
    return {
        "directory": str(directory),
        "format": kind,
        "format_version": manifest.get("format_version"),
        "recorded": files is not None,
        "ok": all(r["status"] in ("ok", "not recorded") for r in rows),
        "files": rows,
    }


# ---- reading an artifact's files: any failure to parse is one ArtifactError -------------------------
#
# A file of a model or index can be damaged after it was written (a flipped block, an edited header)
# in ways its size does not show. The libraries that parse it then fail in their own words and types:
# polars' ComputeError "Invalid thrift" from a data page, numpy's SyntaxError or tokenize.TokenError
# from a .npy header, a ValueError, an OSError. Every reader funnels them through here, so the user
# sees one line naming the file and what to run, never a traceback.

def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def unreadable(path: str | Path, e: BaseException, directory: str | Path | None = None) -> ArtifactError:
    """The ArtifactError for a file of an artifact that could not be parsed: the file, the parser's
    first line, and ``recs check`` (which compares every byte with the manifest's record)."""
    directory = Path(directory) if directory is not None else Path(path).parent
    return ArtifactError(f"{path}: cannot be read ({type(e).__name__}: {_first_line(e)}); it is damaged or not "
                         f"what recs wrote: run `recs check {directory}` to compare every file with its manifest, "
                         "then rebuild it")


def read_artifact_file(path: str | Path, read: Callable[[Path], Any], directory: str | Path | None = None) -> Any:
    """``read(path)``, with any failure to parse it (any Exception but a RecsError, which already says
    what is wrong) turned into ``unreadable``. A missing file is named as missing."""
    path = Path(path)
    try:
        return read(path)
    except RecsError:
        raise
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing; the artifact is incomplete: run `recs check "
                            f"{directory if directory is not None else path.parent}` and rebuild it") from None
    except Exception as e:  # any parser's failure on a damaged file, whatever its type
        raise unreadable(path, e, directory) from None


def _damaged_file(directory: Path) -> Path | None:
    """The first file of ``directory`` that differs from its manifest's record, if the record says so."""
    try:
        report = verify_artifact(directory)
    except (RecsError, OSError):
        return None
    bad = [r["file"] for r in report["files"] if r["status"] in ("mismatch", "missing", "unreadable")]
    return directory / bad[0] if bad else None


@contextmanager
def reading_artifact(directory: str | Path) -> Iterator[None]:
    """A block that reads an artifact's files lazily (a polars scan collected far from where it was
    opened). A failure in it is blamed on the artifact only when the artifact is in fact damaged (a
    file differs from the manifest's record: that file is named) or the failure is a parser's (polars,
    OSError, ValueError); anything else is a bug of ours and propagates as it is."""
    import polars as pl  # here, not at the top: ``recs.artifacts`` is imported by light modules

    directory = Path(directory)
    try:
        yield
    except RecsError:
        raise
    except Exception as e:
        culprit = _damaged_file(directory)
        if culprit is not None:
            raise unreadable(culprit, e, directory) from None
        if isinstance(e, (pl.exceptions.PolarsError, OSError, ValueError, SyntaxError)):
            raise unreadable(directory, e, directory) from None
        raise
