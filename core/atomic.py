"""Atomic, crash-safe, all-or-nothing writes: the one place recs puts bytes where a user will read them.

Three promises, each kept here rather than at every call site:

* **Nothing half-written.** Every output is built under a temporary name beside its final path (same
  directory, so the final step is a rename on one file system) and appears only when it is complete.
  A command with several outputs (``split --train --test --json``) stages all of them and renames them
  only when every one succeeded; a failure in the rename phase puts back what was there before.
* **Crash-safe replacement of an artifact directory.** Where Linux offers ``renameat2(RENAME_EXCHANGE)``
  the new directory and the old one swap places in one atomic step, so ``out`` always names a whole
  artifact, old or new, whatever kills the process. Elsewhere the swap is two renames, and the next run
  to the same ``out`` puts the old artifact back if a crash fell between them (``recover``).
* **The user's files are never touched** and outputs are ordinary files: an output that resolves to an
  input, two outputs that resolve to one path, or a directory that is not a recs artifact are refused
  before anything is read; temporaries are created with the user's umask (not ``mkstemp``'s 0600), so
  teammates and servers can read results as they read any other file.

Temporaries carry the writer's process id (``.NAME.tmp-PID-XXXX``); ``recover`` removes those of
processes that are gone and leaves a running writer's alone.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from recs.errors import ArtifactError, ConfigError, OutputError

# Kinds of temporaries recs leaves beside an output while it works (prepare's work dir, training corpus).
_TEMP_KINDS = ("tmp", "old", "bak", "work", "corpus")
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|bak|work|corpus)-(?P<pid>\d+)-[0-9a-z]+(?P<rest>.*)$")
# Layout of recs <= 0.1.0: mkdtemp/mkstemp names without a pid (random suffix only).
_LEGACY_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|work)-[A-Za-z0-9_]{8}(?P<rest>.*)$")

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def describe_os_error(e: OSError, path: str | Path | None = None, doing: str = "write") -> str:
    """One line naming the path and the reason, e.g. ``runs/x: cannot write (Permission denied)``."""
    where = e.filename if e.filename is not None else path
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno == errno.EBUSY:
        reason += "; is it the current directory or a mount point?"
    return f"{where}: cannot {doing} ({reason})"


def output_error(e: OSError, path: str | Path | None = None) -> OutputError:
    return OutputError(describe_os_error(e, path))


def temp_name(out: Path, kind: str, suffix: str = "") -> Path:
    """A fresh sibling name ``.OUT.KIND-PID-XXXXXXXX[suffix]``; the pid lets ``recover`` tell stale from live."""
    assert kind in _TEMP_KINDS
    return out.parent / f".{out.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{suffix}"


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


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with suppress(FileNotFoundError):
            path.unlink()


def leftovers(out: str | Path) -> list[Path]:
    """Temporaries of finished (dead) writers to ``out``: what an interrupted run left behind."""
    out = Path(out)
    found = []
    with suppress(FileNotFoundError, NotADirectoryError, PermissionError):
        for p in out.parent.iterdir():
            if not p.name.startswith(f".{out.name}."):
                continue
            m = _TEMP_RE.match(p.name)
            if m:
                stale = m["name"] == out.name and not _pid_alive(int(m["pid"]))
            else:
                legacy = _LEGACY_RE.match(p.name)
                stale = bool(legacy and legacy["name"] == out.name)
            if stale:
                found.append(p)
    return sorted(found)


def recover(out: str | Path, is_artifact: Callable[[Path], bool] | None = None) -> list[str]:
    """Restore or clean what an interrupted run to ``out`` left; return what was done, one line each.

    If ``out`` is missing and a stale ``.old-`` sibling holds a whole artifact (``is_artifact``), a crash
    fell between the two renames of a swap: the old artifact is put back. Every other stale temporary
    (half-built ``.tmp-`` dirs, corpus files, prepare's work dirs, backups) is removed.
    """
    out = Path(out)
    done: list[str] = []
    stale = leftovers(out)
    if not out.exists() and is_artifact is not None:
        for p in stale:
            m = _TEMP_RE.match(p.name) or _LEGACY_RE.match(p.name)
            if not (m and m["kind"] == "old"):
                continue
            candidate = p / "x" if (p / "x").is_dir() else p  # recs 0.1.0 moved `out` to OLD/x
            if is_artifact(candidate):
                try:
                    os.replace(candidate, out)
                except OSError:
                    return done  # cannot restore here (read-only?): touch nothing, the artifact stays safe
                done.append(f"restored {out} from {p.name} (an interrupted run had moved it aside)")
                break
    for p in stale:
        if p.exists():
            _remove(p)
            done.append(f"removed {p.name} (left by an interrupted run)")
    return done


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the OS cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # kernel or file system without exchange: fall back to two renames
    raise OSError(err, os.strerror(err), str(b))


def check_not_cwd(out: Path, option: str = "--out", example: str = "runs/out") -> None:
    """Refuse an output directory that is the working directory or one of its parents (it cannot be swapped)."""
    here = Path.cwd().resolve()
    target = out.resolve()
    if target == here or target in here.parents:
        raise ConfigError(f"{option} {out}: is the current directory (or a parent of it); name a new directory, "
                          f"e.g. {option} {example}")


def enclosing_artifact(path: Path) -> Path | None:
    """The recs artifact directory (one with a recs manifest) that ``path`` lies inside, if any.

    An output there would be deleted without a word the next time that artifact is replaced.
    """
    for parent in path.absolute().parents:
        manifest = parent / "manifest.json"
        try:
            data = json.loads(manifest.read_text()) if manifest.is_file() else None
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and str(data.get("format", "")).startswith("recs."):
            return parent
    return None


def probe_writable(out: Path, option: str = "--out") -> None:
    """Fail now, not after minutes of work, when ``out`` cannot be written: its nearest existing parent is
    not a directory, or the OS refuses a file there (read-only, permissions, full inode table)."""
    parent = out.absolute().parent
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{option} {out}: {parent} is not a directory")
    probe = parent / f".recs-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        _new_file(probe)
    except OSError as e:
        raise OutputError(f"{option} {out}: cannot write in {parent} ({e.strerror or e})") from None
    probe.unlink()


def _same_or_inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents or a in b.parents


Named = Iterable[tuple[str, "str | Path | None"]]


def check_paths(inputs: Named, outputs: Named, directories: bool = False) -> None:
    """Refuse, before anything is read, an output that resolves to an input (or holds one, or sits inside
    one), two outputs that resolve to one path, an output inside a recs artifact, one that cannot be
    written, and (unless the outputs are ``directories``) one that is a directory. Pairs are
    (option name, path); None is skipped."""
    ins = [(o, Path(p), Path(p).resolve()) for o, p in inputs if p is not None]
    outs = [(o, Path(p), Path(p).resolve()) for o, p in outputs if p is not None]
    for i, (o_name, o_path, o_res) in enumerate(outs):
        for i_name, i_path, i_res in ins:
            if _same_or_inside(o_res, i_res):
                how = ("is also an input" if o_res == i_res else
                       "contains an input" if o_res in i_res.parents else "lies inside an input")
                raise ConfigError(f"{o_name} {o_path}: {how} ({i_name} {i_path}); write to another path, "
                                  "recs never overwrites its inputs")
        if not directories and o_path.is_dir():
            raise ConfigError(f"{o_name} {o_path}: is a directory; give a file path")
        inside = enclosing_artifact(o_path)
        if inside is not None:
            raise ConfigError(f"{o_name} {o_path}: lies inside the recs artifact {inside}, which is replaced whole "
                              "when it is rebuilt; write it somewhere else")
        probe_writable(o_path, o_name)
        for o2_name, o2_path, o2_res in outs[i + 1 :]:
            if o_res == o2_res:
                raise ConfigError(f"{o_name} {o_path} and {o2_name} {o2_path} are the same file; "
                                  "give each its own path")


def _makedirs(directory: Path) -> list[Path]:
    """Create missing parents; return those created (deepest last) so a failed run can remove them again."""
    created: list[Path] = []
    missing = []
    d = directory
    while not d.exists():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    for d in reversed(missing):
        os.mkdir(d)
        created.append(d)
    return created


def _rmdirs(created: Sequence[Path]) -> None:
    for d in reversed(created):
        with suppress(OSError):
            d.rmdir()


def _new_file(path: Path) -> None:
    """Create an empty file with the user's umask (mkstemp would make it 0600 and the result private)."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))


class Outputs:
    """Several output files written as one unit.

    ``stage(path)`` returns a temporary beside ``path`` (same suffix, so writers that pick a format by
    suffix work on it); ``commit()`` renames every staged file into place, and if one rename fails puts
    back the ones already done (the files they replaced are kept as hard links until the end).
    Used as a context manager it commits on success and removes every temporary on any error.
    """

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}
        self._created_dirs: list[Path] = []

    def stage(self, out: str | Path) -> Path:
        out = Path(out)
        if out in self._staged:
            return self._staged[out]
        if out.is_dir():
            raise OutputError(f"{out}: is a directory; give a file path")
        try:
            self._created_dirs += _makedirs(out.parent)
            if not out.parent.is_dir():
                raise OutputError(f"{out}: {out.parent} is not a directory")
            for p in leftovers(out):
                _remove(p)
            tmp = temp_name(out, "tmp", out.suffix)
            _new_file(tmp)
        except OSError as e:
            raise output_error(e, out) from None
        self._staged[out] = tmp
        return tmp

    def commit(self) -> list[Path]:
        done: list[tuple[Path, Path | None]] = []  # (out, backup of what it replaced)
        backup: Path | None = None
        try:
            for out, tmp in self._staged.items():
                backup = None
                if out.exists():
                    backup = temp_name(out, "bak")
                    os.link(out, backup)
                os.replace(tmp, out)
                done.append((out, backup))
        except OSError as e:
            if backup is not None and (not done or done[-1][1] is not backup):
                with suppress(OSError):
                    backup.unlink()  # the backup of the rename that failed: `out` still holds it
            for out, backup in reversed(done):
                with suppress(OSError):
                    if backup is not None:
                        os.replace(backup, out)
                    else:
                        out.unlink()
            self.abort()
            raise output_error(e) from None
        for _, backup in done:
            if backup is not None:
                with suppress(OSError):
                    backup.unlink()
        outs = list(self._staged)
        self._staged.clear()
        return outs

    def abort(self) -> None:
        for tmp in self._staged.values():
            with suppress(OSError):
                tmp.unlink()
        self._staged.clear()
        _rmdirs(self._created_dirs)
        self._created_dirs = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.commit()
        else:
            self.abort()
        if isinstance(exc, OSError):
            raise output_error(exc) from None


