"""Checks on output paths, made before a command reads or trains anything.

An output that resolves to an input (``split X --train X``) or contains one, two outputs that are one
file, an output inside a recs artifact (deleted with it when that artifact is rebuilt), the working
directory as an artifact (it cannot be swapped), a file output that is a directory, and a place the
OS will not let us write: each is refused with one line naming the option and the path, so no
minutes of work are spent before a write fails and no input is ever overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from recs.errors import ConfigError, OutputError
from recs.temps import new_file, temp_name

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
