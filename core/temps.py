"""Temporaries beside an output: their names, and recovering what an interrupted run left.

Every temporary recs makes beside an output is named exactly ``.OUT.KIND-HOST-PID-XXXXXXXX[.suffix]``:
KIND says what it is (``tmp`` a file or directory being built, ``old`` an artifact moved aside during a
swap, ``bak`` a replaced file kept until a multi-file commit is done, ``work``/``corpus`` scratch
space), HOST is a short hash of the host name and PID the writer's process id. Recovery removes only
names of that exact form, written on this host by a process that is gone, so a user's own dot-files
and a running writer's temporaries (here, or on another host sharing the volume) are never touched;
an old artifact is put back, never deleted, while its path is empty.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

_KINDS = ("tmp", "old", "bak", "work", "corpus")
_HOST = hashlib.blake2b(socket.gethostname().encode(), digest_size=3).hexdigest()


def temp_name(out: Path, kind: str, suffix: str = "") -> Path:
    """A fresh sibling name ``.OUT.KIND-HOST-PID-XXXXXXXX[suffix]`` (see the module docstring)."""
    assert kind in _KINDS
    return out.parent / f".{out.name}.{kind}-{_HOST}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def _temp_re(out: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(out.name)}\.(?P<kind>{'|'.join(_KINDS)})-(?P<host>[0-9a-f]{{6}})-(?P<pid>\d+)"
                      rf"-[0-9a-f]{{8}}(?:{re.escape(out.suffix)})?$")


def _legacy_re(out: Path) -> re.Pattern[str]:
    """recs 0.1.0's mkdtemp/mkstemp names (8 characters of [a-z0-9_], no pid)."""
    return re.compile(rf"^\.{re.escape(out.name)}\.(?P<kind>tmp|old|work)-[a-z0-9_]{{8}}(?:{re.escape(out.suffix)})?$")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _is_recs_dir(path: Path) -> bool:
    """A directory recs 0.1.0 could have left: a recs artifact, half of one, or prepare's work files."""
    known = {"manifest.json", "tokens.parquet", "vectors_in.npy", "vectors_out.npy", "indexes", "candidates",
             "parsed.parquet", "x"}
    try:
        names = {p.name for p in path.iterdir()}
    except OSError:
        return False
    return all(n in known or n.startswith("sessions-") for n in names)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def kind_of(out: Path, p: Path) -> str | None:
    m = _temp_re(out).match(p.name) or _legacy_re(out).match(p.name)
    return m["kind"] if m else None


def leftovers(out: str | Path) -> list[Path]:
    """Temporaries of finished (dead) writers to ``out`` on this host: what an interrupted run left."""
    out = Path(out)
    pattern, legacy = _temp_re(out), _legacy_re(out)
    found = []
    with suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for p in out.parent.iterdir():
            if not p.name.startswith(f".{out.name}."):
                continue
            if m := pattern.match(p.name):
                if m["host"] == _HOST and not _pid_alive(int(m["pid"])):
                    found.append(p)
            elif legacy.match(p.name) and (p.is_file() or _is_recs_dir(p)):
                found.append(p)
    return sorted(found)


def restore(out: str | Path, is_artifact: Callable[[Path], bool]) -> str | None:
    """If ``out`` is missing and a dead writer's ``.old-`` sibling holds a whole artifact, a crash fell
    between the two renames of a swap: put it back. Touches nothing else (readers call this)."""
    out = Path(out)
    if out.exists():
        return None
    for p in leftovers(out):
        if kind_of(out, p) != "old":
            continue
        candidate = p / "x" if (p / "x").is_dir() else p  # recs 0.1.0 moved `out` to OLD/x
        if is_artifact(candidate):
            try:
                os.replace(candidate, out)
            except OSError:
                return None  # cannot restore here (read-only?): the artifact stays where it is, safe
            if candidate != p:
                remove_path(p)
            return f"restored {out} from {p.name} (an interrupted run had moved it aside)"
    return None


def recover(out: str | Path, is_artifact: Callable[[Path], bool] | None = None) -> list[str]:
    """Restore (``restore``) and then remove what interrupted runs to ``out`` left; one line per action."""
    out = Path(out)
    done = [note] if is_artifact is not None and (note := restore(out, is_artifact)) else []
    if not out.exists() and any(kind_of(out, p) == "old" for p in leftovers(out)):
        return done  # an old artifact that could not be put back is never deleted
    for p in leftovers(out):
        remove_path(p)
        done.append(f"removed {p.name} (left by an interrupted run)")
    return done


def makedirs(directory: Path) -> list[Path]:
    """Create missing parents; return those created (deepest last) so a failed run can remove them again."""
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    created: list[Path] = []
    for d in reversed(missing):
        os.mkdir(d)
        created.append(d)
    return created


def rmdirs(created: Sequence[Path]) -> None:
    """Remove directories ``makedirs`` created, deepest first, as far as they are empty."""
    for d in reversed(created):
        with suppress(OSError):
            d.rmdir()


def new_file(path: Path) -> None:
    """Create an empty file with the user's umask (mkstemp would make it 0600 and the result private)."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
