"""The cold-start split of the hit rate (``recs.eval.cold``), worked by hand.

Training knows items 1, 2, 3. Test sessions (click -> cart candidates):

    s1: click 1, cart 2      trigger 1 (known), target 2 (known)   list of 1 = [2]      hit, both known
    s2: click 7, cart 8      trigger 7 (new),   target 8 (new)     list of 7 = [8]      hit, new target + trigger
    s3: click 1, cart 9      trigger 1 (known), target 9 (new)     list of 1 = [2]      miss, new target
    s4: click 7, cart 3      trigger 7 (new),   target 3 (known)   list of 7 = [8]      miss, new trigger
    s5: cart 2               no trigger                                                  not scored

So: new_target 1/2, new_trigger 1/2, new_either 1/3, known_both 1/1; active click items 1 and 7 (7 new),
both with lists: coverage 1.0, new items' coverage 1.0 over 1 new active item.
"""

from __future__ import annotations

import json

import polars as pl
import pytest

from recs.candidates.build import write_index
from recs.config import EvalConfig, IndexConfig
from recs.eval.cold import cold_split
from recs.sessions.io import write_sessions

from helpers import one_line_error, run_cli, sessions_frame

TEST = sessions_frame({
    "s1": [(1, "click"), (2, "cart")],
    "s2": [(7, "click"), (8, "cart")],
    "s3": [(1, "click"), (9, "cart")],
    "s4": [(7, "click"), (3, "cart")],
    "s5": [(2, "cart")],
}, day=1)
TRAIN = sessions_frame({"t1": [(1, "click"), (2, "cart"), (3, "click")]})
CANDS = pl.DataFrame({"item_id": [1, 7], "candidate_item_id": [2, 8], "rank": [1, 1], "score": [1.0, 1.0]},
                     schema_overrides={"rank": pl.Int32, "score": pl.Float32})
EXPECTED = {"new_target": (2, 1), "new_trigger": (2, 1), "new_either": (3, 1), "known_both": (1, 1)}


def test_cold_split_by_hand():
    got = cold_split(TEST, CANDS, "click", TRAIN["item_id"].unique(), EvalConfig(targets=("cart",)))
    assert (got["targets_with_trigger"], got["hits"]) == (4, 2)
    for split, (scored, hits) in EXPECTED.items():
        assert (got[f"{split}_targets_with_trigger"], got[f"{split}_hits"]) == (scored, hits), split
        assert got[f"{split}_hit_rate"] == pytest.approx(hits / scored)
    # the two complementary groups add up to the whole
    assert got["new_either_targets_with_trigger"] + got["known_both_targets_with_trigger"] == 4
    assert got["new_either_hits"] + got["known_both_hits"] == got["hits"]
    assert (got["new_active_items"], got["new_coverage"], got["coverage"]) == (1, 1.0, 1.0)


def test_eval_hitrate_train_option(tmp_path):
    """The same numbers through the CLI's --train; without it, no cold fields."""

    class Hand:  # the smallest generator write_index takes: one fixed table
        name, interaction_aware = "hand", True

        def candidate_blocks(self, source, target, k):
            return iter([CANDS])

        def set_details(self, source, target):
            return {}

        def settings(self):
            return {}

    index = tmp_path / "index"
    write_index(index, Hand(), IndexConfig(pairs=(("click", "cart"),)), {"model": {"path": "hand"}}, None)
    write_sessions(TEST, tmp_path / "test.parquet")
    write_sessions(TRAIN, tmp_path / "train.parquet")
    out = tmp_path / "e.json"
    r = run_cli("eval-hitrate", "--index", index, "--sessions", tmp_path / "test.parquet", "--targets", "cart",
                "--train", tmp_path / "train.parquet", "--json", out)
    assert r.exit_code == 0, r.output
    assert "either new: hit rate" in r.output
    row = json.loads(out.read_text())["results"][0]
    for split, (scored, hits) in EXPECTED.items():
        assert (row[f"{split}_targets_with_trigger"], row[f"{split}_hits"]) == (scored, hits), split
    r = run_cli("eval-hitrate", "--index", index, "--sessions", tmp_path / "test.parquet", "--json", out)
    assert r.exit_code == 0 and "new_target_hits" not in json.loads(out.read_text())["results"][0]
    r = run_cli("eval-hitrate", "--index", index, "--sessions", tmp_path / "test.parquet",
                "--train", tmp_path / "nope.parquet")
    assert "nope.parquet" in one_line_error(r)


def test_training_ids_of_another_kind_compare_as_text():
    """A CSV training file of text ids ("007" keeps a column text) beside integer test ids: the ids
    compare as names (recs.eval.ids), the same split as with integer ids, not a polars error."""
    cfg = EvalConfig(targets=("cart",))
    want = cold_split(TEST, CANDS, "click", TRAIN["item_id"].unique(), cfg)
    as_text = pl.Series("item_id", ["1", "2", "3", "007"])
    assert cold_split(TEST, CANDS, "click", as_text, cfg) == want
    text_test = TEST.with_columns(pl.col("item_id").cast(pl.String))
    assert cold_split(text_test, CANDS, "click", TRAIN["item_id"].unique(), cfg) == want
