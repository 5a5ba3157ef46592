"""Which files a sessions input names: one file, a directory of parquet parts, or a glob.

A log written by Spark or a daily job is rarely one file: it is ``logs/dt=2026-11-01/part-0.parquet``,
``logs/dt=2026-11-02/part-0.parquet`` ... with ``_SUCCESS``, ``_committed_*`` and ``.part-0.parquet.crc``
beside them. Every reader of sessions (and the Spark engine, and the input fingerprint) takes the
member files from ``session_files`` so they all agree on one rule:

- a path that exists as a file is that one file (parquet or CSV, any name);
- a directory is every parquet file below it, at any depth;
- a path that does not exist and has glob characters (``*?[``) is a glob (``**`` spans directories);
  a directory it matches counts as that directory's files;
- below the directory (or the glob's fixed leading part) a name starting with ``_`` or ``.`` is
  skipped, file or directory, unless it holds ``=`` (a partition such as ``_dt=x``); so is a name
  ending ``._COPYING_``. This is Spark's rule (HadoopFSUtils.shouldFilterOutPathName), so both
  engines read the same rows;
- members must be parquet (``.parquet`` or ``.pq``, so ``part-0.snappy.parquet`` too); any other
  file is refused, naming it, rather than silently left out: a CSV among the parts is more likely
  data the user meant than litter. Several CSVs become one table through ``recs prepare``;
- members are sorted by their path below the root (component by component), so the order a file
  system lists them in never changes what is read.

Partition directories (``key=value``) are parsed here (``partition_values``); what a reader does
with them is its own decision (``recs.sessions.io``: canonical names fill the column, others are dropped).
"""

from __future__ import annotations

import glob as globlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePath
from urllib.parse import unquote

from recs.artifacts import fingerprint_file, fingerprint_members
from recs.columns import Col
from recs.errors import InputError
from recs.paths import glob_root, is_glob
from recs.temps import settle

PARQUET_SUFFIXES = (".parquet", ".pq")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # how Spark and Hive write a null partition value
SKIP_RULE = "names starting with _ or . are skipped, as Spark does"


def is_skipped(name: str) -> bool:
    """True for a file or directory name a reader of a parquet directory leaves out (Spark's rule):
    bookkeeping (``_SUCCESS``, ``_committed_1``, ``_temporary/``, ``_delta_log/``), checksums and
    other hidden files (``.part-0.parquet.crc``) and copies in progress (``x._COPYING_``)."""
    return (name.startswith("_") and "=" not in name) or name.startswith(".") or name.endswith("._COPYING_")


def is_parquet_name(path: str | PurePath) -> bool:
    return PurePath(path).suffix.lower() in PARQUET_SUFFIXES


@dataclass(frozen=True)
class SessionFiles:
    """The member files of a sessions input, sorted; ``root`` is what partitions and fingerprints are
    relative to (the directory, the glob's fixed leading part, or a single file's parent)."""

    given: str
    root: Path
    files: tuple[Path, ...]
    single: bool  # one file named as such: any format, no partition directories

    def relative(self, path: Path) -> PurePath:
        return path.relative_to(self.root)

    def partitions(self, path: Path) -> dict[str, str | None]:
        """``key=value`` directories between the root and ``path`` (empty for a single file)."""
        return {} if self.single else partition_values(self.relative(path))


def partition_values(relative: PurePath) -> dict[str, str | None]:
    """The hive partitions of a member's relative path: ``dt=2026-11-01/h=3/part-0.parquet`` gives
    ``{"dt": "2026-11-01", "h": "3"}``. Values are text, %-unescaped as Spark escapes them;
    ``__HIVE_DEFAULT_PARTITION__`` is None. The first ``=`` splits, so a value may hold ``=``."""
    out: dict[str, str | None] = {}
    for part in relative.parts[:-1]:
        key, sep, value = part.partition("=")
        if sep and key:
            value = unquote(value)
            out[unquote(key)] = None if value == HIVE_NULL else value
    return out


def _walk(directory: Path, root: Path, seen: set[Path]) -> list[Path]:
    """Files below ``directory`` that are not skipped; a directory reached twice through links is read once."""
    real = directory.resolve()
    if real in seen:
        return []
    seen.add(real)
    found: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError as e:
        raise InputError(f"{directory}: cannot list this directory ({e.strerror or e})") from None
    for entry in entries:
        if is_skipped(entry.name):
            continue
        path = directory / entry.name
        if entry.is_dir():
            found.extend(_walk(path, root, seen))
        elif entry.is_file():
            found.append(path)
        else:
            raise InputError(_unreadable(path))
    return found


