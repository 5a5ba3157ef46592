"""``candidates_of`` on a generator whose HNSW graph is not built yet scans the target rows exactly
(``recs.candidates.hnsw.exact_blocks``): the blend's validation stage asks for a few thousand triggers'
lists and would otherwise build a graph per target for them. The scan must give the lists the graph
gives (on a small log the graph at efSearch 256 is exact), with the same scores."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recs.candidates.baselines import ItemEmbeddingCandidates
from recs.candidates.embedding import EXACT_SHARE, EmbeddingCandidates
from recs.candidates.hnsw import build_hnsw, exact_blocks, search_blocks
from recs.config import IndexConfig, TrainConfig
from recs.errors import ConfigError
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate

K = 30


@pytest.fixture(scope="module")
def train():
    df, _ = generate(SynthConfig(events=25_000, seed=5))
    return split_sessions(df).train


@pytest.mark.parametrize("score", ["prob", "cosine", "in-out"])
def test_exact_blocks_equal_the_graph_on_a_small_catalogue(score):
    rng = np.random.default_rng(0)
    keys, queries = rng.normal(size=(500, 16)).astype(np.float32), rng.normal(size=(40, 16)).astype(np.float32)
    cfg = IndexConfig(score=score, threads=1)
    unit = score == "cosine"
    if unit:
        keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    graph = list(search_blocks(build_hnsw(keys, cfg, unit=unit), queries, 10, cfg))
    exact = list(exact_blocks(keys, queries, 10, cfg))
    np.testing.assert_array_equal(np.vstack([ids for _, _, ids in graph]), np.vstack([ids for _, _, ids in exact]))
    np.testing.assert_allclose(np.vstack([s for _, s, _ in graph]), np.vstack([s for _, s, _ in exact]), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("make", [
    lambda: EmbeddingCandidates(TrainConfig(seed=3, workers=1, epochs=3), IndexConfig(threads=1)),
    lambda: ItemEmbeddingCandidates(train_config=TrainConfig(seed=3, workers=1, epochs=3),
                                    index_config=IndexConfig(threads=1)),
], ids=["ours", "embedding-reg"])
def test_few_queries_are_scanned_and_answer_the_tables_rows(train, make):
    gen = make().fit(train)
    items = train["item_id"].unique().sort()
    some = items.gather(list(range(0, len(items), EXACT_SHARE * 3)))
    for pair in [("click", "cart"), ("cart", "cart")]:
        got = gen.candidates_of(*pair, K, some)
        inner = gen.inner if isinstance(gen, ItemEmbeddingCandidates) else gen
        assert not inner.indexes, "a few queries must not build the graph"
        full = gen.candidates(*pair, K)
        want = full.filter(pl.col("item_id").is_in(some.implode()))
        key = ["item_id", "rank"]
        got, want = got.sort(key), want.sort(key)
        assert got.select("item_id", "candidate_item_id", "rank").equals(
            want.select("item_id", "candidate_item_id", "rank")), pair
        np.testing.assert_allclose(got["score"].to_numpy(), want["score"].to_numpy(), rtol=1e-4, atol=1e-4)
        inner.indexes.clear()  # the next pair scans again


@pytest.mark.parametrize("unit", [True, False])
def test_search_exact_builds_a_flat_index_whose_lists_are_the_brute_force_top_k(unit, monkeypatch):
    """``IndexConfig.search`` "exact" (and "auto" up to ``EXACT_MAX_ROWS`` keys): a flat index, whose lists are the
    true k largest inner products (numpy's, by hand), whatever the norms; beyond the threshold "auto" builds the
    graph. The blend searches its sources this way (``BlendConfig.search``)."""
    from recs.candidates import hnsw as hnsw_module

    rng = np.random.default_rng(1)
    keys, queries = rng.normal(size=(300, 8)).astype(np.float32), rng.normal(size=(25, 8)).astype(np.float32)
    keys *= rng.uniform(0.2, 3.0, size=(300, 1)).astype(np.float32)  # unequal norms: the MIPS case
    if unit:
        keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    truth = np.argsort(-(queries @ keys.T), axis=1, kind="stable")[:, :12]
    for search in ("exact", "auto"):
        cfg = IndexConfig(threads=1, search=search)
        index = build_hnsw(keys, cfg, unit=unit)
        assert index.exact and index.mips_norm2 is None
        blocks = list(search_blocks(index, queries, 12, cfg))
        np.testing.assert_array_equal(np.vstack([ids for _, _, ids in blocks]), truth)
        np.testing.assert_allclose(np.vstack([s for _, s, _ in blocks]),
                                   np.take_along_axis(queries @ keys.T, truth, axis=1), rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(hnsw_module, "EXACT_MAX_ROWS", 299)
    assert not build_hnsw(keys, IndexConfig(threads=1, search="auto"), unit=unit).exact
    assert not build_hnsw(keys, IndexConfig(threads=1), unit=unit).exact  # "hnsw", the paper's, by default
    with pytest.raises(ConfigError, match="search"):
        IndexConfig(search="graph").validate()
