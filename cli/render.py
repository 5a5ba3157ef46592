"""Rendering results for people (rich tables on stdout) and machines (JSON files).

Headers and number formats come from one mapping, ``recs.display`` (shared with the HTML report):
``Click-to-Cart`` and ``time (s)``, never ``click_to_cart`` or ``time_s``, and one precision per
column. Every table fits the console without cutting a cell: when it would be too wide its long
headers wrap at spaces, and a value longer than its column folds onto the next line rather than
ending in an ellipsis, so paths and times are always shown whole.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from recs.atomic import Outputs, writing
from recs.display import FORMATS, HEADERS, SECONDS, Format, format_value, header, set_name

__all__ = ["FORMATS", "HEADERS", "SECONDS", "console", "fmt", "header", "interval", "key_values", "percent",
           "set_name", "table", "titled", "transposed", "write_json"]

# On a terminal rich follows its width; piped (CI logs, files, cron) the tables are laid out for 80
# columns like any terminal's default, or for COLUMNS when it is set.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 80)

_NUMBER = (int, float)
_FOLD_AT = 30  # transposed(): wider cells fold rather than push a column into the next table


def fmt(value: Any, spec: Format | None = None) -> str:
    """One value as text (see ``recs.display.format_value``): ``-`` for None and NaN."""
    return format_value(value, spec)


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


def titled(title: str | None, *tables: Table) -> RenderableType:
    """The title on its own line above the table: it wraps at the console's width, not the table's,
    so a path in it is not broken to fit a narrow table."""
    if not title:
        return Group(*tables)
    return Group(Text(title, style="table.title"), *tables)


def _box_width(widths: Sequence[int]) -> int:
    """Width of a rich table with the default box and padding: a border and a space either side of each cell."""
    return sum(widths) + 3 * len(widths) + 1


def _fit_headers(names: list[str], cells: Sequence[Sequence[str]], width: int) -> list[str]:
    """Wrap headers at spaces until the table fits ``width``: each step narrows the widest column that
    a narrower wrapping of its header can narrow, so headers take two lines before any takes three."""
    body = [max((cell_len(c) for c in col), default=0) for col in cells]

    def wide(text: str) -> int:
        return max(cell_len(line) for line in text.split("\n"))

    def options(i: int) -> list[str]:
        """Wrappings of header ``i``, narrowest last, each narrower than the one before and than the header."""
        out: list[str] = []
        for w in range(wide(names[i]) - 1, max(body[i], 1) - 1, -1):
            text = textwrap.fill(names[i], w, break_long_words=False, break_on_hyphens=False)
            if wide(text) <= w and wide(text) >= body[i] and (not out or wide(text) < wide(out[-1])):
                out.append(text)
        return out

    steps = [options(i) for i in range(len(names))]
    shown = list(names)
    while _box_width([max(body[i], wide(shown[i])) for i in range(len(names))]) > width:
        narrowable = [i for i in range(len(names)) if steps[i]]
        if not narrowable:
            break
        i = max(narrowable, key=lambda j: max(body[j], wide(shown[j])))
        shown[i] = steps[i].pop(0)
    return shown


# where a cell of text may break: after a space, or after a "/" (a path's directories stay with it and its
# file name is whole: candidates/click_to_cart/ then part-00000.parquet, never part-00000.p / arquet)
_PIECES = re.compile(r"[^\s/]+/?|/|\s+")


def _pieces(text: str) -> list[str]:
    return _PIECES.findall(text)


def _unbreakable(text: str) -> int:
    """The widest piece of ``text`` that ``_break`` keeps on one line (a word, a file name, a directory/)."""
    return max((cell_len(p) for line in text.split("\n") for p in _pieces(line) if not p.isspace()), default=0)


def _break(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` cells, broken after spaces and slashes only (a piece wider
    than ``width`` gets a line of its own)."""
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for piece in _pieces(para):
            if line and cell_len((line + piece).rstrip()) > width:
                out.append(line.rstrip())
                line = "" if piece.isspace() else piece
            else:
                line += piece
        out.append(line.rstrip())
    return "\n".join(out)


