"""The README is short and its commands are the real ones; the reference it points to lists every option.

- docs/options.md has a section ``## recs NAME`` for every command, and every long option name of the
  command appears in that section (a new option that is not documented fails here);
- the README's table of commands names every command, and no command that does not exist;
- the README's two commands are the site home's (docs/index.md), and `.ci/run` runs the README's test command;
- every relative link of the README reaches a file, and the README stays under 300 lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from recs.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
OPTIONS = ROOT / "docs" / "options.md"
INDEX = ROOT / "docs" / "index.md"
CI = ROOT / ".ci" / "run"


def command_blocks(text: str) -> dict[str, str]:
    """command name -> the text of its ``## recs NAME`` section in docs/options.md."""
    parts = re.split(r"^## recs ([a-z][a-z-]*)[ \t]*$", text, flags=re.MULTILINE)
    assert len(parts) > 1, "docs/options.md has no '## recs NAME' section"
    return {parts[i]: parts[i + 1].split("\n## ", 1)[0] for i in range(1, len(parts), 2)}


def long_options(command: click.Command) -> list[str]:
    """Every ``--name`` of the command's options, both sides of a ``--flag/--no-flag`` pair."""
    return [o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)
            if o.startswith("--")]


def missing_options(command: click.Command, block: str) -> list[str]:
    # `--k` must not be found inside `--keep-unmapped`, nor `--test` inside `--test-days`
    return [o for o in long_options(command) if not re.search(re.escape(o) + r"(?![\w-])", block)]


def readme_commands(text: str) -> set[str]:
    """The commands named in the first column of the README's table under ``## The commands``."""
    section = text.split("\n## The commands\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `recs ([a-z][a-z-]*)", section, flags=re.MULTILINE))


def two_commands(text: str) -> list[str]:
    """The bash blocks of the ``## Two commands`` section: command 1 (set up and run) and command 2 (tests)."""
    section = text.split("\n## Two commands\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)


BLOCKS = command_blocks(OPTIONS.read_text(encoding="utf-8"))
README_TEXT = README.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_and_its_options_are_in_the_options_page(name):
    assert name in BLOCKS, f"docs/options.md has no section '## recs {name}'"
    assert missing_options(cli.commands[name], BLOCKS[name]) == [], f"recs {name}: options missing from docs/options.md"


def test_options_page_lists_no_command_that_does_not_exist():
    assert set(BLOCKS) <= set(cli.commands)


def test_readme_table_names_every_command_and_no_other():
    assert readme_commands(README_TEXT) == set(cli.commands)


def test_the_two_commands_are_the_same_in_the_readme_and_on_the_site():
    readme = two_commands(README_TEXT)
    assert len(readme) == 2 and readme[0].startswith("# 1.") and readme[1].startswith("# 2."), readme
    assert two_commands(INDEX.read_text(encoding="utf-8")) == readme
    assert "recs synth" in readme[0] and "recs eval-hitrate" in readme[0]


def test_ci_runs_the_readme_test_command():
    command = [line for line in two_commands(README_TEXT)[1].splitlines() if not line.startswith("#")]
    assert command == [".venv/bin/python -m pytest -q"]
    ci_lines = [line.strip() for line in CI.read_text(encoding="utf-8").splitlines()]
    assert command[0] in ci_lines


def test_readme_is_short_and_its_links_reach_files():
    assert len(README_TEXT.splitlines()) < 300
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README_TEXT)
    local = [link for link in links if "://" not in link]
    assert local, "the README links to no page"
    assert [link for link in local if not (ROOT / link).exists()] == []


def test_the_check_can_fail():
    @click.command()
    @click.option("--k", type=int)
    @click.option("--color/--no-color")
    def fake() -> None:
        pass

    assert long_options(fake) == ["--k", "--color", "--no-color"]
    assert missing_options(fake, "`--keep-unmapped` `--color`") == ["--k", "--no-color"]
    assert missing_options(fake, "| `--k` | `--color` / `--no-color` |") == []
    assert command_blocks("# x\n\n## recs a\n\n`--k`\n\n## recs b\n\ntext\n## Other\n`--j`\n") == {
        "a": "\n\n`--k`\n\n", "b": "\n\ntext"}
