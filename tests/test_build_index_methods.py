"""``recs build-index --method``: any method of ``recs compare`` written as an index, and scored by
``recs eval-hitrate`` to exactly the numbers ``compare`` reports for it on the same split."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from recs.artifacts import verify_artifact
from recs.candidates.build import build_method_index, load_candidates, load_index_manifest
from recs.candidates.registry import MethodConfig
from recs.config import IndexConfig, TrainConfig
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART

from helpers import one_line_error, planted_split, run_cli

K = 25
TRAIN = ["--dim", "16", "--epochs", "3", "--workers", "1"]  # the same for compare and train-embeddings
SETS = (CLICK_TO_CART, CART_TO_CART)


run = run_cli


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("methods")
    planted_split(d, 20_000, 4)
    r = run("compare", d / "train.parquet", d / "test.parquet", "--k", K, "--methods",
            "ours,co-occurrence,co-visitation", *TRAIN, "--quiet", "--json", d / "compare.json")
    assert r.exit_code == 0, r.output
    return d


def compared(d: Path) -> dict[tuple[str, str], dict]:
    """(method, set) -> the hits and coverage rows of compare's JSON, merged."""
    data = json.loads((d / "compare.json").read_text())
    rows: dict[tuple[str, str], dict] = {}
    for row in data["hits"] + data["coverage"]:
        rows.setdefault((row["method"], row["set"]), {}).update(row)
    return rows


def evaluated(d: Path, index: Path) -> dict[str, dict]:
    out = index.with_suffix(".json")
    r = run("eval-hitrate", "--index", index, "--sessions", d / "test.parquet", "--json", out)
    assert r.exit_code == 0, r.output
    return {row["candidate_set"]: row for row in json.loads(out.read_text())["results"]}


