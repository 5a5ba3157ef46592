"""The learned second stage (``--method blend``): carve, labels, leakage, order, determinism, bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from recs.candidates import registry
from recs.candidates.blend import BlendCandidates
from recs.candidates.blend_features import ItemStats
from recs.candidates.blend_labels import GROUP, LABEL, group_labels, trigger_groups
from recs.candidates.registry import METHODS, MethodSpec, build_method
from recs.cli.main import cli
from recs.columns import Col
from recs.config import BlendConfig, IndexConfig, MethodConfig, SynthConfig, TrainConfig
from recs.errors import ConfigError, InputError
from recs.sessions.split import carve_validation, split_sessions
from recs.sessions.synth import generate

from contract import GeneratorContract
from helpers import T0, one_line_error, sessions_frame

pytest.importorskip("lightgbm", reason="lightgbm is not installed (the learned blend): pip install -e '.[blend]'")


@pytest.fixture(scope="module")
def small_split():
    frame, _ = generate(SynthConfig(events=30_000, seed=3))
    return split_sessions(frame)


def _methods(sources: tuple[str, ...], **blend) -> MethodConfig:
    return MethodConfig(
        train=TrainConfig(dim=16, epochs=3, workers=1, seed=1),
        index=IndexConfig(k=50, threads=1),
        blend=BlendConfig(sources=sources, workers=1, min_data_in_leaf=5, **{"rounds": 30, **blend}),
    )


# -- labels, by hand ------------------------------------------------------------------------------------

def test_labels_grade_what_the_session_did_after_the_trigger():
    valid = sessions_frame({
        1: [("A", "click"), ("B", "click"), ("B", "cart"), ("C", "purchase"), ("A", "cart"), ("D", "click")],
        2: [("E", "cart"), ("A", "click"), ("F", "favorite")],
    })
    groups = trigger_groups(valid, "click")
    # first click of each item per session, in session then time order; E's cart is no click trigger
    assert groups.select(Col.SESSION, Col.ITEM, Col.POS).rows() == [(1, "A", 0), (1, "B", 1), (1, "D", 5),
                                                                     (2, "A", 1)]
    labels = group_labels(valid, groups, "cart")
    got = {(g, c): lab for g, c, lab in labels.select(GROUP, Col.CANDIDATE, LABEL).rows()}
    # group 0 = (1, A): B clicked then carted -> 4 (the target interaction), C purchased -> 3, D clicked -> 1;
    # A itself (carted later) is never its own label
    assert got[(0, "B")] == 4 and got[(0, "C")] == 3 and got[(0, "D")] == 1 and (0, "A") not in got
    # group 1 = (1, B): only what came after B's first click; A carted -> 4
    assert got[(1, "C")] == 3 and got[(1, "A")] == 4 and (1, "B") not in got
    assert not any(g == 2 for g, _ in got)  # D is the session's last event: nothing after it
    # group 3 = (2, A): E was carted *before* the trigger -> no label; F favorited after -> 1
    assert got[(3, "F")] == 1 and (3, "E") not in got
    # for a purchase-target pair the purchase is on top and the cart is a cart (2)
    by_purchase = {(g, c): lab for g, c, lab in group_labels(valid, groups, "purchase").rows()}
    assert by_purchase[(0, "C")] == 4 and by_purchase[(0, "B")] == 2


# -- the carve and leakage ------------------------------------------------------------------------------

def test_carve_keeps_whole_sessions_on_the_side_of_their_start():
    rows = []
    for s in range(10):  # session s starts at hour s and runs 3 hours, so sessions straddle any cut
        for j in range(4):
            rows.append({"session_id": s, "item_id": s * 10 + j, "interaction": "click",
                         "timestamp": T0 + timedelta(hours=s, minutes=60 * j)})
    frame = pl.DataFrame(rows)
    carve = carve_validation(frame, share=0.2)
    assert sorted(carve.test[Col.SESSION].unique().to_list()) == [8, 9]
    assert sorted(carve.train[Col.SESSION].unique().to_list()) == list(range(8))
    assert carve.train.height + carve.test.height == frame.height
    # the fit part's late events (session 7 runs past session 8's start) stay with their session
    assert carve.train[Col.TIMESTAMP].max() > carve.cutoff
    with pytest.raises(ConfigError, match="valid_share"):
        carve_validation(frame, share=1.0)


def test_validation_sessions_never_reach_the_first_stage(small_split, monkeypatch):
    """A spy source records every frame it is fitted on: the first stage sees none of the validation
    window's sessions (a planted leak would show up as a validation session id in the first fit)."""
    seen: list[pl.DataFrame] = []
    covisit = METHODS["co-visitation"]

    def spy(cfg, progress):
        gen = covisit.build(cfg, progress)
        fit = gen.fit

        def recording_fit(frame):
            seen.append(frame)
            return fit(frame)

        gen.fit = recording_fit
        return gen

    monkeypatch.setitem(registry.METHODS, "co-visitation", MethodSpec("co-visitation", "spy", "peer", spy,
                                                                      searches_vectors=False))
    train = small_split.train
    gen = build_method("blend", _methods(("co-visitation",)))
    gen.fit(train)
    carve = carve_validation(train, 0.1)
    valid_sessions = set(carve.test[Col.SESSION].unique().to_list())
    first, final = seen
    assert valid_sessions and not set(first[Col.SESSION].unique().to_list()) & valid_sessions
    assert first[Col.TIMESTAMP].min() >= train[Col.TIMESTAMP].min()
    assert final.height == train.height  # the final stage refits on the whole of TRAIN
    details = gen.set_details("click", "cart")["blend"]
    assert details["groups"] > 0 and 0 < details["union_recall"] <= 1


