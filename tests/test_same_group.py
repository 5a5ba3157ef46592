"""``--method same-shop`` / ``same-category`` (``recs.candidates.baselines.same_group``) on hand-built logs
whose lists are known, ``build-index`` with it, and the paper's cart-page experiment replayed by
``eval-recommend --arms cart-page@control,cart-page``.

The log of ``shop_log``, shop 100 (items 1-6), shop 200 (10, 11), shop 300 (20 alone):

==== ============================== ===================== =====================
item events                         carts + purchases     other  rank in shop 100
==== ============================== ===================== =====================
2    2 carts, 3 clicks              2                     3      1 (score 2.75)
1    1 cart, 1 purchase             2                     0      2 (2.0)
3    4 clicks                       0                     4      3 (0.8)
4    1 click, the latest event      0                     1      4 (0.5)
5    1 click at 00:30               0                     1      5 (0.5, id 5 < 6)
6    1 click at 00:30               0                     1      6 (0.5)
==== ============================== ===================== =====================
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import polars as pl
import pytest

from recs.candidates.baselines import SameGroupCandidates
from recs.candidates.build import build_method_index, load_candidates
from recs.candidates.registry import METHODS, build_method
from recs.config import IndexConfig
from recs.errors import ConfigError, InputError
from recs.eval.recommend_ab import evaluate_arms

from hand_index import hand_index
from helpers import one_line_error, run_cli

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
SHOP_A = [2, 1, 3, 4, 5, 6]  # shop 100 by the rule: carts + purchases, other events, recency, id


def _frame(rows: list[tuple]) -> pl.DataFrame:
    """(session, item, interaction, minute, shop[, category]) rows; user = session."""
    cols = ["session_id", "item_id", "interaction", "minute", "shop_id", "category"][: len(rows[0])]
    frame = pl.DataFrame(rows, schema=cols, orient="row")
    return frame.with_columns(
        (pl.lit(T0) + pl.duration(minutes=pl.col("minute"))).alias("timestamp"),
        pl.col("session_id").alias("user_id"),
    ).drop("minute")


def shop_log() -> pl.DataFrame:
    rows = [
        (1, 2, "click", 0, 100), (1, 2, "cart", 1, 100), (1, 2, "click", 2, 100), (1, 2, "cart", 3, 100),
        (1, 2, "click", 4, 100),
        (2, 1, "cart", 5, 100), (2, 1, "purchase", 6, 100),
        (3, 3, "click", 7, 100), (3, 3, "click", 8, 100), (3, 3, "click", 9, 100), (3, 3, "click", 10, 100),
        (4, 5, "click", 30, 100), (5, 6, "click", 30, 100),  # same time: the smaller id first
        (6, 4, "click", 40, 100),  # the latest event of the shop
        (7, 10, "click", 11, 200), (7, 11, "cart", 12, 200), (7, 11, "click", 13, 200),
        (8, 20, "click", 14, 300), (8, 20, "cart", 15, 300),
    ]
    return _frame(rows)


def lists(frame: pl.DataFrame) -> dict[int, list[int]]:
    """item -> its candidates in rank order."""
    out = frame.sort("item_id", "rank").group_by("item_id", maintain_order=True).agg("candidate_item_id")
    return dict(out.iter_rows())


def test_ranking_rule_ties_and_scores():
    gen = SameGroupCandidates().fit(shop_log())
    frame = gen.candidates("click", "cart", 10)
    got = lists(frame)
    for item in SHOP_A:  # every member: the shop's order without itself
        assert got[item] == [c for c in SHOP_A if c != item], item
    assert got[10] == [11] and got[11] == [10]  # 11's cart outranks 10's click, but each only has the other
    assert 20 not in got and 20 not in frame["candidate_item_id"].to_list()  # a shop of one item: no list
    scores = dict(frame.filter(pl.col("item_id") == 6).select("candidate_item_id", "score").iter_rows())
    assert scores == pytest.approx({2: 2.75, 1: 2.0, 3: 0.8, 4: 0.5, 5: 0.5})  # carts + other / (other + 1)
    assert frame.schema["rank"] == pl.Int32 and frame.schema["score"] == pl.Float32


def test_k_truncates_every_list():
    got = lists(SameGroupCandidates().fit(shop_log()).candidates("cart", "purchase", 2))
    assert got[1] == [2, 3] and got[2] == [1, 3] and got[3] == [2, 1] and got[10] == [11]


def test_an_item_that_moved_shop_is_filed_under_its_latest():
    log = pl.concat([shop_log(), _frame([(9, 3, "click", 50, 200)])])  # 3 is now in shop 200
    got = lists(SameGroupCandidates().fit(log).candidates("click", "cart", 10))
    assert got[3] == [11, 10] and 3 not in got[1] and got[10] == [11, 3]


def test_same_category_reads_the_category_column():
    log = shop_log().with_columns((pl.col("item_id") % 2).alias("category"))  # odd and even items
    gen = build_method("same-category")
    got = lists(gen.fit(log).candidates("click", "cart", 10))
    # odd: 1 (2.0), 11 (1.5), 3 (0.8), 5; even: 2, 20 (1.5), then 4, 6, 10 at 0.5 by their latest event
    assert gen.name == "same-category" and got[1] == [11, 3, 5] and got[2] == [20, 4, 6, 10]
    assert METHODS["same-category"].searches_vectors is False and not gen.interaction_aware


def test_catalogue_listings_get_their_shops_list_and_rank_last_in_it():
    # 7 is a new listing of shop 100 (no event in TRAIN); the catalogue moves 20 to shop 200 (it wins
    # over the sessions); the items it does not list keep the sessions' shop
    catalog = pl.DataFrame({"item_id": [7, 20, 8], "shop_id": [100, 200, 100]})
    gen = SameGroupCandidates(catalog=catalog).fit(shop_log())
    got = lists(gen.candidates("click", "cart", 10))
    assert got[7] == [*SHOP_A, 8]  # the shop's list, whole
    assert got[1] == [2, 3, 4, 5, 6, 7, 8]  # listings without events last, by id
    # shop 200: 20 and 11 both 1.5, 20's latest event (00:15) is the later one
    assert got[20] == [11, 10] and got[10] == [20, 11]
    assert lists(gen.candidates("click", "cart", 6))[1] == [2, 3, 4, 5, 6, 7]  # and the first cut by k
    # a catalogue alone serves a log without the column
    whole = pl.DataFrame({"item_id": [1, 2, 3, 7], "shop_id": ["a", "a", "a", "a"]})
    got = lists(SameGroupCandidates(catalog=whole).fit(shop_log().drop("shop_id")).candidates("click", "cart", 10))
    assert got == {1: [2, 3, 7], 2: [1, 3, 7], 3: [2, 1, 7], 7: [2, 1, 3]}


def test_text_shop_ids_in_the_catalogue_match_integer_ones_in_the_sessions():
    catalog = pl.DataFrame({"item_id": [7], "shop_id": ["200"]})
    got = lists(SameGroupCandidates(catalog=catalog).fit(shop_log()).candidates("click", "cart", 10))
    assert got[7] == [11, 10] and got[10] == [11, 7]


def test_missing_column_and_empty_catalogue_are_input_errors():
    with pytest.raises(InputError, match=r"same-shop: the training sessions have no 'shop_id' column"):
        SameGroupCandidates().fit(shop_log().drop("shop_id"))
    with pytest.raises(InputError, match=r"no 'category' column"):
        build_method("same-category").fit(shop_log())
    empty = pl.DataFrame({"item_id": [], "shop_id": []}, schema={"item_id": pl.Int64, "shop_id": pl.Int64})
    with pytest.raises(InputError, match="the catalogue has no rows"):
        SameGroupCandidates(catalog=empty).fit(shop_log())
    with pytest.raises(InputError, match="the catalogue has no 'shop_id' column"):
        SameGroupCandidates(catalog=pl.DataFrame({"item_id": [1], "category": [3]})).fit(shop_log())
    nulls = shop_log().with_columns(pl.lit(None, pl.Int64).alias("shop_id"))
    with pytest.raises(InputError, match="every value of 'shop_id' is empty"):
        SameGroupCandidates().fit(nulls)


# --- build-index ------------------------------------------------------------------------------------------------


@pytest.fixture
def train_file(tmp_path):
    path = tmp_path / "train.parquet"
    shop_log().write_parquet(path)
    return path


def test_cli_build_index_same_shop_writes_one_list_for_every_pair(train_file, tmp_path):
    out = tmp_path / "shop"
    r = run_cli("build-index", "--method", "same-shop", "--sessions", train_file, "--out", out,
                "--pairs", "cart:purchase,click:purchase", "--k", 3, "--quiet")
    assert r.exit_code == 0, r.output
    assert "same-shop" in r.output and "score:" not in r.output  # no vectors, no --score
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"]["name"] == "same-shop" and manifest["method"]["config"]["column"] == "shop_id"
    first = load_candidates(out, "cart_to_purchase")
    assert load_candidates(out, "click_to_purchase").equals(first)
    assert lists(first)[1] == [2, 3, 4] and lists(first)[11] == [10]
    # the Python side writes the same
    build_method_index("same-shop", train_file, tmp_path / "lib", IndexConfig(pairs=(("cart", "purchase"),), k=3))
    assert load_candidates(tmp_path / "lib", "cart_to_purchase").equals(first)


def test_cli_build_index_with_a_catalogue(train_file, tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("item_id,shop_id\n7,100\n20,200\n")
    out = tmp_path / "shop"
    r = run_cli("build-index", "--method", "same-shop", "--sessions", train_file, "--catalog", catalog, "--out", out,
                "--pairs", "click:cart", "--quiet")
    assert r.exit_code == 0, r.output
    assert "catalogue:" in r.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["catalog"]["items"] == 2 and manifest["catalog"]["path"] == str(catalog)
    got = lists(load_candidates(out, "click_to_cart"))
    assert got[7] == SHOP_A and got[20] == [11, 10]


@pytest.mark.parametrize(("change", "words"), [
    ("no-column", "same-shop: the training sessions have no 'shop_id' column"),
    ("empty-catalogue", "same-shop: the catalogue has no rows"),
    ("catalogue-for-covisit", "--catalog rolls up the vectors of a trained model"),
])
def test_cli_bad_input_is_one_error_line_and_writes_nothing(train_file, tmp_path, change, words):
    method, extra = "same-shop", []
    if change == "no-column":
        pl.read_parquet(train_file).drop("shop_id").write_parquet(train_file)
    else:
        catalog = tmp_path / "catalog.parquet"
        pl.DataFrame({"item_id": [], "shop_id": []}, schema={"item_id": pl.Int64, "shop_id": pl.Int64}
                     ).write_parquet(catalog)
        extra = ["--catalog", catalog]
        method = "co-visitation" if change == "catalogue-for-covisit" else method
    out = tmp_path / "shop"
    msg = one_line_error(run_cli("build-index", "--method", method, "--sessions", train_file, *extra, "--out", out,
                                 "--quiet"))
    assert words in msg
    assert not out.exists()


def test_build_method_index_refuses_a_catalogue_for_other_methods(train_file, tmp_path):
    with pytest.raises(ConfigError, match="--method co-visitation reads no catalogue"):
        build_method_index("co-visitation", train_file, tmp_path / "i", catalog=tmp_path / "c.csv")


# --- eval-recommend: the cart-page experiment ---------------------------------------------------------------------


@pytest.fixture
def cart_page(tmp_path):
    """History: user 1 carts 1, user 2 carts 10 (each their last cart), user 3 makes the shops' ranking;
    test window: user 1 buys 3, user 2 buys 11 and 10. Same-shop lists: 1 -> [3, 2], 10 -> [11]; ours
    (hand-made): 1 -> [50], 10 -> [11, 51]."""
    history = _frame([
        (1, 1, "click", 0, 100), (1, 1, "cart", 1, 100),
        (2, 10, "click", 2, 200), (2, 10, "cart", 3, 200),
        (3, 2, "click", 4, 100), (3, 3, "cart", 5, 100), (3, 3, "purchase", 6, 100), (3, 11, "click", 7, 200),
    ])
    test = _frame([(1, 3, "purchase", 600, 100), (2, 11, "purchase", 601, 200), (2, 10, "purchase", 602, 200)])
    history.write_parquet(tmp_path / "history.parquet")
    test.write_parquet(tmp_path / "test.parquet")
    shop = tmp_path / "shop"
    build_method_index("same-shop", tmp_path / "history.parquet", shop,
                       IndexConfig(pairs=(("cart", "purchase"), ("click", "purchase"))))
    ours = hand_index(tmp_path / "ours", {"cart_to_purchase": {1: [50], 10: [11, 51]}})
    return ours, shop, tmp_path / "history.parquet", tmp_path / "test.parquet"


def test_cart_page_on_the_control_index_is_the_reference(cart_page):
    ours, shop, history, test = cart_page
    assert lists(load_candidates(shop, "cart_to_purchase")) == {1: [3, 2], 2: [3, 1], 3: [1, 2], 10: [11], 11: [10]}
    report = evaluate_arms(ours, history, test, arms=("cart-page@control", "cart-page"), control_index=shop)
    arms = {row["arm"]: row for row in report["arms"]}
    control, treatment = arms["cart-page@control"], arms["cart-page"]
    assert control["index"] == str(shop) and treatment["index"] == str(ours)
    assert (control["hits"], control["targets"]) == (2, 3)  # 3 for user 1, 11 for user 2; 10 is the trigger
    assert (treatment["hits"], treatment["targets"]) == (1, 3)  # 11 only
    # 10 was carted in the history: re-finding, missed by both; the other two are discovery
    assert (control["refinding_targets"], control["refinding_hits"]) == (1, 0)
    assert (control["discovery_hits"], treatment["discovery_hits"]) == (2, 1)
    (diff,) = report["differences"]
    assert diff["arm"] == "cart-page" and diff["reference"] == "cart-page@control"
    assert diff["diff"] == pytest.approx(1 / 3 - 2 / 3)


def test_cli_replays_the_cart_page_experiment_in_one_command(cart_page, tmp_path):
    ours, shop, history, test = cart_page
    common = ["--index", ours, "--history", history, "--sessions", test, "--quiet"]
    r = run_cli("eval-recommend", *common, "--control-index", shop, "--arms", "cart-page@control,cart-page",
                "--json", tmp_path / "ab.json")
    assert r.exit_code == 0, r.output
    assert "cart-page@control" in r.output and "0.6667" in r.output and "0.3333" in r.output
    assert json.loads((tmp_path / "ab.json").read_text())["differences"][0]["reference"] == "cart-page@control"
    msg = one_line_error(run_cli("eval-recommend", *common, "--arms", "cart-page@control,cart-page"))
    assert "cart-page@control runs cart-page on the control index: give --control-index" in msg
    msg = one_line_error(run_cli("eval-recommend", *common, "--control-index", shop, "--arms", "nope@control"))
    assert "--arms" in msg and "nope" in msg
    assert "MODULE@control" in msg
    with pytest.raises(ConfigError, match="cart-page given more than once"):
        evaluate_arms(ours, history, test, arms=("cart-page", "cart-page"))


# --- a source of the blend ----------------------------------------------------------------------------------------


def test_same_shop_is_a_source_of_the_blend():
    pytest.importorskip("lightgbm", reason="lightgbm is not installed (the learned blend): pip install -e '.[blend]'")
    from recs.config import BlendConfig, IndexConfig, MethodConfig
    from recs.sessions.split import split_sessions
    from recs.sessions.synth import SynthConfig, generate

    split = split_sessions(generate(SynthConfig(events=20_000, seed=3))[0])
    methods = MethodConfig(index=IndexConfig(k=20, threads=1),
                           blend=BlendConfig(sources=("co-visitation", "same-shop"), rounds=10, workers=1,
                                             min_data_in_leaf=5))
    blend = build_method("blend", methods).fit(split.train)
    frame = blend.candidates("click", "cart", 20)
    shop = dict(split.train.select("item_id", "shop_id").unique("item_id").iter_rows())
    # the union holds same-shop candidates: about half of the rows share the trigger's shop (co-visitation alone 0.19)
    same = frame.with_columns(pl.col("item_id").replace_strict(shop).alias("a"),
                              pl.col("candidate_item_id").replace_strict(shop).alias("b"))
    assert frame.height > 0 and (same["a"] == same["b"]).mean() > 0.3