@pytest.mark.parametrize("method", ["co-visitation", "co-occurrence", "ours"])
def test_eval_hitrate_of_a_built_index_is_what_compare_reports(split, method):
    d = split
    index = d / f"{method}_index"
    if method == "ours":  # ours keeps its two steps: train-embeddings, then build-index --model
        r = run("train-embeddings", d / "train.parquet", "--out", d / "model", *TRAIN, "--quiet")
        assert r.exit_code == 0, r.output
        r = run("build-index", "--model", d / "model", "--out", index, "--k", K, "--threads", 1, "--quiet")
    else:
        r = run("build-index", "--method", method, "--sessions", d / "train.parquet", "--out", index, "--k", K,
                "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    rows, want = evaluated(d, index), compared(d)
    for name in SETS:
        expected = want[(method, name)]
        for field in ("targets", "targets_with_trigger", "hits", "hit_rate", "active_items", "covered_items",
                      "coverage", "mean_list_length", "catalogue_reach"):
            assert rows[name][field] == expected[field], (method, name, field)
    assert load_index_manifest(index)["method"]["name"] == method


def test_method_manifest_records_the_sessions_and_the_method(split):
    d = split
    index = d / "co-visitation_index2"
    r = run("build-index", "--method", "co-visitation", "--sessions", d / "train.parquet", "--out", index,
            "--k", K, "--threads", 1, "--quiet", "--pairs", "click:cart,cart:cart,favorite:purchase")
    assert r.exit_code == 0, r.output
    manifest = load_index_manifest(index)
    assert manifest["sessions"]["path"] == str(d / "train.parquet") and len(manifest["sessions"]["fingerprint"]) == 32
    assert "model" not in manifest and manifest["indexes"] == {}
    assert manifest["method"]["name"] == "co-visitation" and manifest["method"]["config"]["config"]["max_events"] == 30
    assert manifest["training_catalogue_items"] == pl.read_parquet(d / "train.parquet")["item_id"].n_unique()
    assert verify_artifact(index)["ok"]
    # an item-level method writes its one list for every pair asked for
    first = load_candidates(index, "click_to_cart")
    for name in ("cart_to_cart", "favorite_to_purchase"):
        assert load_candidates(index, name).equals(first)


def test_time_unit_is_honoured(split, tmp_path):
    d = split
    train = pl.read_parquet(d / "train.parquet")
    as_ms = train.with_columns(pl.col("timestamp").dt.epoch("ms"))
    as_ms.write_csv(tmp_path / "train_ms.csv")
    msg = one_line_error(run("build-index", "--method", "co-visitation", "--sessions", tmp_path / "train_ms.csv",
                             "--out", tmp_path / "i", "--k", K, "--quiet"))
    assert "timestamp" in msg and "ms" in msg
    r = run("build-index", "--method", "co-visitation", "--sessions", tmp_path / "train_ms.csv", "--time-unit", "ms",
            "--out", tmp_path / "i", "--k", K, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    r = run("build-index", "--method", "co-visitation", "--sessions", d / "train.parquet", "--out", tmp_path / "j",
            "--k", K, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    assert load_candidates(tmp_path / "i", "click_to_cart").equals(load_candidates(tmp_path / "j", "click_to_cart"))


@pytest.mark.parametrize(("args", "message"), [
    (["--method", "co-visitation"], "--method co-visitation is fitted on training sessions: give --sessions TRAIN"),
    (["--method", "nope", "--sessions", "x.parquet"], "--method: unknown nope; choose from embedding"),
    (["--method", "co-visitation", "--model", "m", "--sessions", "x.parquet"], "--model is a trained model of ours"),
    (["--model", "m", "--sessions", "x.parquet"], "not both"),
    (["--method", "co-visitation", "--sessions", "TRAIN", "--pairs", "click:wishlist"],
     "'wishlist' is not in the training sessions"),
])
def test_bad_method_options_are_one_line(split, tmp_path, args, message):
    args = [str(split / "train.parquet") if a == "TRAIN" else a for a in args]
    msg = one_line_error(run("build-index", *args, "--out", tmp_path / "i", "--quiet"))
    assert message in msg
    assert not (tmp_path / "i").exists()


def test_library_function_is_the_command(split, tmp_path):
    # the Python side of build-index --method writes what the command writes
    manifest = build_method_index("co-purchase", split / "train.parquet", tmp_path / "lib", IndexConfig(k=K, threads=1))
    r = run("build-index", "--method", "co-purchase", "--sessions", split / "train.parquet", "--out", tmp_path / "cli",
            "--k", K, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    assert set(manifest["candidate_sets"]) == {"click_to_cart", "cart_to_cart"}
    for name in manifest["candidate_sets"]:
        assert load_candidates(tmp_path / "lib", name).equals(load_candidates(tmp_path / "cli", name))


def test_ours_trained_from_sessions_writes_its_faiss_indexes(split, tmp_path):
    methods = MethodConfig(train=TrainConfig(dim=8, epochs=1, workers=1))
    manifest = build_method_index("ours", split / "train.parquet", tmp_path / "ours", IndexConfig(k=5, threads=1),
                                  methods)
    assert set(manifest["indexes"]) == {"cart"} and (tmp_path / "ours" / "indexes" / "cart.prob.faiss").is_file()
    assert manifest["method"]["config"]["train_config"]["dim"] == 8 and "sessions" in manifest
    assert manifest["candidate_sets"]["cart_to_cart"]["backoff_queries"] > 0


def test_non_default_options_rebuild_what_compare_scored(split, tmp_path):
    """compare's --seed, --dim, --epochs, --cooc-k, --als-factors reach build-index too, so any compare run
    (not only one with the defaults) can be rebuilt method by method."""
    pytest.importorskip("implicit", reason="implicit is not installed (ALS): pip install -e '.[compare]'")
    d = split
    options = ["--seed", 3, "--dim", 12, "--epochs", 2, "--cooc-k", 2, "--als-factors", 8]
    r = run("compare", d / "train.parquet", d / "test.parquet", "--k", K, "--methods", "mf,embedding-reg",
            "--workers", 1, *options, "--quiet", "--json", tmp_path / "compare.json")
    assert r.exit_code == 0, r.output
    want = {(row["method"], row["set"]): row for row in json.loads((tmp_path / "compare.json").read_text())["hits"]}
    for method in ("mf", "embedding-reg"):
        index = tmp_path / f"{method}_index"
        r = run("build-index", "--method", method, "--sessions", d / "train.parquet", "--out", index, "--k", K,
                "--threads", 1, *options, "--quiet")
        assert r.exit_code == 0, r.output
        got = evaluated(d, index)
        for name in SETS:
            assert got[name]["hits"] == want[(method, name)]["hits"], (method, name)
            assert got[name]["hit_rate"] == want[(method, name)]["hit_rate"], (method, name)


def test_any_trigger_scores_compares_item_to_item_column(split):
    """An item-level method's one list, scored with any earlier event as trigger, is compare's Item-to-Item."""
    d = split
    index = d / "co-visitation_any"
    r = run("build-index", "--method", "co-visitation", "--sessions", d / "train.parquet", "--out", index,
            "--k", K, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    out = d / "any.json"
    r = run("eval-hitrate", "--index", index, "--sessions", d / "test.parquet", "--any-trigger", "--json", out)
    assert r.exit_code == 0 and "(any event)" in r.output, r.output
    got = {row["candidate_set"]: row for row in json.loads(out.read_text())["results"]}
    want = compared(d)[("co-visitation", "item_to_item")]
    for name in SETS:  # one list under every pair: the same Item-to-Item numbers
        assert (got[name]["hits"], got[name]["hit_rate"]) == (want["hits"], want["hit_rate"])
    # the flag changes what is scored: far more targets have an earlier event of any kind than a cart
    assert want["targets_with_trigger"] > compared(d)[("co-visitation", CART_TO_CART)]["targets_with_trigger"]
    assert got[CART_TO_CART]["targets_with_trigger"] == want["targets_with_trigger"]