# -- order and determinism ------------------------------------------------------------------------------

def test_blend_of_one_source_keeps_its_order(small_split):
    """With only the source's own score and rank to read, the ranker is monotone in them (constraints),
    and ties fall back to the source's rank: every list is the source's list, in its order."""
    train = small_split.train
    methods = _methods(("co-visitation",))
    gen = BlendCandidates(methods=methods, features=("sources",)).fit(train)
    blended = gen.candidates("click", "cart", 50)
    source = build_method("co-visitation", methods).fit(train).candidates("click", "cart", 50)
    key = [Col.ITEM, Col.RANK]
    assert blended.sort(key).select(Col.ITEM, Col.CANDIDATE, Col.RANK).equals(
        source.sort(key).select(Col.ITEM, Col.CANDIDATE, Col.RANK))


def test_same_seed_same_lists_and_k_is_respected(small_split):
    train = small_split.train
    a = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"))).fit(train)
    b = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"))).fit(train)
    ta, tb = a.candidates("cart", "cart", 20), b.candidates("cart", "cart", 20)
    assert ta.equals(tb)
    per_item = ta.group_by(Col.ITEM).agg(pl.len(), pl.col(Col.RANK).max().alias("r"), pl.col(Col.CANDIDATE).n_unique())
    assert per_item["len"].max() <= 20 and (per_item["len"] == per_item["r"]).all()
    assert (per_item["len"] == per_item[Col.CANDIDATE]).all()  # no candidate twice in a list
    assert ta.filter(pl.col(Col.ITEM) == pl.col(Col.CANDIDATE)).height == 0


def _stage(train, gen):
    carve = carve_validation(train, gen.methods.blend.valid_share)
    gen._valid = {"cutoff": carve.cutoff.isoformat(), "valid_sessions": 0}
    gen._used, _ = gen._usable_sources(train)
    stage = gen._fit_sources(carve.train, "validation stage", reuse=False)
    return carve, stage, ItemStats.of(carve.train)


