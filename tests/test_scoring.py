"""Scores and backoff on a hand-built model, so every expected number is computed here by hand.

Items 1..4. Tokens: 1:click (10 events), 2:click (5), 2:cart (1), 3:cart (4), 4:click (8). So item 1
and item 4 were never carted, item 3 never clicked, item 2 both. The log has 23 click and 5 cart
events: a stand-in click row is moved by log(5 / 23).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.scoring import query_side, target_side
from recs.config import IndexConfig
from recs.embeddings.model import EmbeddingModel

TOKENS = [(1, "click", 10), (2, "click", 5), (2, "cart", 1), (3, "cart", 4), (4, "click", 8)]
A = 0.75


@pytest.fixture(scope="module")
def model() -> EmbeddingModel:
    rng = np.random.default_rng(3)
    vocab = pl.DataFrame(
        {
            "token_id": pl.Series(range(len(TOKENS)), dtype=pl.Int32),
            "token": [f"{i}:{t}" for i, t, _ in TOKENS],
            "item_id": [i for i, _, _ in TOKENS],
            "interaction": [t for _, t, _ in TOKENS],
            "count": [n for _, _, n in TOKENS],
        }
    )
    vin = rng.normal(size=(len(TOKENS), 4)).astype(np.float32)
    vout = rng.normal(size=(len(TOKENS), 4)).astype(np.float32)
    return EmbeddingModel(vocab, vin, vout, {"config": {"ns_exponent": A}})


def tok(item: int, interaction: str) -> int:
    return next(j for j, (i, t, _) in enumerate(TOKENS) if (i, t) == (item, interaction))


def lists(model: EmbeddingModel, cfg: IndexConfig, source: str, target: str) -> dict[int, list[tuple[int, float]]]:
    frame = EmbeddingCandidates(index_config=cfg, model=model).candidates(source, target, 10)
    out: dict[int, list[tuple[int, float]]] = {}
    for item, cand, score in frame.sort("item_id", "rank").select("item_id", "candidate_item_id", "score").iter_rows():
        out.setdefault(item, []).append((cand, score))
    return out


def test_prob_without_backoff_is_u_dot_v_plus_log_count(model):
    cfg = IndexConfig(threads=1, backoff=False)
    got = lists(model, cfg, "click", "cart")
    assert set(got) == {1, 2, 4}  # every clicked item asks; only carted items answer
    for item in (1, 4):
        u = model.vectors_in[tok(item, "click")]
        want = {q: float(u @ model.vectors_out[tok(q, "cart")]) + A * math.log(n) for q, n in ((2, 1), (3, 4))}
        assert [c for c, _ in got[item]] == sorted(want, key=want.get, reverse=True)
        for cand, score in got[item]:
            assert score == pytest.approx(want[cand], abs=1e-4)
    # no backoff: item 1 was never carted, so it has no cart -> cart list
    assert set(lists(model, cfg, "cart", "cart")) == {2, 3}


def test_backoff_targets_stand_in_below_real_carts_and_shrink(model):
    cfg = IndexConfig(threads=1)  # prob, backoff, shrink 1
    side = target_side(model, "cart", cfg)
    rows = dict(zip(side.items.to_list(), side.vectors, strict=True))
    assert set(rows) == {1, 2, 3, 4} and side.backoff == 2
    click_row = {i: np.r_[model.vectors_out[tok(i, "click")], A * math.log(n) + math.log(5 / 23)]
                 for i, n in ((1, 10), (2, 5), (4, 8))}
    cart_row = {i: np.r_[model.vectors_out[tok(i, "cart")], A * math.log(n)] for i, n in ((2, 1), (3, 4))}
    np.testing.assert_allclose(rows[1], click_row[1], atol=1e-5)  # never carted: stand-in only
    np.testing.assert_allclose(rows[4], click_row[4], atol=1e-5)
    np.testing.assert_allclose(rows[3], cart_row[3], atol=1e-5)  # never clicked: its own row
    np.testing.assert_allclose(rows[2], 0.5 * cart_row[2] + 0.5 * click_row[2], atol=1e-5)  # w = 1/(1+1)
    unshrunk = dict(zip(*(lambda s: (s.items.to_list(), s.vectors))(target_side(model, "cart",
                                                                               IndexConfig(threads=1, shrink=0))),
                        strict=True))
    np.testing.assert_allclose(unshrunk[2], cart_row[2], atol=1e-5)


def test_backoff_queries_use_the_stand_in_input_vector(model):
    cfg = IndexConfig(threads=1)
    side = query_side(model, "cart", cfg)
    rows = dict(zip(side.items.to_list(), side.vectors, strict=True))
    assert set(rows) == {1, 2, 3, 4} and side.backoff == 2
    np.testing.assert_allclose(rows[1], np.r_[model.vectors_in[tok(1, "click")], 1.0], atol=1e-6)
    np.testing.assert_allclose(rows[2], np.r_[model.vectors_in[tok(2, "cart")], 1.0], atol=1e-6)
    got = lists(model, cfg, "cart", "cart")
    assert set(got) == {1, 2, 3, 4}
    assert all(c != item for item, cands in got.items() for c, _ in cands)


@pytest.mark.parametrize("score", ["cosine", "in-out"])
def test_other_scores_back_off_queries_only(model, score):
    cfg = IndexConfig(threads=1, score=score)
    assert set(target_side(model, "cart", cfg).items.to_list()) == {2, 3}
    assert set(query_side(model, "cart", cfg).items.to_list()) == {1, 2, 3, 4}
    got = lists(model, cfg, "click", "cart")
    u = model.vectors_in[tok(1, "click")]
    v = {q: (model.vectors_in if score == "cosine" else model.vectors_out)[tok(q, "cart")] for q in (2, 3)}
    if score == "cosine":
        want = {q: float(u @ x / np.linalg.norm(u) / np.linalg.norm(x)) for q, x in v.items()}
    else:
        want = {q: float(u @ x) for q, x in v.items()}
    assert {c: pytest.approx(s, abs=1e-4) for c, s in got[1]} == want