def _unreadable(path: Path) -> str:
    """Why a member that is neither a file nor a directory cannot be read. Leaving it out would drop its
    rows without a word (and from the fingerprint), so it is an error naming it. Decided from ``lstat``
    and ``stat`` alone: a FIFO is never opened (opening one blocks until a writer comes)."""
    try:
        mode = path.lstat().st_mode
    except OSError as e:
        return f"{path}: cannot read it ({e.strerror or e})"
    if stat.S_ISLNK(mode):
        try:
            mode = path.stat().st_mode
        except OSError as e:
            return (f"{path}: a symbolic link to {os.readlink(path)} that cannot be followed ({e.strerror or e}); "
                    "every file in a sessions input is read: restore its target or remove the link")
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return (f"{path}: {kind}, not a data file; every file in a sessions input is read "
            f"({SKIP_RULE}): remove it or move it out of the input")


def _check_members(files: list[Path], root: Path, given: str) -> None:
    for f in files:
        if not is_parquet_name(f):
            kind = "CSV" if f.suffix.lower() in (".csv", ".tsv") else "not a parquet file"
            raise InputError(
                f"{f}: {kind} in the sessions input {given}; a directory or glob is read as parquet parts "
                f"(.parquet, .pq; {SKIP_RULE}). Give one CSV as a file of its own, or join several with recs prepare"
            )


# Per-event columns: a partition directory gives every row below it one value, which for these is never
# the data (a ``timestamp=2026-11-01`` directory would put every event of the day at one instant).
PER_EVENT_COLUMNS = (Col.TIMESTAMP, Col.SESSION, Col.ITEM, Col.USER)


def _check_partition_names(files: list[Path], root: Path) -> None:
    """Refuse a partition directory named after a canonical time or id column, naming it."""
    for f in files:
        rel = f.relative_to(root)
        for i, part in enumerate(rel.parts[:-1]):
            key = unquote(part.partition("=")[0]) if "=" in part else None
            if key in PER_EVENT_COLUMNS:
                raise InputError(
                    f"{root.joinpath(*rel.parts[: i + 1])}: a partition directory named after the column {key!r} "
                    f"would give every event below it one {key}; {', '.join(PER_EVENT_COLUMNS)} must be columns "
                    "of the parquet parts. Rename the directory (e.g. dt=... for a day)")


def session_files(path: str | Path) -> SessionFiles:
    """The member files of a sessions input (a file, a directory or a glob), by the rule above.

    Raises InputError naming the path when it does not exist, a glob matches nothing, a directory
    holds no parquet file, or a member is not parquet.
    """
    given = str(path)
    p = Path(given)
    settle(p)  # a multi-file commit that wrote this file and was killed mid-way: finished or undone first
    if p.is_file():
        return SessionFiles(given, p.parent, (p,), single=True)
    if p.is_dir():
        root, dirs, matched = p, [p], []
    elif is_glob(given):
        root = glob_root(given)
        hits = sorted(Path(m) for m in globlib.glob(given, recursive=True))
        hits = [h for h in hits if not any(is_skipped(n) for n in h.relative_to(root).parts)]
        dirs = [h for h in hits if h.is_dir()]
        matched = [h for h in hits if h.is_file()]
        for h in hits:  # a dangling link or a FIFO the pattern matches is named, not dropped
            if not h.is_dir() and not h.is_file():
                raise InputError(_unreadable(h))
        if not dirs and not matched:
            raise InputError(f"{given}: no file matches this pattern ({SKIP_RULE})")
    elif os.path.lexists(p):
        raise InputError(_unreadable(p))
    else:
        raise InputError(f"{given}: no such file or directory")
    seen: set[Path] = set()
    files = set(matched)
    for d in dirs:
        files.update(_walk(d, root, seen))
    members = sorted(files, key=lambda f: f.relative_to(root).parts)
    _check_members(members, root, given)
    _check_partition_names(members, root)
    if not members:
        where = "in this directory" if p.is_dir() else "in the directories this pattern matches"
        raise InputError(f"{given}: no parquet files {where} ({SKIP_RULE})")
    return SessionFiles(given, root, tuple(members), single=False)


def fingerprint_sessions(path: str | Path) -> str:
    """The input fingerprint recorded in manifests: a single file's content hash (as before), or for a
    directory or glob a hash of the sorted (relative path, size, content hash) of its members, so it
    changes when any member changes, appears or goes, and not when the directory is moved."""
    src = session_files(path)
    if src.single:
        return fingerprint_file(src.files[0])
    return fingerprint_members(src.root, src.files)
