"""Atomic, crash-safe, all-or-nothing writes: the one place recs puts bytes where a user will read them.

Three promises, each kept here rather than at every call site:

* **Nothing half-written.** Every output is built under a temporary name beside its final path (same
  directory, so the final step is a rename on one file system) and appears only when it is complete
  and flushed to disk. A command with several outputs (``split --train --test --json``) stages all of
  them and renames them only when every one succeeded; a failure in the rename phase puts back what
  was there before.
* **Crash-safe replacement of an artifact directory.** Where Linux offers ``renameat2(RENAME_EXCHANGE)``
  the new directory and the old one swap places in one atomic step, so ``out`` always names a whole
  artifact, old or new, whatever kills the process. Elsewhere the swap is two renames, and the next
  reader or writer of ``out`` puts the old artifact back if a crash fell between them (``recover``).
  Files and directories are fsynced before the swap, so a power cut cannot leave a renamed artifact
  with empty files.
* **Temporaries are ours alone** (``recs.temps`` names them and recovers what interrupted runs left),
  and are created with the user's umask (not ``mkstemp``'s 0600), so results are ordinary files.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import polars as pl

from recs import temps
from recs.errors import ArtifactError, OutputError
from recs.paths import check_not_cwd

_WRITE_ERRORS = (OSError, pl.exceptions.PolarsError)
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def describe_os_error(e: OSError, path: str | Path | None = None, doing: str = "write") -> str:
    """One line naming the path and the reason, e.g. ``runs/x: cannot write (Permission denied)``."""
    where = e.filename if e.filename is not None else (path if path is not None else "output")
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno == errno.EBUSY:
        reason += "; is it the current directory or a mount point?"
    return f"{where}: cannot {doing} ({reason})"


# Below this much free space a writer's failure is taken for a full disk: polars and numpy do not always
# say so (polars wraps ENOSPC in a ComputeError, or writes a short file that reads back as "Invalid
# thrift: transport error"; numpy says "2600500 requested and 2500576 written").
LOW_SPACE_BYTES = 1 << 20
_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def free_bytes(where: str | Path) -> int | None:
    """Bytes an unprivileged writer can still use on the file system of ``where`` (its nearest existing
    ancestor), or None when the OS cannot tell."""
    p = Path(where).absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    try:
        st = os.statvfs(p)
    except (OSError, AttributeError):
        return None
    return st.f_bavail * st.f_frsize


def out_of_space(e: BaseException, where: str | Path | None = None) -> bool:
    """Whether ``e`` is, or hides, a full disk (or quota): ENOSPC/EDQUOT, a library's wording of it, or
    any write or read-back failure while the file system of ``where`` has almost no space left."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(e).lower()
    if "no space left on device" in text or "os error 28" in text or "disk quota exceeded" in text \
            or _SHORT_WRITE.search(text):
        return True
    if where is not None and isinstance(e, _WRITE_ERRORS):
        free = free_bytes(where)
        return free is not None and free < LOW_SPACE_BYTES
    return False


def no_space_error(path: str | Path) -> OutputError:
    """The one message for a full disk, whatever the writer said: the output, and how much is free."""
    free = free_bytes(Path(path).parent)
    left = f", {free:,} bytes free there" if free is not None else ""
    return OutputError(f"{path}: cannot write (No space left on device){left}; free some space or write "
                       "elsewhere: nothing was replaced")


def output_error(e: BaseException, path: str | Path) -> OutputError:
    """An OutputError naming ``path`` for an OS refusal or a writer's failure (polars reports a full
    disk as a ComputeError, not an OSError; a full disk is always said as such: ``out_of_space``)."""
    if out_of_space(e, Path(path).parent):
        return no_space_error(path)
    if isinstance(e, OSError):
        return OutputError(describe_os_error(e, path))
    first = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return OutputError(f"{path}: cannot write ({first})")




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


