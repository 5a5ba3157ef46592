from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from recs.config import SplitConfig
from recs.errors import ConfigError, InputError
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate

from helpers import assert_plausible_mix


@pytest.fixture(scope="module")
def log():
    return generate(SynthConfig(events=60_000, seed=3))


def test_synth_is_deterministic_and_sized(log):
    df, world = log
    again, _ = generate(SynthConfig(events=60_000, seed=3))
    assert df.equals(again)
    assert df.height == 60_000
    assert not df.equals(generate(SynthConfig(events=60_000, seed=4))[0])
    # every event's category is its item's planted category
    truth = world.frame()
    joined = df.join(truth, on="item_id", suffix="_w")
    assert (joined["category"] == joined["category_w"]).all()


def test_synth_interaction_mix_and_heavy_tail(log):
    df, _ = log
    assert_plausible_mix(df)
    assert df.group_by("user_id").agg(pl.col("session_id").n_unique())["session_id"].mean() > 2


def test_synth_planted_structure(log):
    df, world = log
    # carts in a session are mostly in the session's clicked categories or their complements
    carts = df.filter(pl.col("interaction") == "cart").select("session_id", "category")
    clicks = df.filter(pl.col("interaction") == "click").group_by("session_id").agg(
        pl.col("category").mode().first().alias("intent"))
    c = carts.join(clicks, on="session_id")
    comp = world.complements

    def related(intent: list[int]) -> float:
        cats = c["category"].to_list()
        return float(np.mean([a == b or a in comp[b] for a, b in zip(cats, intent, strict=True)]))

    # the click mode misses the intent when noise ties it in short sessions, hence not ~1.0
    assert related(c["intent"].to_list()) > 0.75
    assert related(c["intent"].shuffle(seed=0).to_list()) < 0.15


def test_synth_appeal_decides_what_is_carted(log):
    # among items clicked often enough to tell, the cart/click ratio follows the planted appeal
    df, world = log
    appeal = pl.DataFrame({"item_id": world.item_ids, "appeal": world.item_appeal})

    def rho(frame: pl.DataFrame) -> float:
        counts = frame.group_by("item_id").agg((pl.col("interaction") == "click").sum().alias("clicks"),
                                               (pl.col("interaction") == "cart").sum().alias("carts"))
        t = counts.filter(pl.col("clicks") >= 30).join(appeal, on="item_id")
        return t.select(pl.corr(pl.col("carts") / pl.col("clicks"), "appeal", method="spearman")).item()

    # the same world with every item equally appealing: the ratio no longer follows that appeal
    flat, flat_world = generate(SynthConfig(events=60_000, seed=3, appeal_sigma=0.0))
    assert np.array_equal(flat_world.item_ids, world.item_ids)
    assert rho(df) > 0.3 and abs(rho(flat)) < 0.1, (rho(df), rho(flat))


def test_synth_browsing_clicks_sibling_categories_but_carts_the_intent(log):
    # a session's first click is in its intent leaf; browse clicks land in sibling leaves of the same
    # top-level category, and first-phase carts (before any complement click) are never in those
    df, world = log
    ev = df.with_columns(pl.int_range(pl.len()).over("session_id").alias("pos"))
    first = ev.filter(pl.col("pos") == 0).select("session_id", pl.col("category").alias("intent"))
    top = world.top_of
    clicks = ev.filter(pl.col("interaction") == "click").join(first, on="session_id")
    cat, intent = clicks["category"].to_numpy(), clicks["intent"].to_numpy()
    sibling = (top[cat] == top[intent]) & (cat != intent)
    assert 0.1 < sibling.mean() < 0.35  # p_browse 0.3 of the non-first intent clicks, diluted by the rest
    carts = ev.filter(pl.col("interaction") == "cart").join(first, on="session_id")
    cc, ci = carts["category"].to_numpy(), carts["intent"].to_numpy()
    assert ((top[cc] == top[ci]) & (cc != ci)).mean() < 0.05  # only noise-click firsts or complements


def test_split_by_session_start(log):
    df, _ = log
    sp = split_sessions(df)
    assert sp.cutoff == datetime(2026, 1, 10, tzinfo=timezone.utc)
    assert sp.train.height + sp.test.height == df.height  # the synth log covers exactly 10 days
    assert set(sp.train["session_id"].to_list()).isdisjoint(sp.test["session_id"].to_list())
    starts = sp.test.group_by("session_id").agg(pl.col("timestamp").min())["timestamp"]
    assert starts.min() >= sp.cutoff and starts.max() < sp.end
    assert sp.train.group_by("session_id").agg(pl.col("timestamp").min())["timestamp"].max() < sp.cutoff
    two = split_sessions(df, SplitConfig(test_days=2))
    assert two.cutoff == datetime(2026, 1, 9, tzinfo=timezone.utc) and two.test.height > sp.test.height


def test_split_errors(log):
    df, _ = log
    with pytest.raises(InputError, match="nothing to train on"):
        split_sessions(df, SplitConfig(cutoff="2020-01-01"))
    with pytest.raises(ConfigError, match="not an ISO-8601"):
        split_sessions(df, SplitConfig(cutoff="yesterday"))
    with pytest.raises(ConfigError, match="--test-days"):
        split_sessions(df, SplitConfig(test_days=0))