def test_training_rows_are_the_same_on_every_call_when_negatives_are_sampled(small_split):
    gen = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), negatives=2))
    carve, stage, stats = _stage(small_split.train, gen)
    runs = [gen._training_rows(stage, stats, carve.test, "click", "cart")[0] for _ in range(4)]
    assert all(r.equals(runs[0]) for r in runs[1:])
    full = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), negatives=10_000), _used=gen._used)
    everything = full._training_rows(stage, stats, carve.test, "click", "cart")[0]
    assert runs[0].height < everything.height  # the sample did drop rows, so the test above tested it
    # per trigger: every positive and hard negative is kept, and at most 2 others
    other = runs[0].filter((pl.col(LABEL) == 0) & (pl.col("_best_rank") > 20)).group_by(GROUP).len()
    assert other["len"].max() <= 2


def test_validation_items_have_no_counts_in_the_training_rows(small_split):
    """Counts are features; the first stage's come from the part before the cut only. An item first seen in
    the validation window has no counts there (a leak would give it the window's own counts)."""
    gen = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence")))
    carve, stage, stats = _stage(small_split.train, gen)
    rows = gen._training_rows(stage, stats, carve.test, "click", "cart")[0]
    fresh = carve.test.join(carve.train.select(Col.ITEM).unique(), on=Col.ITEM, how="anti")[Col.ITEM].unique()
    assert fresh.len() > 0
    assert stats.table.filter(pl.col(Col.ITEM).is_in(fresh.implode())).height == 0
    as_trigger = rows.filter(pl.col(Col.ITEM).is_in(fresh.implode()))
    assert as_trigger["trig_n_all"].null_count() == as_trigger.height


def test_blocks_and_free_text_interactions(small_split):
    """Scoring in many small blocks gives the lists of one block; string ids and interaction names with
    spaces (LightGBM rewrites such feature names) work."""
    train = small_split.train.with_columns(
        pl.col(Col.ITEM).cast(pl.String), pl.col(Col.INTERACTION).replace({"cart": "add to cart"}))
    methods = replace(_methods(("co-visitation", "co-occurrence")),
                      index=IndexConfig(k=20, threads=1, pairs=(("click", "add to cart"),)))
    one = BlendCandidates(methods=methods).fit(train).candidates("click", "add to cart", 20)
    small = replace(methods, blend=replace(methods.blend, block_items=7))
    many = BlendCandidates(methods=small).fit(train).candidates("click", "add to cart", 20)
    assert one[Col.ITEM].dtype == pl.String and one.height > 0
    assert one.sort(Col.ITEM, Col.RANK).equals(many.sort(Col.ITEM, Col.RANK))
    assert many.select(Col.ITEM, Col.CANDIDATE).is_duplicated().sum() == 0


# -- bad input ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sources, message", [
    ((), "names no method"), (("nope",), "unknown nope"), (("blend",), "unknown blend"),
    (("mf", "mf"), "more than once"),
])
def test_bad_sources_are_refused_before_any_fit(sources, message):
    with pytest.raises(ConfigError, match=message):
        replace(BlendConfig(), sources=sources).validate()


def test_a_validation_window_without_targets_is_one_clear_error():
    # every validation session is a single click: no trigger is ever followed by anything
    early = {s: [(s, "click"), (s + 1, "click"), (s + 1, "cart")] for s in range(20)}
    late = {100 + s: [(s, "click")] for s in range(5)}
    frame = pl.concat([sessions_frame(early, day=0), sessions_frame(late, day=3)])
    gen = BlendCandidates(methods=_methods(("co-visitation",), valid_days=1))
    with pytest.raises(InputError, match="validation window"):
        gen.fit(frame)


def test_a_pair_not_fitted_is_refused(small_split):
    gen = BlendCandidates(methods=replace(_methods(("co-visitation",)), index=IndexConfig(k=10, pairs=(
        ("click", "cart"),)))).fit(small_split.train)
    with pytest.raises(ConfigError, match="no ranker for cart:cart"):
        gen.candidates("cart", "cart", 10)


class TestBlendContract(GeneratorContract):
    """The blend passes the contract every generator passes (two fast sources keep it cheap)."""

    @classmethod
    def make_generator(cls):
        return BlendCandidates(methods=_methods(("co-visitation", "co-occurrence")))


