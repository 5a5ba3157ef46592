"""The installed package exposes only `recs` and its sub-packages, never bare `cli` or `eval`, and a
clone named `recs` in the current directory does not shadow it."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import recs


def test_only_recs_is_importable(tmp_path):
    code = (
        "import importlib.util as u, json\n"
        "names = ['cli', 'eval', 'embeddings', 'candidates', 'sessions', 'core']\n"
        "bare = {m: u.find_spec(m) is not None for m in names}\n"
        "import recs.cli.main, recs.eval.hitrate, recs.embeddings.train, recs.candidates.build, recs.sessions.io\n"
        "print(json.dumps(bare))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '{"cli": false, "eval": false, "embeddings": false, "candidates": false, ' \
                                 '"sessions": false, "core": false}'


ROOT = Path(__file__).resolve().parent.parent
SHOW = "import recs, recs.cli.main; print(recs.__version__, recs.__file__)"


def _checkout_named_recs(parent: Path) -> Path:
    """A folder ``recs`` laid out like a clone of this repository (its root ``__init__.py`` and a package folder)."""
    clone = parent / "recs"
    (clone / "core").mkdir(parents=True)
    shutil.copy(ROOT / "__init__.py", clone / "__init__.py")
    (clone / "core" / "__init__.py").write_text('__version__ = "not the installed one"\n')
    return clone


def test_a_clone_named_recs_in_the_current_directory_does_not_shadow_the_install(tmp_path):
    # issue 10: run from the folder above a clone named `recs`, the clone came first on sys.path and
    # `import recs` failed with "cannot import name '__version__' from 'recs' (unknown location)"
    _checkout_named_recs(tmp_path)
    installed = importlib.util.find_spec("recs").origin
    for argv in ([sys.executable, "-c", SHOW], [sys.executable, "script.py"]):
        (tmp_path / "script.py").write_text(SHOW + "\n")
        out = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        version, origin = out.stdout.split()
        assert (version, Path(origin)) == (recs.__version__, Path(installed)), out.stdout


def test_a_clone_named_recs_without_an_install_says_what_happened(tmp_path):
    clone = _checkout_named_recs(tmp_path)
    # -S: no site-packages, so no installed recs to hand the import over to
    out = subprocess.run([sys.executable, "-S", "-c", "import recs"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: `import recs` found ") and str(clone) in last, last
    assert "pip install -e" in last and "another directory" in last, last
