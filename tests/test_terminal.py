"""What a person reads: display names, one precision per column, 80 columns without a cut cell, and
progress that is a bar on a terminal and one plain line per stage anywhere else."""

from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from rich.console import Console

import recs.cli.render as render
from recs.cli.main import cli
from recs.display import header, set_name
from recs.progress import TqdmProgress
from recs.sessions.io import read_sessions, validate_sessions, write_sessions

WIDTH = 80
STAGE_LINE = re.compile(r"[^:\r\x1b]+: (\d[\d,]* \S+ in )?\d+\.\d s")
SMALL = ["--dim", "16", "--epochs", "2", "--workers", "1"]


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict:
    """Every command once, run from its directory with relative paths, on an 80-column console."""
    d = tmp_path_factory.mktemp("term")
    cwd, width = Path.cwd(), render.console._width
    os.chdir(d)
    render.console._width = WIDTH
    try:
        out = {"synth": run("synth", "--events", 20_000, "--seed", 3, "--out", "s.parquet")}
        write_sessions(read_sessions("s.parquet"), "s.csv")
        out["prepare"] = run("prepare", "s.csv", "--out", "p.parquet")
        out["split"] = run("split", "s.parquet", "--train", "train.parquet", "--test", "test.parquet")
        out["stats"] = run("stats", "s.parquet", "--tz", "America/Argentina/Buenos_Aires")
        out["train-embeddings"] = run("train-embeddings", "train.parquet", "--out", "model", *SMALL)
        out["build-index"] = run("build-index", "--model", "model", "--out", "index", "--k", 20, "--threads", 1,
                                 "--pairs", "click:cart,cart:cart,click:click")
        out["eval-hitrate"] = run("eval-hitrate", "--index", "index", "--sessions", "test.parquet")
        out["check"] = run("check", "index")
        out["compare"] = run("compare", "train.parquet", "test.parquet", "--k", 10, *SMALL,
                             "--methods", "ours,co-visitation,co-purchase")
        out["quiet"] = run("train-embeddings", "train.parquet", "--out", "model2", *SMALL, "--quiet")
    finally:
        os.chdir(cwd)
        render.console._width = width
    for name, r in out.items():
        assert r.exit_code == 0, (name, r.output)
    return out


COMMANDS = ["synth", "prepare", "split", "stats", "train-embeddings", "build-index", "eval-hitrate", "check",
            "compare"]


@pytest.mark.parametrize("command", COMMANDS)
def test_output_fits_80_columns_and_cuts_nothing(outputs, command):
    text = outputs[command].stdout
    assert text.strip()
    assert "…" not in text and "\x1b" not in text
    too_wide = [line for line in text.splitlines() if len(line) > WIDTH]
    assert not too_wide, too_wide


@pytest.mark.parametrize("command", ["build-index", "eval-hitrate", "compare"])
def test_headers_and_set_names_read_like_the_readme(outputs, command):
    text = outputs[command].stdout
    assert "Click-to-Cart" in text and "Cart-to-Cart" in text
    assert not re.search(r"\b[a-z]+_to_[a-z]+\b", text), text  # neither a header nor a set name
    assert "time_s" not in text and "hit_rate" not in text


def test_eval_hitrate_one_precision_per_line(outputs):
    lines = {ln.split("│")[1].strip(): ln for ln in outputs["eval-hitrate"].stdout.splitlines() if ln.startswith("│")}
    assert {"hit rate", "coverage", "mean list length", "targets"} <= set(lines)
    cells = lambda name: [c.strip() for c in lines[name].split("│")[2:-1]]  # noqa: E731
    assert all(re.fullmatch(r"\d\.\d{4}", c) for c in cells("hit rate"))
    assert all(re.fullmatch(r"\d[\d,]*\.\d", c) for c in cells("mean list length"))
    assert all(re.fullmatch(r"\d{1,3}(,\d{3})*", c) for c in cells("targets"))


