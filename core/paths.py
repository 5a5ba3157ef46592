"""Checks on output paths, made before a command reads or trains anything.

An output that resolves to an input (``split X --train X``) or contains one, two outputs that are one
file, an output inside a recs artifact (deleted with it when that artifact is rebuilt), the working
directory as an artifact (it cannot be swapped), a file output that is a directory, and a place the
OS will not let us write: each is refused with one line naming the option and the path, so no
minutes of work are spent before a write fails and no input is ever overwritten.

An input may be a directory (of parquet parts) or a glob: an output inside the directory, or one the
glob matches or would hold a match of (an artifact directory under ``logs/**``), is refused too,
even before it exists: the next run would read it as input.
"""

from __future__ import annotations

import glob as globlib
import json
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from recs.errors import ConfigError, OutputError
from recs.temps import new_file, settle, temp_name

Named = Iterable[tuple[str, "str | Path | None"]]


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
    probe = temp_name(parent / out.name, "tmp")  # the name a killed run's leftovers are recovered by
    try:
        new_file(probe)
    except OSError as e:
        raise OutputError(f"{option} {out}: cannot write in {parent} ({e.strerror or e})") from None
    probe.unlink()


def _same_or_inside(a: Path, b: Path) -> bool:
    return a == b or b in a.parents or a in b.parents


def is_glob(path: str | Path) -> bool:
    """A path that does not exist as written and has glob characters (``*?[``) is a pattern; an existing
    file whose name has them is that file (prepare and the sessions readers share this rule)."""
    return globlib.has_magic(str(path)) and not Path(path).exists()


def glob_root(pattern: str | Path) -> Path:
    """The fixed leading directories of a glob (``logs`` for ``logs/*/*.parquet``; ``.`` when the first
    part has a wildcard): what partitions and relative paths of its matches are counted from."""
    parts = Path(pattern).parts
    n = next((i for i, p in enumerate(parts) if globlib.has_magic(p)), len(parts))
    return Path(*parts[:n]) if n else Path(".")


def _match(pattern: Sequence[str], parts: Sequence[str], prefix: bool) -> bool:
    """Whether path ``parts`` match glob ``pattern`` parts (``**`` spans any number of them); with
    ``prefix``, also whether some path *below* ``parts`` could match."""
    if not parts:
        return not pattern or prefix or all(p == "**" for p in pattern)
    if not pattern:
        return False
    if pattern[0] == "**":
        return _match(pattern[1:], parts, prefix) or _match(pattern, parts[1:], prefix)
    return fnmatchcase(parts[0], pattern[0]) and _match(pattern[1:], parts[1:], prefix)


def _pattern_takes(pattern: str, out: Path, directory: bool) -> str | None:
    """How glob ``pattern`` would read ``out`` (existing or not): it matches it, or (``directory``
    outputs) could match a file inside it; None when it cannot. Both sides are resolved from the
    pattern's fixed part, so ``./x`` and symlinked parents compare as one place."""
    root = glob_root(pattern)
    rest = Path(pattern).parts[len(root.parts):] if str(root) != "." else Path(pattern).parts
    res_root, res_out = root.resolve(), out.resolve()
    if res_root != res_out and res_root not in res_out.parents:
        return None
    parts = res_out.relative_to(res_root).parts
    if _match(rest, parts, prefix=False):
        return "is matched by"
    return "would hold files read by" if directory and _match(rest, parts, prefix=True) else None


Input = tuple[str, Path, "Path | None", "str | None"]


def _expand(inputs: Named) -> list[Input]:
    """(option, path, resolved path, pattern) per input; a glob gives one row per match (with its
    pattern, for outputs that do not exist yet), or one row with no resolved path when nothing matches."""
    rows: list[Input] = []
    for name, p in inputs:
        if p is None:
            continue
        if not is_glob(p):
            rows.append((name, Path(p), Path(p).resolve(), None))
            continue
        matches = sorted(globlib.glob(str(p), recursive=True))
        rows.extend((name, Path(m), Path(m).resolve(), str(p)) for m in matches)
        if not matches:
            rows.append((name, Path(p), None, str(p)))
    return rows


def check_paths(inputs: Named, outputs: Named, directories: bool = False) -> None:
    """Refuse, before anything is read, an output that resolves to an input (or holds one, or sits inside
    one, a directory input included), one an input glob matches or would read from, two outputs that
    resolve to one path, an output inside a recs artifact, one that cannot be written, and (unless the
    outputs are ``directories``) one that is a directory. Pairs are (option name, path); None is skipped."""
    ins = _expand(inputs)
    outs = [(o, Path(p), Path(p).resolve()) for o, p in outputs if p is not None]
    # an earlier multi-file commit killed mid-way is finished (or undone) before anything is read or
    # written, so a reader never sees one output of it new and another old (recs.temps, the journal)
    for _, i_path, _, pattern in ins:
        if pattern is None:
            settle(i_path)
    for _, o_path, _ in outs:
        settle(o_path)
    for i, (o_name, o_path, o_res) in enumerate(outs):
        for i_name, i_path, i_res, pattern in ins:
            how = _pattern_takes(pattern, o_path, directories) if pattern is not None else None
            if how:
                raise ConfigError(f"{o_name} {o_path}: {how} the input pattern ({i_name} {pattern}), so a "
                                  "later run would read it as input; write to another path")
            if i_res is not None and _same_or_inside(o_res, i_res):
                how = ("is also an input" if o_res == i_res else
                       "contains an input" if o_res in i_res.parents else "lies inside an input")
                raise ConfigError(f"{o_name} {o_path}: {how} ({i_name} {pattern or i_path}"
                                  f"{f' matches {i_path}' if pattern else ''}); write to another path, "
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
