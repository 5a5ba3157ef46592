"""Small builders for hand-made session frames used across tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from recs.sessions.io import validate_sessions

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def sessions_frame(sessions: dict[object, list[tuple[object, str]]], day: int = 0) -> pl.DataFrame:
    """{session_id: [(item, interaction), ...]} -> canonical frame, one minute between events."""
    rows = []
    for s, events in sessions.items():
        for j, (item, inter) in enumerate(events):
            rows.append({"session_id": s, "item_id": item, "interaction": inter,
                         "timestamp": T0 + timedelta(days=day, minutes=j)})
    return validate_sessions(pl.DataFrame(rows))


def one_line_error(result) -> str:
    """The one ``Error: ...`` line of a failed CliRunner result (exit 2, no traceback), or fail the test."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [ln for ln in result.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def tree(directory) -> set[str]:
    """Every path below ``directory`` (relative, hidden ones included), to assert nothing was left behind."""
    from pathlib import Path

    root = Path(directory)
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_cli(*args: object):
    """A command as a user types it (click's CliRunner); exceptions propagate so a traceback fails the test."""
    from click.testing import CliRunner

    from recs.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def planted_split(d, events: int, seed: int) -> None:
    """``d/s.parquet`` (a planted log) and its time split ``d/train.parquet``, ``d/test.parquet``."""
    assert run_cli("synth", "--events", events, "--seed", seed, "--out", d / "s.parquet").exit_code == 0
    r = run_cli("split", d / "s.parquet", "--train", d / "train.parquet", "--test", d / "test.parquet")
    assert r.exit_code == 0, r.output


def planted_small_model(d, seed: int) -> None:
    """``planted_split(d, 20_000, seed)`` and a small one-thread model of its training part at ``d/model``
    (dim 16, 2 epochs): enough for the index-writing tests that compare two ways of building one index."""
    planted_split(d, 20_000, seed)
    r = run_cli("train-embeddings", d / "train.parquet", "--out", d / "model", "--dim", 16, "--epochs", 2,
                "--workers", 1, "--quiet")
    assert r.exit_code == 0, r.output


def planted_covisit_split(d, index: str = "index") -> None:
    """``planted_split(d, 5_000, 1)`` and a co-visitation index of its training part at ``d/index``: an index
    in seconds (no training), for tests of what reads one."""
    planted_split(d, 5_000, 1)
    r = run_cli("build-index", "--method", "co-visitation", "--sessions", d / "train.parquet", "--out", d / index,
                "--k", 20, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output


def assert_plausible_mix(df) -> None:
    """A planted log's interaction shares and session lengths stay in the ranges of real marketplace logs
    (mostly clicks, a few percent carts, a heavy tail of long sessions), whichever world made it."""
    mix = dict(df["interaction"].value_counts(normalize=True).iter_rows())
    assert 0.86 < mix["click"] < 0.93 and 0.035 < mix["cart"] < 0.07
    assert 0.015 < mix["favorite"] < 0.045 and 0.01 < mix["purchase"] < 0.035
    lengths = df.group_by("session_id").len()["len"]
    assert lengths.median() < 10 and lengths.max() > 100


def start_server(index: str | Path, tmp: Path, *options: str, cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """``recs serve --port 0`` in a subprocess (its temporary files under ``tmp``; ``cwd`` for a relative
    ``index``): the process and its URL, read from the start line (the server's stderr on failure)."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("recs")), "serve", "--index", str(index), "--port", "0",
                             "--no-access-log", *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp)})
    line = proc.stdout.readline()
    url = re.search(r"on (http://127\.0\.0\.1:\d+);", line)
    if not url:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, url[1]


def assert_same_model(a: Path, b: Path) -> None:
    """Two model directories hold the same model: tokens, both vector files to the bit (one thread, same seed,
    same corpus), counts (with the regularization pairs), config and input fingerprint (the engine parities)."""
    ta, tb = (pl.read_parquet(d / "tokens.parquet") for d in (a, b))
    assert ta.equals(tb) and ta.schema == tb.schema
    for name in ("vectors_in.npy", "vectors_out.npy"):
        assert np.array_equal(np.load(a / name), np.load(b / name))
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    assert ma["counts"] == mb["counts"] and ma["counts"]["regularization_pairs"] > 1000
    assert ma["config"] == mb["config"] and ma["input"]["fingerprint"] == mb["input"]["fingerprint"]