def test_compare_shows_time_with_one_decimal(outputs):
    rows = [ln for ln in outputs["compare"].stdout.splitlines() if ln.startswith("│ co-visitation")]
    time_cell = rows[0].split("│")[-2].strip()
    assert re.fullmatch(r"\d+\.\d", time_cell), rows


@pytest.mark.parametrize("command", ["prepare", "train-embeddings", "build-index", "compare"])
def test_progress_without_a_terminal_is_one_plain_line_per_stage(outputs, command):
    err = outputs[command].stderr
    assert "\r" not in err and "\x1b" not in err
    lines = err.splitlines()
    assert lines, "every stage reports its end"
    bad = [ln for ln in lines if not STAGE_LINE.fullmatch(ln)]
    assert not bad, bad
    if command == "train-embeddings":  # one line per stage, not one per update
        assert [ln.split(":")[0] for ln in lines] == ["co-occurrence", "training"]
        assert re.fullmatch(r"training: 2 epochs in \d+\.\d s", lines[1])
    if command == "prepare":  # stages that count nothing say only how long they took, not "0file"
        assert "0file" not in err and "0 file" not in err
        assert any(re.fullmatch(r"write: \d+\.\d s", ln) for ln in lines), lines
    if command == "compare":
        assert re.fullmatch(r"compare: 3 methods in \d+\.\d s", lines[-1])


def test_quiet_prints_no_progress(outputs):
    assert outputs["quiet"].stderr == ""


def test_stats_shows_first_and_last_event_in_the_zone_it_was_given(tmp_path):
    t = datetime(2017, 11, 25, 15, 30, tzinfo=timezone.utc)  # 23:30 in Shanghai
    frame = validate_sessions(pl.DataFrame({"session_id": [1, 1], "item_id": [1, 2], "interaction": ["click"] * 2,
                                            "timestamp": [t, t.replace(hour=17)]}))
    write_sessions(frame, tmp_path / "s.parquet")
    r = run("stats", tmp_path / "s.parquet", "--tz", "Asia/Shanghai", "--json", tmp_path / "s.json")
    assert r.exit_code == 0, r.output
    assert "first event (Asia/Shanghai)" in r.stdout and "2017-11-25T23:30:00+08:00" in r.stdout
    assert "2017-11-26T01:30:00+08:00" in r.stdout and "15:30" not in r.stdout
    st = json.loads((tmp_path / "s.json").read_text())
    assert st["time_zone"] == "Asia/Shanghai"
    assert st["first_event"] == "2017-11-25T15:30:00+00:00" and st["first_event_local"] == "2017-11-25T23:30:00+08:00"
    assert st["last_event_local"] == "2017-11-26T01:30:00+08:00"


def test_split_folds_a_long_path_instead_of_cutting_it(tmp_path, monkeypatch):
    monkeypatch.setattr(render.console, "_width", WIDTH)
    t = datetime(2024, 1, 1, tzinfo=timezone.utc)
    frame = validate_sessions(pl.DataFrame({
        "session_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 3], "interaction": ["click", "cart"] * 2,
        "timestamp": [t, t.replace(minute=1), t.replace(day=5), t.replace(day=5, minute=1)]}))
    write_sessions(frame, tmp_path / "s.parquet")
    deep = tmp_path / "a-directory-with-a-long-name" / "and-another-one-below-it"
    deep.mkdir(parents=True)
    train = deep / "train.parquet"
    r = run("split", tmp_path / "s.parquet", "--train", train, "--test", tmp_path / "te.parquet", "--test-days", 2)
    assert r.exit_code == 0, r.output
    assert "…" not in r.stdout and all(len(ln) <= WIDTH for ln in r.stdout.splitlines())
    rows = [ln.split("│") for ln in r.stdout.splitlines() if ln.startswith("│")]
    start = next(i for i, cells in enumerate(rows) if cells[1].strip() == "file")
    end = next(i for i in range(start + 1, len(rows)) if rows[i][1].strip())
    assert "".join(cells[2].strip() for cells in rows[start:end]) == str(train)
    assert "2024-01-01 00:00:00+00:00" in r.stdout  # a time is never broken either


