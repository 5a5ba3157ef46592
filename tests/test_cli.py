"""The commands as a user types them (click's CliRunner), including every bad-input path."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from recs.cli.main import cli

from helpers import planted_split, run_cli

SMALL_TRAIN = ["--dim", "16", "--epochs", "3", "--workers", "1", "--quiet"]


run = run_cli


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("run")
    planted_split(d, 20_000, 2)
    assert run("train-embeddings", d / "train.parquet", "--out", d / "model", *SMALL_TRAIN).exit_code == 0
    r = run("build-index", "--model", d / "model", "--out", d / "index", "--k", 25, "--threads", 1, "--quiet",
            "--pairs", "click:cart,cart:cart,click:click")
    assert r.exit_code == 0, r.output
    return d


def test_every_command_has_help():
    assert run("--help").exit_code == 0
    for name, command in cli.commands.items():
        r = run(name, "--help")
        assert r.exit_code == 0 and "Example" in r.output, name
        assert command.help and len(command.help.split()) > 15, name


def test_end_to_end(pipeline):
    d = pipeline
    manifest = json.loads((d / "model" / "manifest.json").read_text())
    assert manifest["format"] == "recs.model" and manifest["config"]["dim"] == 16
    assert manifest["input"]["fingerprint"] and manifest["counts"]["tokens"] > 1000
    assert pl.read_parquet(d / "model" / "tokens.parquet").height == manifest["counts"]["tokens"]
    sets = sorted(p.name for p in (d / "index" / "candidates").iterdir())
    assert sets == ["cart_to_cart.parquet", "click_to_cart.parquet", "click_to_click.parquet"]
    c2c = pl.read_parquet(d / "index" / "candidates" / "click_to_cart.parquet")
    assert c2c["item_id"].dtype == pl.Int64 and c2c["rank"].max() == 25
    r = run("eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet", "--json", d / "eval.json")
    assert r.exit_code == 0 and "Click-to-Cart" in r.output and "hit rate" in r.output
    report = json.loads((d / "eval.json").read_text())
    rows = {row["candidate_set"]: row for row in report["results"]}
    assert set(rows) == {"click_to_cart", "cart_to_cart", "click_to_click"}
    row = rows["click_to_cart"]
    assert row["hits"] <= row["targets_with_trigger"] <= row["targets"]
    assert row["hit_rate"] == pytest.approx(row["hits"] / row["targets_with_trigger"])
    assert no_temp_left(d)


def test_backoff_in_manifest_and_off_switch(pipeline, tmp_path):
    d = pipeline
    on = json.loads((d / "index" / "manifest.json").read_text())
    assert on["config"]["score"] == "prob" and on["config"]["backoff"] is True
    # most items were clicked and never carted: they stand in as cart candidates and cart queries
    assert 0 < on["indexes"]["cart"]["backoff_rows"] < on["indexes"]["cart"]["rows"]
    assert on["candidate_sets"]["cart_to_cart"]["backoff_queries"] > 0
    r = run("build-index", "--model", d / "model", "--out", tmp_path / "plain", "--k", 25, "--threads", 1, "--quiet",
            "--score", "cosine", "--no-backoff")
    assert r.exit_code == 0, r.output
    off = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert off["indexes"]["cart"]["backoff_rows"] == 0
    assert off["indexes"]["cart"]["rows"] == on["indexes"]["cart"]["rows"] - on["indexes"]["cart"]["backoff_rows"]
    assert off["candidate_sets"]["cart_to_cart"]["backoff_queries"] == 0
    assert off["candidate_sets"]["cart_to_cart"]["items"] < on["candidate_sets"]["cart_to_cart"]["items"]


def no_temp_left(d: Path) -> bool:
    return not [p for p in d.iterdir() if ".tmp-" in p.name or ".old-" in p.name]


def test_rerun_replaces_artifact_atomically(pipeline, tmp_path):
    d = pipeline
    r = run("build-index", "--model", d / "model", "--out", d / "index", "--k", 25, "--threads", 1, "--quiet",
            "--pairs", "click:cart")
    assert r.exit_code == 0
    assert sorted(p.name for p in (d / "index" / "candidates").iterdir()) == ["click_to_cart.parquet"]
    assert no_temp_left(d)
    # a directory that is not a recs artifact is never overwritten
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    r = run("build-index", "--model", d / "model", "--out", mine, "--quiet")
    assert r.exit_code == 2 and "is not a recs.index directory" in r.output
    assert (mine / "notes.txt").read_text() == "keep me"


def one_line_error(r) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


def test_missing_column(tmp_path, pipeline):
    bad = tmp_path / "bad.parquet"
    pl.read_parquet(pipeline / "train.parquet").drop("interaction").write_parquet(bad)
    msg = one_line_error(run("train-embeddings", bad, "--out", tmp_path / "m", "--quiet"))
    assert "bad.parquet" in msg and "'interaction'" in msg and "found: session_id" in msg
    assert not (tmp_path / "m").exists()


def test_empty_file(tmp_path):
    (tmp_path / "e.csv").write_text("")
    msg = one_line_error(run("train-embeddings", tmp_path / "e.csv", "--out", tmp_path / "m", "--quiet"))
    assert "e.csv: file is empty" in msg and not (tmp_path / "m").exists()


def test_unknown_interaction_in_pairs(tmp_path, pipeline):
    msg = one_line_error(run("build-index", "--model", pipeline / "model", "--out", tmp_path / "i",
                             "--pairs", "click:wishlist", "--quiet"))
    assert "'wishlist' is not in the model" in msg and "cart, click, favorite, purchase" in msg
    assert not (tmp_path / "i").exists() and not list(tmp_path.iterdir())
    msg = one_line_error(run("build-index", "--model", pipeline / "model", "--out", tmp_path / "i",
                             "--pairs", "click-cart", "--quiet"))
    assert "'click-cart' is not of the form SOURCE:TARGET" in msg


def test_model_of_another_format_version(tmp_path, pipeline):
    import shutil

    old = tmp_path / "old-model"
    shutil.copytree(pipeline / "model", old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 0
    (old / "manifest.json").write_text(json.dumps(manifest))
    msg = one_line_error(run("build-index", "--model", old, "--out", tmp_path / "i", "--quiet"))
    assert "format version 0" in msg and "rebuild" in msg
    msg = one_line_error(run("build-index", "--model", tmp_path / "nothing", "--out", tmp_path / "i", "--quiet"))
    assert "no such recs.model directory" in msg
    msg = one_line_error(run("eval-hitrate", "--index", pipeline / "model", "--sessions", pipeline / "test.parquet"))
    assert "is a 'recs.model' directory, expected 'recs.index'" in msg


def test_bad_option_values(tmp_path, pipeline):
    msg = one_line_error(run("train-embeddings", pipeline / "train.parquet", "--out", tmp_path / "m", "--dim", "0"))
    assert "--dim must be in 1..10,000 (got 0)" in msg
    msg = one_line_error(run("eval-hitrate", "--index", pipeline / "index", "--sessions", pipeline / "test.parquet",
                             "--set", "nope"))
    assert "no candidate set 'nope'" in msg
