"""Documentation and packaging around the code: the licence file matches setup.cfg, the changelog keeps its
format, the docs site builds strictly (a broken link or anchor fails), and shell completion is produced by
the installed ``recs`` script as docs/index.md and the README say."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg")


def test_license_file_matches_setup_cfg():
    assert SETUP["metadata"]["license"] == "MIT"
    assert SETUP["metadata"]["license_files"].split() == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in text


def test_changelog_keeps_a_changelog_format():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog\n") and "Keep a Changelog" in text
    versions = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)
    assert versions[0] == "[Unreleased]"
    dates = [v for v in versions[1:] if re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)]
    assert dates == sorted(dates, reverse=True) and len(dates) == len(versions) - 1  # newest first
    kinds = set(re.findall(r"^### (\w+)", text, flags=re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_ci_installs_the_docs_extra_and_builds_the_site_strictly():
    assert any(line.strip().startswith("mkdocs>=") for line in SETUP["options.extras_require"]["docs"].splitlines())
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = re.search(r"pip install -q -e '\.\[([a-z,]+)\]'", ci)
    assert install and "docs" in install.group(1).split(",")
    assert re.search(r"^\.venv/bin/mkdocs build --strict", ci, flags=re.MULTILINE)


def test_docs_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[docs]'")
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "site" / "own-data" / "index.html").exists()
    assert (tmp_path / "site" / "benchmarks" / "index.html").exists()  # BENCHMARKS.md, through mkdocs_hooks.py


def recs_script() -> str:
    """The console script setup.cfg declares, as installed beside this interpreter (or on PATH)."""
    scripts = [line.split("=", 1) for line in SETUP["options.entry_points"]["console_scripts"].splitlines()
               if "=" in line]
    assert [(name.strip(), target.strip()) for name, target in scripts] == [("recs", "recs.cli.main:main")]
    found = Path(sys.executable).with_name("recs")
    if found.exists():
        return str(found)
    on_path = shutil.which("recs")
    if on_path is None:
        pytest.skip("no installed `recs` script beside the interpreter or on PATH: pip install -e .")
    return on_path


@pytest.mark.parametrize(("shell", "marker"), [
    ("bash", "complete -o nosort -F _recs_completion recs"),
    ("zsh", "#compdef recs"),
    ("fish", "complete --no-files --command recs"),
])
def test_shell_completion_script_is_produced(shell, marker):
    env = {**os.environ, "_RECS_COMPLETE": f"{shell}_source"}
    r = subprocess.run([recs_script()], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert marker in r.stdout, r.stdout


def test_completion_completes_commands_and_options():
    env = {**os.environ, "_RECS_COMPLETE": "bash_complete", "COMP_WORDS": "recs eval-", "COMP_CWORD": "1"}
    r = subprocess.run([recs_script()], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert set(r.stdout.split()) == {"plain,eval-hitrate", "plain,eval-recommend"}
    env.update(COMP_WORDS="recs synth --ev", COMP_CWORD="2")
    r = subprocess.run([recs_script()], env=env, capture_output=True, text=True, timeout=120)
    assert "plain,--events" in r.stdout.split(), r.stdout