def _fsync(path: Path) -> None:
    """Flush a file's or directory's data to disk; a file system that cannot (some FUSE) is let be."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for d, _, files in os.walk(root):
        for f in files:
            _fsync(Path(d) / f)
        _fsync(Path(d))



class Outputs:
    """Several output files written as one unit.

    ``stage(path)`` returns a temporary beside ``path`` (same suffix, so writers that pick a format by
    suffix work on it); ``commit()`` flushes and renames every staged file into place, and if one
    rename fails puts back the ones already done. Used as a context manager it commits on success and
    removes every temporary, and every directory it created, on any error.
    """

    def __init__(self) -> None:
        self._staged: dict[Path, Path] = {}
        self.created_dirs: list[Path] = []

    def stage(self, out: str | Path) -> Path:
        out = Path(out)
        if out in self._staged:
            return self._staged[out]
        if out.is_dir():
            raise OutputError(f"{out}: is a directory; give a file path")
        try:
            self.created_dirs += temps.makedirs(out.parent)
            temps.settle(out)  # a crash mid-way through an earlier multi-file commit: finish or undo it first
            for p in temps.leftovers(out):
                temps.remove_path(p)
            tmp = temps.temp_name(out, "tmp", out.suffix)
            temps.new_file(tmp)
        except OSError as e:
            raise output_error(e, out) from None
        self._staged[out] = tmp
        return tmp

    def commit(self) -> list[Path]:
        """Flush every staged file and rename it into place, all or nothing.

        One file alone is one ``os.replace``. Several go through the journal (``recs.temps``, "the
        journal of a multi-file commit"): the plan is written before the first rename, so a crash
        between two renames is finished (or undone) by whoever next writes or reads an output, instead
        of leaving one output new and another old. A rename that fails here is undone here."""
        staged = list(self._staged.items())
        if not staged:  # nothing was written (a command whose outputs are all optional and not given)
            self._finish(staged)
            return []
        try:
            for _, tmp in staged:
                _fsync(tmp)
        except OSError as e:
            self.abort()
            raise output_error(e, staged[0][0]) from None
        if len(staged) == 1:
            out, tmp = staged[0]
            try:
                os.replace(tmp, out)
            except OSError as e:
                self.abort()
                raise output_error(e, out) from None
            self._finish(staged)
            return [out]
        try:
            entries: list[dict[str, Any]] = [{"out": str(out.absolute()), "tmp": str(tmp.absolute()),
                        "bak": str(temps.temp_name(out, "bak").absolute()) if out.exists() else None,
                        "ident": temps.identity(tmp)} for out, tmp in staged]
            plan = temps.write_plan(entries)
        except OSError as e:
            self.abort()
            raise output_error(e, staged[0][0]) from None
        current = staged[0][0]
        try:
            for entry in entries:  # keep what each output replaces until every rename is done
                if entry["bak"] is not None:
                    current = Path(entry["out"])
                    try:
                        os.link(entry["out"], entry["bak"])
                    except OSError:  # no hard links here (vfat, some network mounts): move it aside
                        os.replace(entry["out"], entry["bak"])
            for entry in entries:
                current = Path(entry["out"])
                os.replace(entry["tmp"], entry["out"])
        except OSError as err:
            with suppress(OSError):
                temps.roll_back(entries)
                temps.remove_plan(plan)  # undone: the plan is spent (if undoing failed, it stays for the next run)
            self.abort()
            raise output_error(err, current) from None
        for parent in {out.parent for out, _ in staged}:
            with suppress(OSError):
                _fsync(parent)
        for entry in entries:  # committed: the copies of what was replaced, then the plan, can go
            if entry["bak"] is not None:
                with suppress(OSError):
                    Path(entry["bak"]).unlink()
        temps.remove_plan(plan)
        self._finish(staged)
        return [out for out, _ in staged]

    def _finish(self, staged: list[tuple[Path, Path]]) -> None:
        for parent in {out.parent for out, _ in staged}:
            with suppress(OSError):
                _fsync(parent)
        self._staged.clear()
        self.created_dirs = []

    def abort(self) -> None:
        for tmp in self._staged.values():
            with suppress(OSError):
                tmp.unlink()
        self._staged.clear()
        temps.rmdirs(self.created_dirs)
        self.created_dirs = []

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            self.commit()
        else:
            self.abort()


@contextmanager
def writing(out: str | Path, outputs: Outputs | None = None) -> Iterator[Path]:
    """Where to write ``out``: a temporary staged in ``outputs`` (it appears with the command's other
    outputs) or, without ``outputs``, a file of its own that appears when the block succeeds.

    A writer's failure inside the block (an OS refusal, polars' ComputeError on a full disk) becomes
    an OutputError naming ``out``.
    """
    own = outputs is None
    outputs = outputs or Outputs()
    tmp = outputs.stage(out)
    try:
        yield tmp
    except _WRITE_ERRORS as e:
        if own:
            outputs.abort()
        raise output_error(e, out) from None
    except BaseException:
        if own:
            outputs.abort()
        raise
    if own:
        outputs.commit()


@contextmanager
def scratch_dir(out: str | Path, kind: str = "work", outputs: Outputs | None = None) -> Iterator[Path]:
    """A working directory beside ``out`` (``.OUT.work-HOST-PID-XXXX``), removed when the block ends.

    Beside the output rather than in the system temp directory: it is on the output's file system (so
    large intermediate files do not fill /tmp), and if the process is killed it is where the next run
    to the same ``out`` finds and removes it (``recover``). Parents created for it are removed again if
    the block fails; with ``outputs`` they are handed to it, so they also go if its commit never comes.
    """
    out = Path(out)
    created: list[Path] = []
    path = temps.temp_name(out, kind)
    try:
        created = temps.makedirs(out.parent)
        for p in temps.leftovers(out):
            if temps.kind_of(out, p) == kind:
                temps.remove_path(p)
        os.mkdir(path)
    except OSError as e:
        temps.rmdirs(created)
        raise output_error(e, out) from None
    if outputs is not None:
        outputs.created_dirs += created
        created = []
    try:
        yield path
    except BaseException:
        temps.remove_path(path)
        temps.rmdirs(created)
        raise
    temps.remove_path(path)


def replaceable(out: Path, kind: str, is_artifact: Callable[[Path], bool] | None) -> None:
    """Refuse an ``out`` that is neither missing, an empty directory nor a ``kind`` artifact."""
    if out.exists() and not (out.is_dir() and ((is_artifact and is_artifact(out)) or not any(out.iterdir()))):
        raise ArtifactError(f"{out}: exists and is not a {kind} directory; choose another --out or remove it")


def prepare_out(out: Path, kind: str, is_artifact: Callable[[Path], bool] | None) -> None:
    """What every artifact write does first: refuse the working directory, restore or clean an
    interrupted run's leftovers, refuse an ``out`` that is not replaceable."""
    check_not_cwd(out, example=f"runs/{kind.removeprefix('recs.')}")
    temps.recover(out, is_artifact)
    replaceable(out, kind, is_artifact)


