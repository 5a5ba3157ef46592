"""The ``view-before-cart`` world (``SynthConfig.variant``, ``recs synth --variant``): every cart follows a
click on the same item and sessions click items of one co-view cluster, so item-level methods are strong.
The default world is unchanged: ``test_synth_new_items.test_default_is_the_log_of_before`` pins its hashes."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs.errors import ConfigError
from recs.sessions.synth import SynthConfig, generate

from helpers import assert_plausible_mix, one_line_error, run_cli, tree

EVENTS, SEED = 30_000, 5
VBC = "view-before-cart"


@pytest.fixture(scope="module")
def log():
    return generate(SynthConfig(events=EVENTS, seed=SEED, variant=VBC))


def test_same_seed_same_log_and_the_default_columns(log):
    df, world = log
    again, again_world = generate(SynthConfig(events=EVENTS, seed=SEED, variant=VBC))
    assert df.equals(again) and world.frame().equals(again_world.frame())
    assert not df.equals(generate(SynthConfig(events=EVENTS, seed=SEED + 1, variant=VBC))[0])
    default, default_world = generate(SynthConfig(events=EVENTS, seed=SEED))
    assert df.height == EVENTS and df.schema == default.schema and not df.equals(default)
    # the same catalogue, taxonomy and shops as the default world; only the sessions differ
    assert np.array_equal(world.item_ids, default_world.item_ids)
    assert np.array_equal(world.item_category, default_world.item_category)
    assert default_world.item_coview is None and "coview_cluster" not in default_world.frame().columns
    truth = world.frame()
    joined = df.join(truth, on="item_id", suffix="_w")
    assert (joined["category"] == joined["category_w"]).all() and (joined["shop_id"] == joined["shop_id_w"]).all()


def test_interaction_mix_stays_plausible(log):
    df, _ = log
    assert_plausible_mix(df)


def test_every_cart_and_purchase_follows_a_click_on_the_same_item(log):
    df, _ = log
    first_click = (df.filter(pl.col("interaction") == "click").group_by("session_id", "item_id")
                   .agg(pl.col("timestamp").min().alias("clicked")))
    targets = df.filter(pl.col("interaction").is_in(["cart", "purchase"]))
    joined = targets.join(first_click, on=["session_id", "item_id"], how="left")
    assert targets.height > 1_000
    assert joined["clicked"].null_count() == 0
    assert (joined["clicked"] < joined["timestamp"]).all()  # strictly earlier in time, not just in row order


def test_sessions_click_items_of_one_co_view_cluster(log):
    df, world = log
    cluster = world.item_coview
    assert cluster is not None and cluster.size == world.item_ids.size
    # a cluster is a handful of items of one leaf category
    sizes, size = np.bincount(cluster), SynthConfig().coview_size
    assert sizes.min() >= 1 and np.median(sizes) >= size and sizes.max() < 2 * size  # a leaf of 3 is one cluster
    per_cluster = pl.DataFrame({"c": cluster, "cat": world.item_category}).group_by("c").agg(pl.col("cat").n_unique())
    assert (per_cluster["cat"] == 1).all()

    def top_share(assign: np.ndarray) -> float:
        """Mean share of a session's distinct clicked items in its top cluster (sessions with 3+ of them)."""
        by_item = pl.DataFrame({"item_id": world.item_ids, "cl": assign})
        clicks = df.filter(pl.col("interaction") == "click").select("session_id", "item_id").unique().join(
            by_item, on="item_id")
        per = clicks.group_by("session_id", "cl").len().group_by("session_id").agg(
            (pl.col("len").max() / pl.col("len").sum()).alias("share"), pl.col("len").sum().alias("n"))
        return per.filter(pl.col("n") >= 3)["share"].mean()

    rng = np.random.default_rng(0)
    planted, shuffled = top_share(cluster), top_share(rng.permutation(cluster))
    assert planted > 0.6 and shuffled < 0.35, (planted, shuffled)


def test_carts_come_from_the_co_viewed_items(log):
    # a cart's item shares its co-view cluster with most of the session's other clicked items
    df, world = log
    by_item = pl.DataFrame({"item_id": world.item_ids, "cl": world.item_coview})
    ev = df.join(by_item, on="item_id")
    carts = ev.filter(pl.col("interaction") == "cart").select("session_id", pl.col("cl").alias("cart_cl"))
    clicks = ev.filter(pl.col("interaction") == "click").select("session_id", "cl")
    pairs = carts.join(clicks, on="session_id")
    same = pairs.select((pl.col("cl") == pl.col("cart_cl")).mean()).item()
    shuffled = pairs.select((pl.col("cl").shuffle(seed=0) == pl.col("cart_cl")).mean()).item()
    assert same > 0.5 and shuffled < 0.05, (same, shuffled)


def test_bad_variant_is_refused():
    with pytest.raises(ConfigError, match="--variant 'nope': choose one of planted, view-before-cart"):
        SynthConfig(variant="nope").validate()
    for cfg in (SynthConfig(variant=VBC, coview_size=0), SynthConfig(variant=VBC, p_coview=1.5)):
        with pytest.raises(ConfigError):
            cfg.validate()


def test_cli_writes_the_variant_and_refuses_a_bad_name(tmp_path):
    r = run_cli("synth", "--events", 5_000, "--seed", 3, "--variant", VBC, "--out", tmp_path / "s.parquet",
                "--world", tmp_path / "w.parquet")
    assert r.exit_code == 0, r.output
    df, world = generate(SynthConfig(events=5_000, seed=3, variant=VBC))
    assert pl.read_parquet(tmp_path / "s.parquet").equals(df)
    assert pl.read_parquet(tmp_path / "w.parquet").equals(world.frame())
    bad = tmp_path / "bad"
    bad.mkdir()
    line = one_line_error(run_cli("synth", "--events", 1_000, "--variant", "nope", "--out", bad / "s.parquet"))
    assert "--variant 'nope'" in line and "planted, view-before-cart" in line
    assert tree(bad) == set()
