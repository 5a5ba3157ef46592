"""The README lists every command and every long option name of each: a new option that is not
documented fails here. Each command has a block in README's "Options, command by command" table list,
headed ``**`recs NAME ...`**``; its options must appear in that block, not only somewhere in the file."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from recs.cli.main import cli

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "### Options, command by command"


def command_blocks(text: str) -> dict[str, str]:
    """command name -> the README text of its block in the options section."""
    assert SECTION in text, f"README.md has no {SECTION!r} section"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    parts = re.split(r"^\*\*`recs ([a-z][a-z-]*)[^`]*`\*\*", section, flags=re.MULTILINE)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def long_options(command: click.Command) -> list[str]:
    """Every ``--name`` of the command's options, both sides of a ``--flag/--no-flag`` pair."""
    return [o for p in command.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)
            if o.startswith("--")]


def missing_options(command: click.Command, block: str) -> list[str]:
    # `--k` must not be found inside `--keep-unmapped`, nor `--test` inside `--test-days`
    return [o for o in long_options(command) if not re.search(re.escape(o) + r"(?![\w-])", block)]


BLOCKS = command_blocks(README.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_command_and_its_options_are_in_the_readme(name):
    assert name in BLOCKS, f"README.md {SECTION!r} has no block **`recs {name} ...`**"
    assert missing_options(cli.commands[name], BLOCKS[name]) == [], f"recs {name}: options missing from README.md"


def test_readme_lists_no_command_that_does_not_exist():
    assert set(BLOCKS) <= set(cli.commands)


def test_the_check_can_fail():
    @click.command()
    @click.option("--k", type=int)
    @click.option("--color/--no-color")
    def fake() -> None:
        pass

    assert long_options(fake) == ["--k", "--color", "--no-color"]
    assert missing_options(fake, "`--keep-unmapped` `--color`") == ["--k", "--no-color"]
    assert missing_options(fake, "| `--k` | `--color` / `--no-color` |") == []