@contextmanager
def atomic_file(out: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; it becomes ``out`` only if the block succeeds."""
    with Outputs() as outputs:
        yield outputs.stage(out)


@contextmanager
def scratch_dir(out: str | Path, kind: str = "work") -> Iterator[Path]:
    """A working directory beside ``out`` (``.OUT.work-PID-XXXX``), removed when the block ends.

    Beside the output rather than in the system temp directory: it is on the output's file system (so
    large intermediate files do not fill /tmp), and if the process is killed it is where the next run
    to the same ``out`` finds and removes it (``recover``). Parents created for it are removed again
    if the block fails.
    """
    out = Path(out)
    created: list[Path] = []
    path = temp_name(out, kind)
    try:
        created = _makedirs(out.parent)
        for p in leftovers(out):
            if f".{kind}-" in p.name:
                _remove(p)
        os.mkdir(path)
    except OSError as e:
        _rmdirs(created)
        raise output_error(e, out) from None
    try:
        yield path
    except BaseException:
        _remove(path)
        _rmdirs(created)
        raise
    _remove(path)


@contextmanager
def writing(out: str | Path, outputs: Outputs | None = None) -> Iterator[Path]:
    """Where to write ``out``: a temporary staged in ``outputs`` (it appears with the command's other
    outputs) or, without ``outputs``, a file of its own that appears when the block succeeds."""
    if outputs is not None:
        yield outputs.stage(out)
    else:
        with atomic_file(out) as tmp:
            yield tmp


@contextmanager
def atomic_dir(out: str | Path, kind: str, is_artifact: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``out``; on success it replaces ``out`` in one atomic step.

    ``out`` may be missing, an empty directory or an artifact of the same ``kind`` (``is_artifact``);
    anything else is refused so recs never deletes a user's own files. Leftovers of an interrupted
    earlier run are restored or cleaned first (``recover``).
    """
    out = Path(out)
    check_not_cwd(out, example=f"runs/{kind.removeprefix('recs.')}")
    recover(out, is_artifact)
    if out.exists() and not (out.is_dir() and ((is_artifact and is_artifact(out)) or not any(out.iterdir()))):
        raise ArtifactError(f"{out}: exists and is not a {kind} directory; choose another --out or remove it")
    created: list[Path] = []
    tmp = temp_name(out, "tmp")
    try:
        created = _makedirs(out.parent)
        os.mkdir(tmp)  # 0777 & ~umask, like any directory the user makes
    except OSError as e:
        _rmdirs(created)
        raise output_error(e, out) from None
    try:
        yield tmp
        if out.exists():
            if _exchange(tmp, out):
                _remove(tmp)  # tmp now holds the old artifact
            else:
                old = temp_name(out, "old")
                os.replace(out, old)
                try:
                    os.replace(tmp, out)  # a crash between the two: the next run's `recover` puts `old` back
                except OSError:
                    os.replace(old, out)
                    raise
                _remove(old)
        else:
            os.replace(tmp, out)
    except BaseException as e:
        _remove(tmp)
        _rmdirs(created)
        if isinstance(e, OSError):
            raise output_error(e, out) from None
        raise
