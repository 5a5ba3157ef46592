"""``recs build-index --engine spark``: the candidate search in Spark tasks (recs.spark.search).

On a small planted model the Spark search with one shard reads the very index file the single
machine writes and searches it with the same code, so its tables are equal to the single-machine
ones row for row; with shards the HNSW graphs differ, so the lists are compared by overlap (>= 0.99,
the issue's bar; the sharded merge itself is tested exactly in tests/test_shard_merge.py).
Uses the one session of tests/spark/conftest.py (``spark``, local[2]).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")

from recs.artifacts import verify_artifact
from recs.candidates.build import build_index, load_candidates, load_index_manifest
from recs.candidates.index_check import part_file
from recs.candidates.shards import list_overlap
from recs.columns import Col
from recs.config import IndexConfig, IndexEngineConfig

from helpers import planted_split, run_cli

SETS = ("click_to_cart", "cart_to_cart")
CFG = IndexConfig(k=20, threads=1)
TRAIN = ["--dim", "16", "--epochs", "2", "--workers", "1", "--quiet"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A 20k-event planted split, our model on it, and its single-machine index (``single``)."""
    d = tmp_path_factory.mktemp("spark_search")
    planted_split(d, 20_000, 5)
    assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "model", *TRAIN).exit_code == 0
    build_index(d / "model", d / "single", CFG)
    return d


def hit_rates(d: Path, index: Path) -> list[dict]:
    out = index.with_suffix(".json")
    r = run_cli("eval-hitrate", "--index", index, "--sessions", d / "test.parquet", "--json", out)
    assert r.exit_code == 0, r.output
    return json.loads(out.read_text())["results"]


def test_one_shard_equals_the_single_machine_search(spark, planted):
    d = planted
    manifest = build_index(d / "model", d / "spark", CFG, engine=IndexEngineConfig(engine="spark", partitions=3))
    assert manifest["format_version"] == 2
    assert manifest["engine"]["name"] == "spark" and manifest["engine"]["master"] == spark.sparkContext.master
    single = load_index_manifest(d / "single")
    for name in SETS:
        assert manifest["candidate_sets"][name]["parts"] == 3
        want = load_candidates(d / "single", name)
        assert want.height > 10_000
        assert load_candidates(d / "spark", name).equals(want)  # same rows, same order, same types
        got = load_candidates(d / "spark", name, lazy=True)
        assert got.filter(pl.col(Col.RANK) == 1).collect().height == want.filter(pl.col(Col.RANK) == 1).height
        for key in ("items", "rows", "mean_list_length", "backoff_queries"):
            assert manifest["candidate_sets"][name][key] == single["candidate_sets"][name][key]
        # part i holds the i-th run of queries: parts are not empty and do not share an item
        parts = [pl.read_parquet(d / "spark" / part_file(name, i))[Col.ITEM].unique() for i in range(3)]
        assert all(len(p) > 0 for p in parts) and sum(map(len, parts)) == want[Col.ITEM].n_unique()
    assert manifest["indexes"] == single["indexes"]  # the same index file, described alike
    assert (d / "spark" / "indexes" / "cart.prob.faiss").read_bytes() == (
        d / "single" / "indexes" / "cart.prob.faiss").read_bytes()
    assert json.dumps(hit_rates(d, d / "spark")) == json.dumps(hit_rates(d, d / "single"))
    report = verify_artifact(d / "spark")
    assert report["ok"] and {r["status"] for r in report["files"]} == {"ok"}  # no Spark leftovers (_SUCCESS, .crc)
    assert not [p for p in d.iterdir() if p.name.startswith(".spark.")]  # scratch of shipped files removed


def test_sharded_search_overlaps_the_single_machine_lists(spark, planted):
    d = planted
    r = run_cli("build-index", "--model", d / "model", "--out", d / "sharded", "--k", 20, "--threads", 1,
                "--engine", "spark", "--shards", 3, "--quiet")
    assert r.exit_code == 0, r.output
    assert "engine: spark" in r.output and "3 shards" in r.output
    manifest = load_index_manifest(d / "sharded")
    shards = manifest["indexes"]["cart"]["shards"]
    assert [s["offset"] for s in shards] == [0, shards[0]["rows"], shards[0]["rows"] + shards[1]["rows"]]
    assert sum(s["rows"] for s in shards) == manifest["indexes"]["cart"]["rows"]
    for name in SETS:
        want, got = load_candidates(d / "single", name), load_candidates(d / "sharded", name)
        assert list_overlap(want, got) >= 0.99
        # every list is whole: as many candidates per item as on one machine
        lengths = [f.group_by(Col.ITEM).len().sort(Col.ITEM) for f in (want, got)]
        assert lengths[0].equals(lengths[1])
        assert got.group_by(Col.ITEM).agg((pl.col(Col.CANDIDATE).n_unique() == pl.len()).alias("u"))["u"].all()
        assert got.filter(pl.col(Col.ITEM) == pl.col(Col.CANDIDATE)).is_empty()  # the item itself left out
    assert run_cli("check", d / "sharded").exit_code == 0
    rates = {row["candidate_set"]: row["hit_rate"] for row in hit_rates(d, d / "sharded")}
    single = {row["candidate_set"]: row["hit_rate"] for row in hit_rates(d, d / "single")}
    assert rates == pytest.approx(single, abs=0.01)


def test_text_item_ids(spark, tmp_path):
    """Item ids that are text go through Spark as strings and come back as polars String."""
    planted_split(tmp_path, 8_000, 6)
    train = pl.read_parquet(tmp_path / "train.parquet")
    train.with_columns(pl.format("sku-{}", Col.ITEM).alias(Col.ITEM)).write_parquet(tmp_path / "t.parquet")
    assert run_cli("train-embeddings", tmp_path / "t.parquet", "--out", tmp_path / "m", *TRAIN).exit_code == 0
    build_index(tmp_path / "m", tmp_path / "single", CFG)
    build_index(tmp_path / "m", tmp_path / "spark", CFG, engine=IndexEngineConfig(engine="spark", shards=2))
    for name in SETS:
        want, got = load_candidates(tmp_path / "single", name), load_candidates(tmp_path / "spark", name)
        assert got.schema == want.schema and got.schema[Col.ITEM] == pl.String
        assert list_overlap(want, got) >= 0.99
