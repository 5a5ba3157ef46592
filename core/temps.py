"""Temporaries beside an output: their names, and recovering what an interrupted run left.

Every temporary recs makes beside an output is named exactly ``.OUT.KIND-HOST-PID-XXXXXXXX[.suffix]``:
KIND says what it is (``tmp`` a file or directory being built, ``old`` an artifact moved aside during a
swap, ``bak`` a replaced file kept until a multi-file commit is done, ``plan`` the journal of a
multi-file commit, ``work``/``corpus`` scratch space), HOST is a short hash of the host name and PID
the writer's process id. Recovery removes only names of that exact form, written on this host by a
process that is gone, so a user's own dot-files and a running writer's temporaries (here, or on
another host sharing the volume) are never touched;
an old artifact is put back, never deleted, while its path is empty.

**The journal of a multi-file commit** (``split --train --test --json``, ``compare --json --report``,
``recommend --out --json``). Renaming several files into place is several steps, and a crash between
two of them would leave one output new and another old. So before the first rename the writer puts a
*plan* beside every output (``.OUT.plan-HOST-PID-XXXXXXXX``, JSON, written whole by a rename of its
own): every (temporary -> final) rename with the identity (device, inode, size, mtime) of the
finished temporary, and the ``bak`` copy of what each output replaced. A rename keeps a file's
identity, so a later look tells, entry by entry, whether the rename happened. Whoever next writes or
reads one of the outputs (``settle``) finds a dead writer's plan and

* **rolls forward** when every entry is either renamed already or still has its temporary (the usual
  case: the new files were complete and flushed before the plan was written), then removes the plan;
* **rolls back** otherwise (a temporary is gone and its output is not it: the commit had been undone
  half-way), putting every ``bak`` back over an output that is the new file.

A ``bak`` or temporary that a plan names is never swept as a leftover while that plan exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

try:
    import fcntl
except ImportError:  # not on Windows: settling a plan there is not guarded against a second settler
    fcntl = None  # type: ignore[assignment]

_KINDS = ("tmp", "old", "bak", "plan", "work", "corpus")
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
    """Temporaries of finished (dead) writers to ``out`` on this host: what an interrupted run left.

    A dead writer's plan, and every temporary and ``bak`` it names, is not a leftover while the plan
    could still be settled (``settle``): deleting them would lose the only way back to a consistent set."""
    out = Path(out)
    pattern, legacy = _temp_re(out), _legacy_re(out)
    found = []
    needed = _plan_paths(out)
    with suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for p in out.parent.iterdir():
            if not p.name.startswith(f".{out.name}."):
                continue
            if m := pattern.match(p.name):
                if m["host"] == _HOST and not _pid_alive(int(m["pid"])) and str(p.absolute()) not in needed:
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
    """Settle interrupted multi-file commits (``settle``), restore (``restore``) and then remove what
    interrupted runs to ``out`` left; one line per action."""
    out = Path(out)
    settled = settle(out)
    done = settled + ([note] if is_artifact is not None and (note := restore(out, is_artifact)) else [])
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


# ---- the journal of a multi-file commit (see the module docstring) ----------------------------------

PLAN_FORMAT = "recs.plan"


def identity(path: Path) -> list[int]:
    """What a rename keeps and a new file almost never repeats: device, inode, size, mtime (ns)."""
    st = os.stat(path, follow_symlinks=False)
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]


def _same(path: Path, ident: list[int]) -> bool:
    try:
        return identity(path) == ident
    except OSError:
        return False


def write_plan(entries: Sequence[Mapping[str, object]]) -> list[Path]:
    """Put the plan of a multi-file commit beside every output, each copy written whole (a temporary,
    flushed, then renamed), and return the copies. ``entries``: dicts of ``out``, ``tmp``, ``bak`` (or
    None when ``out`` did not exist) and ``ident`` (the finished temporary's ``identity``)."""
    outs = [Path(str(e["out"])) for e in entries]
    copies = [temp_name(o, "plan").absolute() for o in outs]
    text = json.dumps({"format": PLAN_FORMAT, "version": 1, "pid": os.getpid(), "entries": [dict(e) for e in entries],
                       "copies": [str(c) for c in copies]}, indent=1)
    written: list[Path] = []
    try:
        for o, copy in zip(outs, copies, strict=True):
            tmp = temp_name(o, "tmp")
            try:
                fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
                try:
                    os.write(fd, text.encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, copy)
            except BaseException:
                with suppress(FileNotFoundError):
                    tmp.unlink()
                raise
            written.append(copy)
        for parent in {c.parent for c in copies}:
            _fsync_dir(parent)
    except BaseException:
        remove_plan(written)
        raise
    return copies


def remove_plan(copies: Sequence[Path]) -> None:
    """Remove a plan's copies: the commit is settled."""
    for c in copies:
        with suppress(FileNotFoundError):
            c.unlink()


def _fsync_dir(directory: Path) -> None:
    with suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _dead_plans(out: Path) -> list[tuple[Path, dict]]:
    """Plans beside ``out`` whose writer is gone (this host), parsed; an unreadable one is skipped."""
    found = []
    pattern = _temp_re(out)
    with suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for p in out.parent.iterdir():
            m = pattern.match(p.name)
            if not m or m["kind"] != "plan" or m["host"] != _HOST or _pid_alive(int(m["pid"])):
                continue
            try:
                plan = json.loads(p.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(plan, dict) and plan.get("format") == PLAN_FORMAT:
                found.append((p, plan))
    return found


def _plan_paths(out: Path) -> set[str]:
    """Every path the dead writers' plans beside ``out`` name (their copies, temporaries and ``bak``s)."""
    names: set[str] = set()
    for _, plan in _dead_plans(out):
        names.update(plan.get("copies", []))
        for e in plan.get("entries", []):
            names.update(str(e[k]) for k in ("tmp", "bak") if e.get(k))
    return names


def roll_back(entries: list[dict]) -> None:
    """Undo a multi-file commit: each output that is its new file gets its ``bak`` back (or, if it
    did not exist before, goes); temporaries and ``bak``s still around are removed."""
    for e in entries:
        out, tmp, bak = Path(e["out"]), Path(e["tmp"]), Path(e["bak"]) if e.get("bak") else None
        if bak is not None and bak.exists():
            if _same(out, e["ident"]) or not out.exists():
                os.replace(bak, out)  # the new file (or nothing) is there: the old one comes back
            else:
                bak.unlink()  # `out` is still the old file (hard-linked to bak)
        elif bak is None and _same(out, e["ident"]):
            out.unlink()  # did not exist before the commit
        with suppress(FileNotFoundError):
            tmp.unlink()


def roll_forward(entries: list[dict]) -> bool:
    """Finish a multi-file commit if every entry can be: renamed already, or its temporary still there.
    False (nothing touched) when one cannot; raises OSError if a rename fails."""
    pending = []
    for e in entries:
        out, tmp = Path(e["out"]), Path(e["tmp"])
        if _same(out, e["ident"]):
            continue
        if not _same(tmp, e["ident"]):
            return False
        pending.append((tmp, out))
    for tmp, out in pending:
        os.replace(tmp, out)
    for e in entries:
        if e.get("bak"):
            with suppress(FileNotFoundError):
                Path(e["bak"]).unlink()
    return True


def settle(out: str | Path) -> list[str]:
    """Finish or undo every multi-file commit to ``out`` whose writer died mid-way, from its plan; one
    line per commit. Called by every writer of ``out`` before it writes and by readers before they read.
    Nothing is touched when the writer is alive or on another host. Two processes settling one plan at
    once (two readers started together) take turns on a lock of the plan's first copy; the second
    finds it gone and does nothing."""
    notes = []
    for path, plan in _dead_plans(Path(out)):
        first = Path(plan.get("copies", [str(path)])[0])
        try:
            fd = os.open(first, os.O_RDONLY)
        except OSError:
            continue  # settled by another process meanwhile (or not ours to read)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            if first.exists() and (note := _settle_plan(path, plan)):
                notes.append(note)
        finally:
            os.close(fd)
    return notes


def _settle_plan(path: Path, plan: dict) -> str | None:
    """Finish (or, when it cannot be finished, undo) one dead writer's commit; then its plan goes."""
    entries = plan.get("entries", [])
    outs = ", ".join(str(e["out"]) for e in entries)
    try:
        if roll_forward(entries):
            note = f"finished an interrupted commit of {outs} ({path.name})"
        else:
            roll_back(entries)
            note = f"undid an interrupted commit of {outs} ({path.name})"
    except OSError:
        try:
            roll_back(entries)
        except OSError:
            return None  # cannot settle it here (read-only?): the plan stays, and what it needs with it
        note = f"undid an interrupted commit of {outs} ({path.name})"
    remove_plan([Path(c) for c in plan.get("copies", [path])])
    with suppress(FileNotFoundError):
        path.unlink()
    return note
