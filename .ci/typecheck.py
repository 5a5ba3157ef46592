"""mypy on the recs package, with errors reported at the checkout's own paths (``sessions/io.py:12``).

The package's folders become ``recs.*`` through setup.cfg's ``package_dir`` (``core/`` is ``recs``,
``sessions/`` is ``recs.sessions``, ...). mypy names a module after its folders and cannot follow the
editable install's import hook, so it would see ``sessions.io``, not ``recs.sessions.io``, and every
``from recs...`` import would be missing. So this script lays the package out as installed, as a tree of
symbolic links in a temporary directory, runs ``mypy -p recs`` there with the [mypy] settings of
setup.cfg, and rewrites the link paths in mypy's report back to the files they point at.

Usage: ``.venv/bin/python .ci/typecheck.py [extra mypy arguments]``; exit status is mypy's.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def package_dirs(setup_cfg: Path) -> dict[str, Path]:
    """``recs.sessions`` -> ``ROOT/sessions``, as setup.cfg's [options] package_dir maps them."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg, encoding="utf-8")
    pairs = (line.split("=", 1) for line in parser["options"]["package_dir"].strip().splitlines() if "=" in line)
    return {name.strip(): ROOT / folder.strip() for name, folder in pairs}


def link_tree(dest: Path, packages: dict[str, Path]) -> dict[Path, Path]:
    """Symbolic links to every module file at its installed place under ``dest``; returns link -> file."""
    links: dict[Path, Path] = {}
    for name, folder in packages.items():
        target = dest.joinpath(*name.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for file in sorted(folder.glob("*.py")) + sorted(folder.glob("*.pyi")) + sorted(folder.glob("py.typed")):
            link = target / file.name
            link.symlink_to(file)
            links[link] = file
    return links


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="recs-typecheck-") as tmp:
        links = link_tree(Path(tmp), package_dirs(ROOT / "setup.cfg"))
        env = {**os.environ, "MYPYPATH": tmp}
        run = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "setup.cfg"), "-p", "recs", *argv],
            cwd=tmp, env=env, capture_output=True, text=True, check=False,
        )
        out = run.stdout + run.stderr
        # longest first: recs/sessions/io.py before recs/io.py would ever be tried
        for link, file in sorted(links.items(), key=lambda kv: -len(str(kv[0]))):
            out = out.replace(str(link.relative_to(tmp)), str(file.relative_to(ROOT)))
        sys.stdout.write(out)
        return run.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
