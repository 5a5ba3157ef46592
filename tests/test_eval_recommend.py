"""``recs eval-recommend`` on the hand-worked example of docs/evaluating.md, and ``recs recommend`` from the CLI.

The index (tests/hand_index.py) and the two files are small enough to score by hand; every number
asserted here is worked out in docs/evaluating.md, "Offline A/B: `recs eval-recommend`".
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from recs.config import RecommendConfig
from recs.errors import InputError
from recs.eval.recommend_ab import evaluate_arms

from hand_index import hand_index
from helpers import one_line_error, run_cli

LISTS = {"click_to_cart": {1: [10, 11, 12], 2: [11, 13], 3: [14]}, "cart_to_cart": {10: [20, 21]}}
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _events(rows: list[tuple[int, int, int, str]]) -> pl.DataFrame:
    """(user, session, item, interaction) rows, one minute apart in the given order."""
    return pl.DataFrame({
        "session_id": [r[1] for r in rows], "user_id": [r[0] for r in rows], "item_id": [r[2] for r in rows],
        "interaction": [r[3] for r in rows], "timestamp": [T0 + timedelta(minutes=i) for i in range(len(rows))],
    })


@pytest.fixture
def example(tmp_path):
    # user 1 clicks 1, 2 and carts 10; user 2 clicks 3; user 3 has no history
    history = _events([(1, 1, 1, "click"), (1, 1, 2, "click"), (1, 1, 10, "cart"), (2, 2, 3, "click"),
                       (3, 3, 3, "favorite")])
    # test window: user 1 carts 11 (new to them), buys 10 (carted before: re-finding), carts 99 (in no list);
    # user 2 carts 14; user 4 carts 11 but has no history, so is not evaluated
    test = _events([(1, 5, 11, "cart"), (1, 5, 10, "purchase"), (1, 5, 99, "cart"), (2, 6, 14, "cart"),
                    (4, 7, 11, "cart"), (3, 8, 3, "click")])
    history.write_parquet(tmp_path / "history.parquet")
    test.write_parquet(tmp_path / "test.parquet")
    return hand_index(tmp_path / "index", LISTS), tmp_path / "history.parquet", tmp_path / "test.parquet"


def by_arm(report):
    return {row["arm"]: row for row in report["arms"]}


def test_hand_worked_example(example):
    index, history, test = example
    report = evaluate_arms(index, history, test)
    assert report["users"] == 2  # users 1 and 2: history and a target; 3 has no target, 4 no history
    arms = by_arm(report)
    # click: user 1's list 11, 10, 13, 12 hits 11 and 10; user 2's list 14 hits 14 -> 3 of 4 targets
    assert (arms["click"]["hits"], arms["click"]["targets"]) == (3, 4)
    assert arms["click"]["hit_rate"] == 0.75 and arms["click"]["user_hit_share"] == 1.0
    # the bought 10 was carted in the history: re-finding (1 target, 1 hit); 11, 99, 14 are discovery (2 of 3)
    assert (arms["click"]["refinding_targets"], arms["click"]["refinding_hits"]) == (1, 1)
    assert (arms["click"]["discovery_targets"], arms["click"]["discovery_hits"]) == (3, 2)
    # cart: only user 1 carted (10 -> 20, 21): no target is in it, and user 2 has no list
    assert (arms["cart"]["hits"], arms["cart"]["users_with_list"]) == (0, 1)
    assert arms["cart"]["mean_list_length"] == 2.0
    # both: the click lists plus 20, 21; recent: 10 (no click_to_cart list), 2 and 1, so the click lists again
    assert arms["both"]["hits"] == 3 and arms["recent"]["hits"] == 3
    assert arms["both"]["mean_list_length"] == (6 + 1) / 2
    # catalogue reach: distinct candidates shown (11, 10, 13, 12, 14) over every item an arm could show: the
    # history's 1, 2, 3, 10 and the index's 1, 2, 3, 10, 11, 12, 13, 14, 20, 21 (a share, never above 1)
    assert arms["click"]["catalogue_reach"] == 5 / 10 and report["catalogue_items"] == 10
    for row in report["arms"]:
        assert row["refinding_targets"] + row["discovery_targets"] == row["targets"]
        assert row["refinding_hits"] + row["discovery_hits"] == row["hits"]


def test_k_cap_and_merge_rule_change_the_lists(example):
    index, history, test = example
    # k=1, score merge: user 1's best is 11 (score 1.0 from the most recent click, 2), so 10 is lost
    one = by_arm(evaluate_arms(index, history, test, RecommendConfig(k=1), arms=("click",)))["click"]
    assert one["hits"] == 2 and one["refinding_hits"] == 0 and one["mean_list_length"] == 1.0
    # round-robin: rank 1 of the newest trigger (2 -> 11) first as well
    rr = by_arm(evaluate_arms(index, history, test, RecommendConfig(k=1, merge="round-robin"), arms=("click",)))
    assert rr["click"]["hits"] == 2


def test_drop_bought_needs_a_purchase_in_the_history(example, tmp_path):
    index, history, test = example
    h = pl.read_parquet(history)
    h = pl.concat([h, _events([(1, 1, 11, "purchase")]).with_columns(
        pl.lit(T0 + timedelta(hours=1)).alias("timestamp"))])
    h.write_parquet(tmp_path / "h2.parquet")
    cfg = RecommendConfig(drop_bought=True)
    arms = by_arm(evaluate_arms(index, tmp_path / "h2.parquet", test, cfg, arms=("click",)))
    assert arms["click"]["hits"] == 2  # 11 was bought before, so it is no longer shown: one hit fewer


def test_users_are_required(example, tmp_path):
    index, history, test = example
    pl.read_parquet(test).drop("user_id").write_parquet(tmp_path / "nouser.parquet")
    with pytest.raises(InputError, match="has no 'user_id' column"):
        evaluate_arms(index, history, tmp_path / "nouser.parquet")
    t = pl.read_parquet(test)
    t.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(None).otherwise(pl.col("user_id")).alias("user_id")
                   ).write_parquet(tmp_path / "nulluser.parquet")
    with pytest.raises(InputError, match="'user_id' is empty \\(null\\) in row 3"):
        evaluate_arms(index, history, tmp_path / "nulluser.parquet")


def test_cli_eval_recommend_and_recommend(example, tmp_path):
    index, history, test = example
    res = run_cli(*["eval-recommend", "--index", str(index), "--history", str(history), "--sessions", str(test),
                   "--json", str(tmp_path / "ab.json"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "discovery hit rate" in res.output and "0.7500" in res.output
    # both, score merge: ties at 1.0 go to the most recent trigger (cart 10 -> 20, then click 2 -> 11, click 1 -> 10)
    res = run_cli(*["recommend", "--index", str(index), "--history", str(history), "--module", "both",
                   "--out", str(tmp_path / "recs.parquet"), "--quiet"])
    assert res.exit_code == 0, res.output
    out = pl.read_parquet(tmp_path / "recs.parquet")
    assert out.filter(pl.col("user_id") == 1)["candidate_item_id"].to_list() == [20, 11, 10, 21, 13, 12]
    assert out.columns == ["user_id", "rank", "candidate_item_id", "score", "trigger_item_id",
                           "trigger_interaction", "candidate_set"]


def test_blocks_of_any_size_write_the_same_lists_keyed_by_session_without_users(example, tmp_path):
    from recs.recommend.batch import recommend_file

    index, history, _ = example
    full = tmp_path / "full.parquet"
    recommend_file(index, history, full, RecommendConfig(module="both"))
    for block in (1, 2):
        out = tmp_path / f"b{block}.parquet"
        summary = recommend_file(index, history, out, RecommendConfig(module="both", block_users=block))
        assert pl.read_parquet(out).equals(pl.read_parquet(full))
        assert (summary["keys"], summary["keys_with_list"]) == (3, 2)  # user 3 only favorited: no trigger
    pl.read_parquet(history).drop("user_id").write_parquet(tmp_path / "nouser.parquet")
    summary = recommend_file(index, tmp_path / "nouser.parquet", tmp_path / "s.parquet", RecommendConfig())
    by_session = pl.read_parquet(tmp_path / "s.parquet")
    assert summary["key"] == "session_id" and by_session.columns[0] == "session_id"
    assert by_session.filter(pl.col("session_id") == 1)["candidate_item_id"].to_list() == [11, 10, 13, 12]


def test_cli_refuses_a_bad_module_set_and_output(example, tmp_path):
    index, history, _ = example
    res = run_cli(*["recommend", "--index", str(index), "--history", str(history), "--module", "cart-page",
                   "--out", str(tmp_path / "r.parquet")])
    assert res.exit_code == 2
    assert "cart_to_purchase" in one_line_error(res) and "--pairs cart:purchase" in one_line_error(res)
    assert not (tmp_path / "r.parquet").exists()
    res = run_cli(*["recommend", "--index", str(index), "--history", str(history), "--out", str(tmp_path / "r.csv")])
    assert res.exit_code == 2 and ".parquet" in one_line_error(res)
    res = run_cli(*["recommend", "--index", str(index), "--history", str(history), "--at", "yesterday",
                   "--out", str(tmp_path / "r.parquet")])
    assert res.exit_code == 2 and "--at" in one_line_error(res)
