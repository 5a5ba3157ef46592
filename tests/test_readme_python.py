"""Every Python block of the README and of docs/ runs, on a planted log made by the README's own command 1.

The blocks are what a new user pastes first; one that fails, or that asks for items the log does not
have and shows an empty list, is a broken promise that no other test notices. So:

- the ``recs ...`` steps of command 1 (``## Two commands``) run as written, in a temporary directory, but
  on a smaller log (``--events`` is the one thing changed), leaving ``runs/train.parquet``,
  ``runs/test.parquet``, ``runs/model``, ``runs/index`` where the blocks expect them;
- each page's ```` ```python ```` blocks run in order in one namespace, statement by statement, in that
  directory; the value of every expression statement (what a notebook shows) that has a length must not
  be empty: a list of nothing fails, as the README's old example for items 42 and 7 would have.

``SKIPPED`` names the pages whose blocks are not run, each with why; ``MIRRORS`` the pages that carry
another page's blocks unchanged (the site's home carries the README's): checked equal, run once.
"""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import test_readme_cli as readme_cli

from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EVENTS = 10_000  # command 1 makes 200,000; the blocks find their ids in the log, so any size serves
SKIPPED = {
    # a fragment that goes on from an earlier version of the README's example (`split.train`), and fits the
    # learned blend (LightGBM, minutes): to be made self-contained with the page's owner
    "docs/quality.md": "a fragment of an older README example (split.train); trains the blend",
}

MIRRORS = {"docs/index.md": "README.md"}


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def command_one_steps(readme: str, events: int) -> list[list[str]]:
    """The ``recs`` steps of command 1 as argument lists (without ``recs``), ``--events`` set to ``events``;
    the set-up steps before them (venv, pip, activate) are not repeated here."""
    command = readme_cli.two_commands(readme)[0]
    joined = " ".join(line.strip().removesuffix("\\") for line in command.splitlines() if not line.startswith("#"))
    steps = [shlex.split(part) for part in joined.split("&&")]
    steps = [s[1:] for s in steps if s and s[0] == "recs"]
    for step in steps:
        if "--events" in step:
            step[step.index("--events") + 1] = str(events)
    return steps


def is_empty(value: Any) -> bool:
    """A value with a length that has none (a frame of no rows, a list of nothing); strings do not count."""
    if value is None or isinstance(value, str | bytes):
        return False
    try:
        return len(value) == 0
    except TypeError:
        return False


def run_blocks(blocks: list[str], namespace: dict[str, Any], where: str) -> None:
    """Run ``blocks`` in order in ``namespace``; an expression statement whose value is empty fails, naming it."""
    for b, block in enumerate(blocks, 1):
        for stmt in ast.parse(block, f"{where} block {b}").body:
            label = f"{where}, block {b}, line {stmt.lineno}"
            if isinstance(stmt, ast.Expr):
                value = eval(compile(ast.Expression(stmt.value), label, "eval"), namespace)
                assert not is_empty(value), f"{label}: `{ast.unparse(stmt)}` shows nothing (an empty result)"
            else:
                exec(compile(ast.Module([stmt], type_ignores=[]), label, "exec"), namespace)


def relative(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_PYTHON = [p for p in PAGES if python_blocks(p.read_text(encoding="utf-8"))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A directory after command 1's ``recs`` steps (on ``EVENTS`` events), to run the blocks in."""
    d = tmp_path_factory.mktemp("readme")
    steps = command_one_steps((ROOT / "README.md").read_text(encoding="utf-8"), EVENTS)
    with pytest.MonkeyPatch.context() as m:
        m.chdir(d)
        for step in steps:
            r = run_cli(*step, "--quiet")
            assert r.exit_code == 0, f"recs {shlex.join(step)}: {r.output}"
    return d


def test_the_readme_has_python_and_command_one_makes_what_it_reads():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert any("import recs" in b for b in python_blocks(readme)), "the README's Python block uses the facade"
    steps = command_one_steps(readme, EVENTS)
    assert [s[0] for s in steps] == ["synth", "split", "train-embeddings", "build-index", "eval-hitrate"]
    assert steps[0][steps[0].index("--events") + 1] == str(EVENTS)


def test_skipped_pages_exist_and_have_python():
    assert {relative(p) for p in PAGES_WITH_PYTHON} >= set(SKIPPED)


@pytest.mark.parametrize("page", sorted(MIRRORS))
def test_a_mirror_has_its_pages_blocks(page):
    mirror, original = (python_blocks((ROOT / name).read_text(encoding="utf-8")) for name in (page, MIRRORS[page]))
    assert mirror == original, f"{page}'s Python blocks differ from {MIRRORS[page]}'s: keep them the same"


@pytest.mark.parametrize("page", [p for p in PAGES_WITH_PYTHON if relative(p) not in {*SKIPPED, *MIRRORS}],
                         ids=relative)
def test_the_python_blocks_of_a_page_run(page, runs, monkeypatch):
    monkeypatch.chdir(runs)
    run_blocks(python_blocks(page.read_text(encoding="utf-8")), {"__name__": "__main__"}, relative(page))


def test_the_check_can_fail():
    page = "x\n```python\na = 1\n```\n```bash\nls\n```\n```python\nb = 2\n```\n"
    assert python_blocks(page) == ["a = 1\n", "b = 2\n"]
    with pytest.raises(AssertionError, match=r"page, block 2, line 2: `\[x for x in a if x > 5\]` shows nothing"):
        run_blocks(["a = [1, 2]\n", "len(a)\n[x for x in a if x > 5]\n"], {}, "page")
    with pytest.raises(NameError):
        run_blocks(["split.train\n"], {}, "page")
    run_blocks(["print('ok')\n'text'\n0\n"], {}, "page")  # None, a string, a number: nothing to measure