@pytest.mark.parametrize("args, message", [
    (["--sources", "nope"], "sources: unknown nope"),
    (["--sources", ""], "sources: names no method"),
    (["--valid-share", "1.5"], "valid_share must be in (0, 1)"),
])
def test_build_index_blend_bad_options_are_one_line_and_write_nothing(tmp_path, args, message):
    train = sessions_frame({s: [(s % 5, "click"), (s % 5 + 1, "cart")] for s in range(10)})
    train.write_parquet(tmp_path / "train.parquet")
    r = CliRunner().invoke(cli, ["build-index", "--method", "blend", "--sessions", str(tmp_path / "train.parquet"),
                                 "--out", str(tmp_path / "index"), *args])
    assert message in one_line_error(r)
    assert not (tmp_path / "index").exists()


# -- the union cut and the [blend] section of --config ---------------------------------------------------

def test_union_is_cut_to_its_best_rows_by_reciprocal_rank_fusion():
    from recs.candidates.blend_features import BEST_RANK, RRF, RRF_K, union_rows

    def listing(pairs):
        return pl.DataFrame({Col.ITEM: [1] * len(pairs), Col.CANDIDATE: [c for c, _ in pairs],
                             Col.RANK: [r for _, r in pairs], Col.SCORE: [1.0 / r for _, r in pairs]})

    lists = {"a": listing([(10, 1), (11, 2), (12, 3), (13, 4)]), "b": listing([(13, 1), (14, 2), (12, 3)])}
    full = union_rows(lists, ["a", "b"])
    assert full.height == 5
    rrf = dict(zip(full[Col.CANDIDATE], full[RRF], strict=True))
    assert rrf[12] == pytest.approx(2 / (RRF_K + 3)) and rrf[10] == pytest.approx(1 / (RRF_K + 1))
    # 13 (ranks 4 and 1) and 12 (3 and 3) are listed twice and lead; then 10 (rank 1) before 14 (rank 2)
    cut = union_rows(lists, ["a", "b"], keep=3)
    assert cut[Col.CANDIDATE].to_list() == [13, 12, 10] and cut[BEST_RANK].to_list() == [1, 3, 1]
    assert union_rows(lists, ["a", "b"], keep=0).height == 5


def test_blend_keeps_k_rows_however_small_the_union_cut(small_split):
    gen = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), union_max=5)).fit(small_split.train)
    assert gen._keep(50) == 50 and gen._keep(3) == 5
    lists = gen.candidates("click", "cart", 20)
    assert lists.group_by(Col.ITEM).len()["len"].max() == 20


def test_config_file_blend_section_round_trip_and_options_win(tmp_path):
    from recs.config_file import config_sections, parse_config, to_toml

    cfg = BlendConfig(sources=("ours", "co-visitation"), union_max=0, rounds=40, valid_days=2)
    assert parse_config(to_toml(config_sections(blend=cfg))).blend() == cfg
    with pytest.raises(ConfigError, match=r"\[blend\] sources: unknown nope"):
        parse_config("[blend]\nsources = ['ours', 'nope']\n", "b.toml")
    train = sessions_frame({s: [(s % 5, "click"), (s % 5 + 1, "cart")] for s in range(10)})
    train.write_parquet(tmp_path / "train.parquet")
    (tmp_path / "bad.toml").write_text("[blend]\nunion_max = -1\n")
    r = CliRunner().invoke(cli, ["build-index", "--method", "blend", "--sessions", str(tmp_path / "train.parquet"),
                                 "--out", str(tmp_path / "index"), "--config", str(tmp_path / "bad.toml")])
    assert "[blend] union_max must be in 0..100,000" in one_line_error(r)
    assert not (tmp_path / "index").exists()


