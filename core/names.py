"""Names that become file names, and the check that a path taken from a manifest stays in its artifact.

Interaction names end up in file names (``candidates/<source>_to_<target>.parquet``,
``indexes/<target>.<score>.faiss``), and a manifest is a text file anyone can edit or hand over. A
name such as ``../../x`` or ``/etc/x`` would make a writer create, or a reader open, a file outside
the artifact. So such names are letters, digits, ``_`` and ``-`` only, and every path built from a
manifest is resolved and must lie inside its directory, which also catches a symlink leading out.
"""

from __future__ import annotations

import re
from pathlib import Path

from recs.errors import ArtifactError

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")  # used with fullmatch: `$` would let a trailing newline in
NAME_RULE = "letters, digits, '_' and '-' only, since they become file names"
# One component of a relative path recorded in a manifest (``indexes/cart.prob.faiss``).
_PART_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")


def is_safe_name(name: object) -> bool:
    """True for a non-empty string of letters, digits, ``_`` and ``-``."""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def is_safe_relative_path(path: object) -> bool:
    """True for ``a/b.c``-style relative paths: no leading ``/``, no ``.`` or ``..`` component."""
    if not isinstance(path, str):
        return False
    parts = path.split("/")
    return all(_PART_PATTERN.fullmatch(p) is not None and p not in (".", "..") for p in parts)


def inside(directory: str | Path, relative: str | Path, what: str) -> Path:
    """``directory / relative``, or an ArtifactError if it resolves outside ``directory``.

    ``what`` says where the name came from (e.g. "candidate set 'click_to_cart'"), for the message.
    """
    path = Path(directory) / relative
    root = Path(directory).resolve()
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise ArtifactError(f"{path}: {what} resolves to {resolved}, outside the artifact directory {root}")
    return path
