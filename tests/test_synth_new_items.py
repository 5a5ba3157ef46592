"""Planted new listings in the synthetic log (``SynthConfig.new_items``, ``recs synth --new-items``)
and the world's catalogue (``recs synth --catalog``)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from recs.config import SplitConfig
from recs.errors import ConfigError
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate

from helpers import one_line_error, run_cli, tree

EVENTS, SEED = 30_000, 2
LAST_DAY = datetime(2026, 1, 10, tzinfo=timezone.utc)  # the default start 2026-01-01 + 10 days - 1
LOG_START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def fingerprint(df: pl.DataFrame) -> str:
    """A hash of every column's values (names, dtypes' physical bytes, strings), independent of how
    parquet would encode them, so it stays put across polars versions."""
    h = hashlib.blake2b(digest_size=16)
    for name in df.columns:
        col = df[name]
        h.update(name.encode())
        if col.dtype == pl.String:
            h.update("\x00".join(col.to_list()).encode())
        else:
            h.update(col.to_physical().to_numpy().tobytes())
    return h.hexdigest()


# Computed with the generator as it was before new_items existed (commit 4b3d7f2): the default must
# keep making exactly these logs and worlds.
BEFORE = [
    ((20_000, 5, 10), "b210ef24a1bcf6d4d2a422ea4d3dcff1", "25a97ceae16f7c26e1ce0540b64c6254"),
    ((3_000, 11, 3), "dd35084b0f8c2a88bf7a511ee040aae6", "973318023c0e15384247b7cb618bc403"),
]


@pytest.mark.parametrize(("args", "log_hash", "world_hash"), BEFORE)
def test_default_is_the_log_of_before(args, log_hash, world_hash):
    events, seed, days = args
    df, world = generate(SynthConfig(events=events, seed=seed, days=days))
    assert fingerprint(df) == log_hash and fingerprint(world.frame()) == world_hash
    assert df.height == events  # nothing dropped
    assert not world.item_new.any()
    assert (world.catalog()["listed_at"] == LOG_START).all()


@pytest.fixture(scope="module")
def logs():
    base = generate(SynthConfig(events=EVENTS, seed=SEED))
    new = generate(SynthConfig(events=EVENTS, seed=SEED, new_items=0.2))
    return base, new


def test_new_listings_lose_exactly_their_events_before_the_last_day(logs):
    (base, _), (df, world) = logs
    n_items = world.item_ids.size
    assert world.item_new.sum() == round(0.2 * n_items)
    new_ids = pl.Series("item_id", world.item_ids[world.item_new])
    is_new = pl.col("item_id").is_in(new_ids.implode())
    # the log with new listings is the log without them, minus their events before the last day, in order
    expected = base.filter(~(is_new & (pl.col("timestamp") < LAST_DAY)))
    assert df.equals(expected)
    assert df.height < base.height
    # each new listing has events on the last day, or none at all
    assert df.filter(is_new)["timestamp"].min() >= LAST_DAY
    assert 0 < df.filter(is_new)["item_id"].n_unique() < new_ids.len()


def test_about_a_fifth_of_the_items_seen_before_the_last_day_are_not_any_more(logs):
    (base, _), (df, _) = logs

    def seen_before(frame):
        return set(frame.filter(pl.col("timestamp") < LAST_DAY)["item_id"].to_list())

    was, now = seen_before(base), seen_before(df)
    assert now <= was
    assert 0.16 < 1 - len(now) / len(was) < 0.24  # drawn uniformly: 20% of them, give or take


def test_a_split_at_the_last_day_meets_them_in_test_only(logs):
    _, (df, world) = logs
    split = split_sessions(df, SplitConfig(cutoff=LAST_DAY.isoformat()))
    new_ids = pl.Series("item_id", world.item_ids[world.item_new]).implode()
    in_test = split.test.filter(pl.col("item_id").is_in(new_ids))["item_id"].n_unique()
    in_train = split.train.filter(pl.col("item_id").is_in(new_ids))["item_id"].n_unique()
    test_items = split.test["item_id"].n_unique()
    assert 0.12 < in_test / test_items < 0.3
    # only a session that starts before midnight and runs past it carries one into training
    assert in_train <= 0.05 * in_test


def test_catalogue_lists_every_world_item_once(logs):
    _, (df, world) = logs
    cat = world.catalog()
    assert cat.columns == ["item_id", "shop_id", "category", "listed_at"]
    assert cat.height == world.item_ids.size and cat["item_id"].n_unique() == cat.height
    assert set(cat["item_id"].to_list()) == set(world.item_ids.tolist())
    assert np.array_equal(cat["shop_id"].to_numpy(), world.item_shop)
    assert np.array_equal(cat["category"].to_numpy(), world.item_category)
    # the sessions' own columns agree with it for every item that occurs
    seen = df.select("item_id", "shop_id", "category").unique().join(cat, on="item_id", suffix="_cat")
    assert seen.height == df["item_id"].n_unique()
    assert (seen["shop_id"] == seen["shop_id_cat"]).all() and (seen["category"] == seen["category_cat"]).all()
    new = cat.filter(pl.col("listed_at") == LAST_DAY)
    assert new.height == world.item_new.sum()
    assert set(new["item_id"].to_list()) == set(world.item_ids[world.item_new].tolist())
    assert (cat.filter(pl.col("listed_at") != LAST_DAY)["listed_at"] == LOG_START).all()


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5])
def test_share_is_validated(share):
    with pytest.raises(ConfigError, match=r"--new-items must be in \[0, 1\)"):
        SynthConfig(new_items=share).validate()


def test_cli_writes_the_log_and_the_catalogue(tmp_path):
    r = run_cli("synth", "--events", 5_000, "--seed", 3, "--new-items", 0.2, "--out", tmp_path / "s.parquet",
                "--catalog", tmp_path / "cat.csv")
    assert r.exit_code == 0, r.output
    df, world = generate(SynthConfig(events=5_000, seed=3, new_items=0.2))
    assert pl.read_parquet(tmp_path / "s.parquet").equals(df)
    cat = pl.read_csv(tmp_path / "cat.csv", try_parse_dates=True)
    assert cat["item_id"].to_list() == world.item_ids.tolist()
    assert (cat.filter(pl.col("listed_at") == LAST_DAY).height == world.item_new.sum() == round(0.2 * cat.height))
    assert "new items" in r.output


def test_cli_refuses_before_writing_anything(tmp_path):
    line = one_line_error(run_cli("synth", "--events", 1_000, "--new-items", 1, "--out", tmp_path / "s.parquet"))
    assert "--new-items must be in [0, 1)" in line
    line = one_line_error(run_cli("synth", "--events", 1_000, "--out", tmp_path / "s.parquet",
                                  "--catalog", tmp_path / "cat.json"))
    assert "--catalog" in line and "unknown file type" in line
    line = one_line_error(run_cli("synth", "--events", 1_000, "--out", tmp_path / "s.parquet",
                                  "--catalog", tmp_path / "s.parquet"))
    assert "--catalog" in line
    assert tree(tmp_path) == set()