def test_build_index_reads_the_blend_section(small_split, tmp_path):
    small_split.train.write_parquet(tmp_path / "train.parquet")
    (tmp_path / "b.toml").write_text("[blend]\nsources = ['co-visitation', 'co-occurrence']\nunion_max = 60\n"
                                     "rounds = 20\nmin_data_in_leaf = 5\n")
    args = ["build-index", "--method", "blend", "--sessions", str(tmp_path / "train.parquet"), "--k", "30",
            "--threads", "1", "--quiet", "--config", str(tmp_path / "b.toml")]
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "i")])
    assert r.exit_code == 0, r.output
    import json

    blend = json.loads((tmp_path / "i" / "manifest.json").read_text())["method"]["config"]["blend"]
    assert (blend["sources"], blend["union_max"], blend["rounds"]) == (["co-visitation", "co-occurrence"], 60, 20)
    r = CliRunner().invoke(cli, [*args, "--sources", "co-visitation", "--out", str(tmp_path / "i2")])
    assert r.exit_code == 0, r.output
    blend = json.loads((tmp_path / "i2" / "manifest.json").read_text())["method"]["config"]["blend"]
    assert (blend["sources"], blend["union_max"]) == (["co-visitation"], 60)  # the typed option wins


def test_rounds_are_chosen_on_held_out_triggers(small_split):
    """Early stopping on a fifth of the validation triggers picks at most ``rounds``; off, ``rounds`` exactly;
    the ranker kept has the rounds chosen (retrained on every trigger), and it is recorded per set."""
    train = small_split.train
    stopped = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), rounds=200, min_grade=1,
                                               max_groups=10_000)).fit(train)
    held = stopped._held_out(np.ones(500, dtype=np.int64))
    assert held is not None and held.sum() == 100
    rounds = []
    for pair in [("click", "cart"), ("cart", "cart")]:
        details = stopped.set_details(*pair)["blend"]
        assert 1 <= details["rounds"] <= 200 and stopped._rankers[pair].num_trees() == details["rounds"]
        rounds.append(details["rounds"])
    assert min(rounds) < 200  # Click-to-Cart has hundreds of triggers here: its held-out fifth stops it early
    fixed = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), rounds=7, early_stop=0)).fit(train)
    assert fixed.set_details("click", "cart")["blend"]["rounds"] == 7
    assert fixed._rankers[("click", "cart")].num_trees() == 7
    assert fixed._held_out(np.ones(500, dtype=np.int64)) is None


def test_a_source_that_needs_a_missing_column_is_left_out_and_named(small_split):
    train = small_split.train.drop(Col.CATEGORY)
    gen = BlendCandidates(methods=_methods(("co-visitation", "same-category"))).fit(train)
    assert gen._used == ("co-visitation",)
    assert gen.settings()["validation"]["left_out"] == {"same-category": "the sessions have no 'category' values"}
    assert gen.candidates("click", "cart", 10).height > 0
    with_column = BlendCandidates(methods=_methods(("co-visitation", "same-category"))).fit(small_split.train)
    assert with_column._used == ("co-visitation", "same-category")
    assert "left_out" not in with_column.settings()["validation"]
    with pytest.raises(InputError, match=r"same-category \(the sessions have no 'category' values\)"):
        BlendCandidates(methods=_methods(("same-category",))).fit(train)


