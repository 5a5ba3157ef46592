"""Self-describing artifacts, written atomically.

A model or index directory carries ``manifest.json`` (format name and version, parameters, input
fingerprint, counts, timings). Directories are built in a temporary sibling and renamed into place,
so an interrupted or failed run never leaves a half-written artifact where a later stage would read
it. Single files (split outputs, reports) go through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recs import __version__
from recs.errors import ArtifactError, InputError

MANIFEST = "manifest.json"


def fingerprint_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content hash of a file (blake2b, 16 bytes), so an artifact names exactly what it was built from."""
    h = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror or e})") from e
    return h.hexdigest()


def fingerprint_json(obj: Any) -> str:
    """Hash of a JSON-ready object (a manifest), used to tie an index to the model it came from."""
    data = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _is_artifact_of(path: Path, kind: str) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("format") == kind
    except (OSError, ValueError, AttributeError):
        return False


@contextmanager
def atomic_dir(out: str | Path, kind: str) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``out``.

    An existing ``out`` is replaced only if it is an artifact of the same ``kind`` (a re-run); any
    other existing path is left alone and reported, so recs never deletes a user's own files.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and (_is_artifact_of(out, kind) or not any(out.iterdir()))):
        raise ArtifactError(f"{out}: exists and is not a {kind} directory; choose another --out or remove it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextmanager
def atomic_file(out: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; it becomes ``out`` only if the block succeeds."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent, suffix=out.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def read_manifest(directory: str | Path, kind: str, version: int) -> dict[str, Any]:
    """Read and check a manifest: right kind, right format version, or a clear ArtifactError."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such {kind} directory")
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: no {MANIFEST}; not a {kind} directory (or an unfinished one)") from None
    except ValueError as e:
        raise ArtifactError(f"{path}: not valid JSON ({e})") from None
    if manifest.get("format") != kind:
        raise ArtifactError(f"{directory}: is a {manifest.get('format')!r} directory, expected {kind!r}")
    if manifest.get("format_version") != version:
        raise ArtifactError(
            f"{directory}: {kind} format version {manifest.get('format_version')!r}, this recs reads version "
            f"{version}; rebuild it with this recs"
        )
    return manifest