@contextmanager
def atomic_dir(out: str | Path, kind: str, is_artifact: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``out``; on success it replaces ``out`` in one atomic step.

    ``out`` may be missing, an empty directory or an artifact of the same ``kind`` (``is_artifact``);
    anything else is refused so recs never deletes a user's own files. Leftovers of an interrupted
    earlier run are restored or cleaned first (``recover``).
    """
    out = Path(out)
    prepare_out(out, kind, is_artifact)
    created: list[Path] = []
    tmp = temps.temp_name(out, "tmp")
    try:
        created = temps.makedirs(out.parent)
        os.mkdir(tmp)  # 0777 & ~umask, like any directory the user makes
    except OSError as e:
        temps.rmdirs(created)
        raise output_error(e, out) from None
    old: Path | None = None
    try:
        yield tmp
        _fsync_tree(tmp)
        if out.exists():
            if _exchange(tmp, out):
                temps.remove_path(tmp)  # tmp now holds the old artifact
            else:
                old = temps.temp_name(out, "old")
                os.replace(out, old)
                os.replace(tmp, out)  # a crash between the two: the next reader or writer puts `old` back
                temps.remove_path(old)
        else:
            os.replace(tmp, out)
        _fsync(out.parent)
    except BaseException as e:
        if old is not None and old.exists() and not out.exists():
            with suppress(OSError):
                os.replace(old, out)  # interrupted between the two renames: put the old artifact back now
        temps.remove_path(tmp)
        temps.rmdirs(created)
        if isinstance(e, _WRITE_ERRORS):
            raise output_error(e, out) from None
        raise


__all__ = ["Outputs", "atomic_dir", "describe_os_error", "no_space_error", "out_of_space", "scratch_dir", "writing"]