def test_cascade_scores_are_the_full_models_and_a_wide_cascade_changes_nothing(small_split, monkeypatch):
    """Scoring as a cascade (the first trees on every union row, the rest on each item's best rows) gives a
    kept row the full model's score, since trees add up; keeping every row gives the very lists of plain
    scoring; keeping k rows loses only candidates the first trees already placed below k."""
    from recs.candidates import blend as blend_module

    gen = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), rounds=30, early_stop=0,
                                           cascade_trees=5, cascade_keep=10_000, order="model")).fit(small_split.train)
    assert gen._rankers[("click", "cart")].num_trees() == 30
    scored: list[pl.DataFrame] = []  # every row the model scored, before the top k is taken
    top_k = blend_module._top_k
    monkeypatch.setattr(blend_module, "_top_k",
                        lambda frame, k, first=None: scored.append(frame) or top_k(frame, k, first))

    def lists(trees: int, keep: int) -> tuple[pl.DataFrame, pl.DataFrame]:
        gen.methods = replace(gen.methods, blend=replace(gen.methods.blend, cascade_trees=trees, cascade_keep=keep))
        scored.clear()
        out = gen.candidates("click", "cart", 20).sort(Col.ITEM, Col.RANK)
        return out, pl.concat(scored).select(Col.ITEM, Col.CANDIDATE, blend_module._PRED)

    (plain, every_row), (wide, _), (narrow, kept_rows) = lists(0, 10_000), lists(5, 10_000), lists(5, 20)
    key = [Col.ITEM, Col.CANDIDATE, Col.RANK]
    assert wide.select(key).equals(plain.select(key))
    np.testing.assert_allclose(wide[Col.SCORE].to_numpy(), plain[Col.SCORE].to_numpy(), rtol=1e-6, atol=1e-6)
    # the narrow cascade finished 20 rows per item (fewer where the union is smaller), each with the plain score
    assert kept_rows.height < every_row.height
    assert kept_rows.group_by(Col.ITEM).len()["len"].max() == 20
    both = kept_rows.join(every_row, on=[Col.ITEM, Col.CANDIDATE], suffix="_plain")
    assert both.height == kept_rows.height
    np.testing.assert_allclose(both[blend_module._PRED].to_numpy(), both[f"{blend_module._PRED}_plain"].to_numpy(),
                               rtol=1e-6, atol=1e-6)
    pair = [Col.ITEM, Col.CANDIDATE]
    same = narrow.select(pair).join(plain.select(pair), on=pair).height / plain.height
    assert 0.8 < same < 1, same  # the first 5 of 30 trees already find most of the top 20, not all


def test_found_counts_labelled_rows_in_each_triggers_top_k_by_hand():
    from recs.candidates import blend as b

    scored = pl.DataFrame({
        GROUP: [1, 1, 1, 2, 2, 2],
        Col.CANDIDATE: [10, 11, 12, 10, 11, 12],
        b._PRED: [0.9, 0.5, 0.1, 0.2, 0.2, 0.8],
        b.BEST_RANK: [3.0, 1.0, 2.0, 1.0, 2.0, 3.0],
        "s_rank": [None, 2.0, 1.0, 1.0, None, 2.0],
        LABEL: [2, 0, 3, 0, 2, 0],
    })
    # by score: group 1 keeps 10, 11 (one target: 10); group 2 keeps 12, then 10 before 11 (best rank 1 < 2): none
    assert b._found(scored, 2, 2).tolist() == [1, 0]
    # by s's rank first (unlisted last): group 1 keeps 12, 11 (one: 12); group 2 keeps 10, 12 (none)
    assert b._found(scored, 2, 2, first="s_rank").tolist() == [1, 0]
    assert b._found(scored, 3, 2).tolist() == [2, 1] and b._found(scored, 1, 2, first="s_rank").tolist() == [1, 0]


def test_paired_z_by_hand():
    from recs.candidates import blend as b

    base = np.array([1, 0, 1, 0])
    assert b._paired_z(base, base) == 0.0
    assert b._paired_z(base + 1, base) == np.inf  # a gain on every trigger alike
    # gains 1, 0, 1, 0: mean 0.5, sd 0.577, se 0.289: z = 1.73, not beyond 1.96
    assert b._paired_z(np.array([2, 0, 2, 0]), base) == pytest.approx(0.5 / (np.std([1, 0, 1, 0], ddof=1) / 2))
    assert b._paired_z(np.array([2, 0, 2, 0]), base) < b.ORDER_Z