def _wide(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _fit_text(names: Sequence[str], cells: list[list[str]], numeric: Sequence[bool], width: int) -> list[list[str]]:
    """``cells`` (by column) with text columns broken (``_break``) until the table fits ``width``, widest
    column first, none narrower than its widest unbreakable piece or its header. Rich would otherwise
    narrow a too-wide table by cutting cells anywhere: a file name into ``part-00000.p`` / ``arquet``."""
    cells = [list(col) for col in cells]

    def widths() -> list[int]:
        return [max([_wide(names[i]), *(_wide(c) for c in col)]) for i, col in enumerate(cells)]

    text = [i for i in range(len(cells)) if not numeric[i]]
    while _box_width(widths()) > width:
        now = widths()
        floors = {i: max([_wide(names[i]), *(_unbreakable(c) for c in cells[i])]) for i in text}
        narrowable = [i for i in text if now[i] > floors[i]]
        if not narrowable:
            break
        i = max(narrowable, key=lambda j: now[j])
        target = max(floors[i], now[i] - (_box_width(now) - width))
        cells[i] = [_break(c, target) for c in cells[i]]
        if widths()[i] >= now[i]:  # nothing could break further
            break
    return cells


def table(
    title: str | None,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
    formats: Mapping[str, Format] | None = None,
    sections: str | None = None,
) -> RenderableType:
    """A rich table of ``rows`` (dicts), one column per key in ``columns``.

    Headers are ``recs.display`` names unless ``headers`` renames a key; every cell of a column is
    formatted alike, with ``formats[key]`` or ``recs.display.FORMATS[key]`` (a format spec such as
    ``".1f"`` or a callable), else ints with thousands separators and floats with four decimals.
    With ``sections``, rows are grouped by that key: each group starts with a line naming it.
    """
    columns = list(columns or (rows[0].keys() if rows else []))
    names = [(headers or {}).get(c, header(c)) for c in columns]
    specs = {c: (formats or {}).get(c, FORMATS.get(c)) for c in columns}
    lines: list[tuple[list[str], bool]] = []  # (cells, is a section label)
    previous: object = object()
    for r in rows:
        if sections is not None and r.get(sections) != previous:
            previous = r.get(sections)
            lines.append(([fmt(previous, FORMATS.get(sections))] + [""] * (len(columns) - 1), True))
        lines.append(([fmt(r[c], specs[c]) if c in r else "" for c in columns], False))
    cells = [[line[i] for line, _ in lines] for i in range(len(columns))]
    names = _fit_headers(names, cells, console.width)
    numeric = []
    for c in columns:
        values = [r.get(c) for r in rows if r.get(c) is not None]
        numeric.append(any(_is_number(v) for v in values) or not any(isinstance(v, str) for v in values))  # all "-"
    cells = _fit_text(names, cells, numeric, console.width)
    lines = [([cells[i][n] for i in range(len(columns))], label) for n, (_, label) in enumerate(lines)]
    t = Table()
    for i in range(len(columns)):
        # a number is never split (no_wrap: rich narrows the text columns instead); text folds only
        # where _fit_text could not break it at a space or after a "/"
        t.add_column(names[i], justify="right" if numeric[i] else "left", overflow="fold", no_wrap=numeric[i])
    for n, (line, label) in enumerate(lines):
        end = n + 1 < len(lines) and lines[n + 1][1]
        t.add_row(*line, style="bold" if label else None, end_section=end)
    return titled(title, t)


def transposed(
    title: str | None,
    rows: Sequence[Mapping[str, Any]],
    key: str,
    fields: Sequence[str],
    headers: Mapping[str, str] | None = None,
    formats: Mapping[str, Format] | None = None,
    rule_after: Sequence[str] = (),
) -> RenderableType:
    """``rows`` side by side: one column per row, headed by its ``key``, one line per field.

    For a few wide rows (candidate sets, the two sides of a split) that would not fit as columns. A
    field is formatted alike in every column; numbers are right-aligned, text left. When the
    columns do not fit the console they continue in a second table below. A rule is drawn under
    each field of ``rule_after``, to group the lines (all targets, re-finding, discovery, coverage).
    """
    headers = headers or {}
    label = [headers.get(f, header(f)) for f in fields]
    specs = {f: (formats or {}).get(f, FORMATS.get(f)) for f in fields}
    cols = [(fmt(r.get(key), (formats or {}).get(key, FORMATS.get(key))),
             [fmt(r.get(f), specs[f]) for f in fields]) for r in rows]
    first = max([cell_len(headers.get(key, header(key))), *(cell_len(x) for x in label)])
    chunks: list[list[int]] = [[]]
    widths = [first]
    for i, (head, values) in enumerate(cols):
        # a long path folds inside its column; only columns of ordinary width move to a table below
        w = min(max([cell_len(head), *(cell_len(v) for v in values)]), _FOLD_AT)
        if chunks[-1] and _box_width([*widths, w]) > console.width:
            chunks.append([])
            widths = [first]
        chunks[-1].append(i)
        widths.append(w)
    tables = []
    for chunk in chunks:
        t = Table()
        t.add_column(headers.get(key, header(key)), overflow="fold")
        for i in chunk:
            t.add_column(cols[i][0], justify="right", overflow="fold")
        for j, f in enumerate(fields):
            t.add_row(label[j], *(Text(cols[i][1][j], justify="right" if _is_number(rows[i].get(f)) else "left")
                                  for i in chunk), end_section=f in rule_after and j + 1 < len(fields))
        tables.append(t)
    return titled(title, *tables)


def percent(confidence: float) -> str:
    """0.95 -> ``95%``, 0.975 -> ``97.5%``: the level of an interval as its label says it."""
    return f"{100 * confidence:g}%"


def interval(low: float | None, high: float | None, signed: bool = False) -> str:
    """A bootstrap interval as one cell: ``0.4210–0.4440`` for a rate, ``-0.0200 to +0.0050`` for a
    difference (``signed``: a dash between two signed numbers would read as a minus); ``-`` for none."""
    if low is None or high is None:
        return "-"
    return f"{low:+.4f} to {high:+.4f}" if signed else f"{low:.4f}–{high:.4f}"


def key_values(title: str | None, values: Mapping[str, Any], formats: Mapping[str, Format] | None = None
               ) -> RenderableType:
    """Two columns, a name and its value, for a summary; ``formats`` by name, as in ``table``."""
    t = Table(show_header=False)
    t.add_column("what", style="bold", overflow="fold")
    t.add_column("value", justify="right", overflow="fold")
    for k, v in values.items():
        t.add_row(k, fmt(v, (formats or {}).get(k)))
    return titled(title, t)


def write_json(path: str | Path, obj: Any, outputs: Outputs | None = None) -> Path:
    """Write ``obj`` as indented JSON; with ``outputs`` it is staged with the command's other outputs.
    A NaN or infinite float (a rate with no denominator) is written as null: JSON has no NaN."""
    with writing(path, outputs) as tmp:
        tmp.write_text(json.dumps(_finite(obj), indent=2, default=str, allow_nan=False) + "\n")
    return Path(path)


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN and infinite float, at any depth of dicts, lists and tuples, as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