# --- the pieces ------------------------------------------------------------------------------------------------


def test_display_names():
    assert [set_name(s) for s in ("click_to_cart", "cart_to_cart", "favorite_to_cart")] == [
        "Click-to-Cart", "Cart-to-Cart", "Favorite-to-Cart"]
    assert set_name("co-visitation") == "co-visitation"
    assert header("time_s") == "time (s)" and header("hit_rate") == "hit rate" and header("item_to_item") == (
        "Item-to-Item")
    assert header("click_to_click") == "Click-to-Click" and header("some_key") == "some key"


def _text(renderable, width: int = WIDTH) -> str:
    c = Console(width=width, file=io.StringIO(), color_system=None)
    c.print(renderable)
    return c.file.getvalue()


def test_one_precision_per_column_whatever_the_magnitude():
    rows = [{"candidate_set": "click_to_cart", "hit_rate": 0.5, "time_s": 123.456, "hits": 1234567},
            {"candidate_set": "cart_to_cart", "hit_rate": 12.0, "time_s": 0.04, "hits": 3}]
    text = _text(render.table("t", rows))
    for cell in ("0.5000", "12.0000", "123.5", "0.0", "1,234,567", "Click-to-Cart", "Cart-to-Cart", "time (s)"):
        assert cell in text, cell
    assert "12.00 " not in text and "click_to_cart" not in text
    given = _text(render.table("t", rows, formats={"hits": ".1f"}))  # a format given per column wins
    assert "1234567.0" in given and "3.0" in given


def test_headers_wrap_rather_than_cells_are_cut():
    rows = [{"method": "interaction-mf", "active_items": 9, "covered_items": 9, "coverage": 1.0,
             "mean_list_length": 20.0, "catalogue_reach": 0.5}]
    text = _text(render.table("a title", rows))  # 95 columns with headers on one line
    assert "interaction-mf" in text and "catalogue" in text and "…" not in text
    assert all(len(ln) <= WIDTH for ln in text.splitlines())
    # more than fits even with wrapped headers: a value folds onto the next line, it never ends in "…"
    text = _text(render.table("a title", [{**rows[0], "targets_without_trigger": 3, "hits": 1}]))
    assert "…" not in text and all(len(ln) <= WIDTH for ln in text.splitlines())


def test_stage_lines_without_a_terminal():
    out = io.StringIO()
    p = TqdmProgress(stream=out)
    with p.stage("training", total=5, unit="epoch") as bar:
        for _ in range(5):
            bar.update(1)
    with p.stage("parse", unit="file"):
        pass
    with pytest.raises(ValueError), p.stage("broken", total=3):
        raise ValueError("boom")  # the error speaks for itself: no line
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"training: 5 epochs in \d+\.\d s", lines[0])
    assert re.fullmatch(r"parse: \d+\.\d s", lines[1])


def test_quiet_progress_writes_nothing():
    out = io.StringIO()
    with TqdmProgress(enabled=False, stream=out).stage("training", total=5) as bar:
        bar.update(5)
    assert out.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_gives_way_to_the_stage_line():
    out = _Terminal()
    with TqdmProgress(stream=out).stage("training", total=2, unit="epoch") as bar:
        bar.update(2)
    assert "\r" in out.getvalue()  # a live tqdm bar
    assert re.search(r"training: 2 epochs in \d+\.\d s\n$", out.getvalue())


def test_units_read_as_words():
    from recs.progress import plural

    assert [plural("epoch", 1), plural("epoch", 40), plural("query", 2), plural("day", 3), plural("s", 2)] == [
        "epoch", "epochs", "queries", "days", "s"]