def test_an_order_that_learns_nothing_is_kept_where_it_beats_the_ranker(small_split):
    """A ranker that sees only popularity orders Click-to-Cart worse, on triggers it did not learn from, than
    co-visitation's own order: the blend keeps co-visitation's order (each of its lists is co-visitation's
    list), says so in the manifest with every order's share of targets kept; with the sources' scores and
    ranks to read, the ranker wins and is kept."""
    train = small_split.train
    m = _methods(("co-visitation", "co-occurrence"), min_grade=1)
    m = replace(m, index=replace(m.index, k=3))
    blind = BlendCandidates(methods=m, features=("counts",)).fit(train)
    details = blind.set_details("click", "cart")["blend"]
    assert details["order"] == "co-visitation" and details["order_chosen_by"].startswith("5-fold")
    recall = details["order_recall"]
    assert recall["co-visitation"] == max(recall.values()) > recall["model"]
    assert details["order_gain_z"]["co-visitation"] > 1.96
    source = build_method("co-visitation", m).fit(train).candidates("click", "cart", 3)
    blended = blind.candidates("click", "cart", 3)
    key = [Col.ITEM, Col.CANDIDATE, Col.RANK]
    assert source.select(key).join(blended.select(key), on=key, how="anti").height == 0
    seeing = BlendCandidates(methods=m).fit(train).set_details("click", "cart")["blend"]
    assert seeing["order"] == "model" and seeing["order_recall"]["model"] == max(seeing["order_recall"].values())
    fixed = BlendCandidates(methods=replace(m, blend=replace(m.blend, order="model")), features=("counts",)).fit(train)
    assert fixed.set_details("click", "cart")["blend"]["order"] == "model"


def test_targets_no_source_lists_fall_back_to_fusion_not_an_error():
    """The validation window has carts after its triggers, but of items no source lists for them (new items):
    no ranker can be learnt, and the blend orders by reciprocal rank fusion of the sources, saying so."""
    early = {s: [(s, "click"), (s + 1, "click"), (s + 1, "cart")] for s in range(20)}
    late = {100 + s: [(500 + s, "click"), (600 + s, "cart")] for s in range(5)}
    frame = pl.concat([sessions_frame(early, day=0), sessions_frame(late, day=3)])
    gen = BlendCandidates(methods=_methods(("co-visitation", "co-occurrence"), valid_days=1)).fit(frame)
    for pair in gen.pairs:
        details = gen.set_details(*pair)["blend"]
        assert details["order"] == "rrf" and details["order_chosen_by"].startswith("no labelled trigger")
    lists = gen.candidates("click", "cart", 5)
    assert lists.filter(pl.col(Col.ITEM) == 500)[Col.CANDIDATE].to_list() == [600]  # learnt from the window
    assert lists.filter(pl.col(Col.ITEM) == 3)[Col.CANDIDATE].item(0) == 4


@pytest.mark.parametrize("refit", ["vectors-kept", "all", "auto"])
def test_the_final_stage_refits_the_count_sources_and_keeps_the_vector_ones(small_split, monkeypatch, refit):
    """``refit = "vectors-kept"`` (the default): skip-gram is trained once, on the part before the cut, and the
    count-based sources are fitted again on the whole of TRAIN; ``"all"`` fits both twice. Spies record each fit."""
    fits: dict[str, list[int]] = {"ours": [], "co-visitation": []}

    def spying(name):
        spec = METHODS[name]

        def build(cfg, progress):
            gen = spec.build(cfg, progress)
            fit = gen.fit

            def recording_fit(frame):
                fits[name].append(frame.height)
                return fit(frame)

            gen.fit = recording_fit
            return gen

        return replace(spec, build=build)

    for name in fits:
        monkeypatch.setitem(registry.METHODS, name, spying(name))
    train = small_split.train
    gen = build_method("blend", _methods(("ours", "co-visitation"), refit=refit)).fit(train)
    before_cut = carve_validation(train, 0.1).train.height
    assert fits["co-visitation"] == [before_cut, train.height]
    assert fits["ours"] == ([before_cut] if refit == "vectors-kept" else [before_cut, train.height])
    validation = gen.settings()["validation"]
    assert validation.get("kept_from_validation_stage") == (["ours"] if refit == "vectors-kept" else None)
    assert validation["refit"] == ("all" if refit == "auto" else refit)  # "auto": a log this small refits all
    # the lists are written either way, from the sources each setting leaves
    assert gen.candidates("click", "cart", 50).height > 0
    with pytest.raises(ConfigError, match="refit must be one of"):
        BlendConfig(refit="some").validate()
