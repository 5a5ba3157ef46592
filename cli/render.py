"""Rendering results for people (rich tables on stdout) and machines (JSON files)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from recs.atomic import Outputs, writing

# Piped output (CI logs, files) gets a wide table instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.4f}" if abs(value) < 1 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(
    title: str,
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Table:
    """A rich table of ``rows`` (dicts); ``headers`` renames keys for display."""
    columns = list(columns or (rows[0].keys() if rows else []))
    headers = headers or {}
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(headers.get(c, c), justify="left" if rows and isinstance(rows[0].get(c), str) else "right")
    for r in rows:
        t.add_row(*(fmt(r.get(c, "")) for c in columns))
    return t


def key_values(title: str, values: Mapping[str, Any]) -> Table:
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value", justify="right")
    for k, v in values.items():
        t.add_row(k, fmt(v))
    return t


def write_json(path: str | Path, obj: Any, outputs: Outputs | None = None) -> Path:
    """Write ``obj`` as indented JSON; with ``outputs`` it is staged with the command's other outputs."""
    with writing(path, outputs) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    return Path(path)
