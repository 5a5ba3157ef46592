"""Every baseline of ``recs compare`` passes the shared GeneratorContract, plus what is special to each."""

from __future__ import annotations

import importlib.util

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recs.candidates.baselines import (
    ALSCandidates,
    ALSConfig,
    CooccurrenceCandidates,
    CoPurchaseCandidates,
    CoVisitationCandidates,
    ItemEmbeddingCandidates,
    OptionalDependencyError,
    SameGroupCandidates,
)
from recs.candidates.baselines.sparse import popularity_codes, sparse_knn, topk_rows
from recs.config import CoocConfig, IndexConfig, TrainConfig

from contract import GeneratorContract
from helpers import sessions_frame

HAS_IMPLICIT = importlib.util.find_spec("implicit") is not None
needs_implicit = pytest.mark.skipif(not HAS_IMPLICIT, reason="optional extra 'implicit' not installed")
SMALL = TrainConfig(dim=32, epochs=5, workers=1, seed=5)  # one worker: gensim reproducible only single-threaded


class TestItemEmbedding(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return ItemEmbeddingCandidates(TrainConfig(dim=32, epochs=5, workers=1, seed=5, cooc=CoocConfig(k=0)),
                                       IndexConfig(threads=1))


class TestItemEmbeddingRegularized(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return ItemEmbeddingCandidates(SMALL, IndexConfig(threads=1))


@needs_implicit
class TestMF(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return ALSCandidates(ALSConfig(factors=16, iterations=5, workers=1, seed=3), IndexConfig(threads=1))


@needs_implicit
class TestInteractionMF(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return ALSCandidates(ALSConfig(factors=16, iterations=5, workers=1, seed=3), IndexConfig(threads=1),
                             interaction_aware=True)


class TestCoPurchase(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return CoPurchaseCandidates()


class TestCooccurrence(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return CooccurrenceCandidates()


class TestCoVisitation(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return CoVisitationCandidates()


class TestSameShop(GeneratorContract):  # the planted log has shop_id and category (tests/test_same_group.py)
    @classmethod
    def make_generator(cls):
        return SameGroupCandidates()


class TestSameCategory(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return SameGroupCandidates(column="category", name="same-category")


# --- hand-computed answers ------------------------------------------------------------------------------------


def test_co_purchase_cosine_by_hand():
    # user_id absent -> baskets are sessions. Item 1 bought in sessions a, b; item 2 in a; item 3 in b, c.
    train = sessions_frame({"a": [(1, "purchase"), (2, "purchase")], "b": [(1, "purchase"), (3, "purchase")],
                            "c": [(3, "purchase"), (4, "click")]})
    frame = CoPurchaseCandidates().fit(train).candidates("click", "cart", 10).sort("item_id", "rank")
    got = {(a, b): round(s, 4) for a, b, s in frame.select("item_id", "candidate_item_id", "score").iter_rows()}
    # cos(1,2) = 1/sqrt(2); cos(1,3) = 1/2; cos(2,3) = 0 -> no pair; item 4 never bought -> no list
    assert got == {(1, 2): 0.7071, (1, 3): 0.5, (2, 1): 0.7071, (3, 1): 0.5}


def test_cooccurrence_counts_sessions_per_interaction_pair():
    train = sessions_frame({1: [(1, "click"), (2, "cart")], 2: [(1, "click"), (2, "cart"), (3, "cart")],
                            3: [(1, "click"), (3, "click")], 4: [(1, "cart"), (2, "click")]})
    gen = CooccurrenceCandidates().fit(train)
    c2c = gen.candidates("click", "cart", 10).filter(pl.col("item_id") == 1)
    assert c2c.select("candidate_item_id", "score").rows() == [(2, 2.0), (3, 1.0)]  # 1:cart is the item itself
    k1 = gen.candidates("click", "cart", 1).filter(pl.col("item_id") == 1)
    assert k1["candidate_item_id"].to_list() == [2]
    with pytest.raises(Exception, match="no 'purchase' events"):
        gen.candidates("purchase", "cart", 5)


def test_co_visitation_weights_by_type_and_window():
    from datetime import timedelta

    from helpers import T0

    rows = [  # session 1: 1 click, 2 cart, 3 click two days later (outside the 24 h window)
        (1, 1, "click", T0), (1, 2, "cart", T0 + timedelta(minutes=1)), (1, 3, "click", T0 + timedelta(days=2)),
        (2, 1, "click", T0), (2, 2, "click", T0 + timedelta(minutes=1)), (2, 2, "purchase", T0 + timedelta(minutes=2)),
    ]
    train = pl.DataFrame(rows, schema=["session_id", "item_id", "interaction", "timestamp"], orient="row")
    frame = CoVisitationCandidates().fit(train).candidates("click", "cart", 10)
    got = {(a, b): s for a, b, s in frame.select("item_id", "candidate_item_id", "score").iter_rows()}
    # 1 -> 2: cart in session 1 (6) + the highest of click/purchase in session 2 (3) = 9; 2 -> 1: click twice
    assert got == {(1, 2): 9.0, (2, 1): 2.0}


@needs_implicit
def test_interaction_mf_separates_tokens_and_mf_does_not():
    train = sessions_frame({s: [(s % 7, "click"), (s % 7 + 1, "cart"), (s % 5 + 20, "click")] for s in range(40)})
    aware = ALSCandidates(ALSConfig(factors=4, iterations=3, workers=1), IndexConfig(threads=1),
                          interaction_aware=True).fit(train)
    plain = ALSCandidates(ALSConfig(factors=4, iterations=3, workers=1), IndexConfig(threads=1)).fit(train)
    assert set(aware.inner.model.interactions) == {"click", "cart"}
    assert plain.inner.model.interactions == ["item"]
    assert aware.candidates("click", "cart", 5)["candidate_item_id"].is_in(list(range(1, 8))).all()


def test_mf_without_implicit_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_implicit(name, *args, **kwargs):
        if name.startswith("implicit"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_implicit)
    train = sessions_frame({1: [(1, "click"), (2, "cart")]})
    with pytest.raises(OptionalDependencyError, match=r"pip install 'recs\[compare\]'"):
        ALSCandidates().fit(train)


# --- the sparse helpers -----------------------------------------------------------------------------------------


def test_topk_rows_orders_by_score_then_column_and_pads():
    m = sp.csr_matrix(np.array([[0, 3, 1, 3], [0, 0, 0, 0], [2, 0, 0, 0]], dtype=np.float32))
    scores, ids = topk_rows(m, 3)
    assert ids.tolist() == [[1, 3, 2], [-1, -1, -1], [0, -1, -1]]
    assert scores[0].tolist() == [3, 3, 1]


def test_sparse_knn_in_blocks_equals_dense_product():
    rng = np.random.default_rng(0)
    a = sp.random(50, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    b = sp.random(40, 30, density=0.2, format="csr", random_state=2, dtype=np.float32)
    scores, ids = sparse_knn(a, b, 5, block_rows=7)
    dense = (a @ b.T).toarray()
    for i in rng.choice(50, 10, replace=False):
        want = sorted(dense[i][dense[i] > 0], reverse=True)[:5]
        assert np.allclose(scores[i][: len(want)], want)
        assert np.allclose(dense[i, ids[i][: len(want)]], want)  # ids point at the rows that gave the scores


def test_popularity_codes_most_frequent_first():
    codes, uniques = popularity_codes(pl.Series("x", [5, 7, 7, 9, 9, 9, 5]))
    assert uniques.to_list() == [9, 5, 7]  # 9 thrice; 5 and 7 twice, the smaller value first
    assert codes.tolist() == [1, 2, 2, 0, 0, 0, 1]


def test_co_visitation_keeps_only_the_most_recent_events_of_a_session():
    from recs.candidates.baselines import CoVisitConfig

    train = sessions_frame({1: [(1, "click"), (2, "click"), (3, "click")]})
    full = CoVisitationCandidates().fit(train).candidates("click", "cart", 10)
    last2 = CoVisitationCandidates(CoVisitConfig(max_events=2)).fit(train).candidates("click", "cart", 10)
    assert full.height == 6  # every ordered pair of the three items
    assert set(last2.select("item_id", "candidate_item_id").rows()) == {(2, 3), (3, 2)}
