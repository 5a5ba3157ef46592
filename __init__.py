"""Not part of the package: the root of a recs checkout (the package is core/, sessions/, ..., see setup.cfg).

Python runs this file only when the folder *above* a checkout named ``recs`` comes first on
``sys.path``: a script or ``python -c`` started there, or a notebook kept there. The checkout folder
then shadows the installed package. Without this file the folder became an empty namespace package,
because setuptools' editable finder is consulted only after the ordinary path search
(pypa/setuptools#3557), and ``import recs`` failed with "cannot import name '__version__' from 'recs'
(unknown location)". So this file hands the import over to the installed ``recs`` (the one any
other directory would get) and, when none is installed, says what happened.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path

_HERE = Path(__file__).resolve()


def _installed_spec(name: str) -> ModuleSpec | None:
    """The spec every finder gives ``name`` when the folder holding this checkout is not searched."""

    def elsewhere(entry: str) -> bool:
        try:
            return Path(entry or ".").resolve() != _HERE.parent.parent
        except (OSError, TypeError):
            return True

    path = [e for e in sys.path if elsewhere(e)]
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec(name, path) if find_spec is not None else None
        if spec is not None and spec.loader is not None and spec.origin and Path(spec.origin).resolve() != _HERE:
            return spec
    return None


if __name__ == "recs":
    _spec = _installed_spec(__name__)
    if _spec is None or _spec.loader is None:
        raise ImportError(
            f"`import recs` found {_HERE.parent}, a checkout of recs, because Python searches the current "
            "directory (or the script's) first, and no installed recs to use instead: install the "
            f"checkout (pip install -e {_HERE.parent}) or run from another directory"
        )
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[__name__] = _module  # the import statement returns what sys.modules holds once this file ends
    _spec.loader.exec_module(_module)
