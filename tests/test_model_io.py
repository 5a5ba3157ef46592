"""Save/load round-trips of the model artifact, and its refusal of foreign or broken directories."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    items=st.one_of(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=30, unique=True),
                    st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=30, unique=True)),
    dim=st.integers(1, 8),
    seed=st.integers(0, 1000),
)
def test_save_load_round_trip(tmp_path_factory, items, dim, seed):
    rng = np.random.default_rng(seed)
    n = len(items)
    vocab = pl.DataFrame({
        "token_id": pl.Series(range(n), dtype=pl.Int32),
        "token": [f"{i}:click" for i in items],
        "item_id": items,
        "interaction": ["click"] * n,
        "count": pl.Series(rng.integers(1, 100, n), dtype=pl.Int64),
    })
    model = EmbeddingModel(vocab, rng.standard_normal((n, dim)).astype(np.float32),
                           rng.standard_normal((n, dim)).astype(np.float32), {"config": {"dim": dim}})
    out = tmp_path_factory.mktemp("m") / "model"
    model.save(out, input={"path": "x", "fingerprint": "y"})
    back = EmbeddingModel.load(out)
    assert back.vocab.equals(vocab) and back.vocab["item_id"].dtype == vocab["item_id"].dtype
    assert np.array_equal(back.vectors_in, model.vectors_in) and np.array_equal(back.vectors_out, model.vectors_out)
    assert back.manifest["config"] == {"dim": dim} and back.manifest["format_version"] == 1
    # re-saving over the same directory replaces it
    model.save(out)
    assert EmbeddingModel.load(out).vocab.height == n


def test_refuses_broken_and_foreign_directories(tmp_path):
    vocab = pl.DataFrame({"token_id": pl.Series([0, 1], dtype=pl.Int32), "token": ["1:click", "2:cart"],
                          "item_id": [1, 2], "interaction": ["click", "cart"], "count": [3, 1]})
    m = EmbeddingModel(vocab, np.zeros((2, 4), np.float32), np.zeros((2, 4), np.float32))
    m.save(tmp_path / "m")
    assert np.load(tmp_path / "m" / "vectors_in.npy", allow_pickle=False).dtype == np.float32
    (tmp_path / "m" / "vectors_out.npy").unlink()
    with pytest.raises(ArtifactError, match=r"vectors_out\.npy: missing"):
        EmbeddingModel.load(tmp_path / "m")
    (tmp_path / "m" / "manifest.json").write_text(json.dumps({"format": "recs.index", "format_version": 1}))
    with pytest.raises(ArtifactError, match=r"expected 'recs\.model'"):
        EmbeddingModel.load(tmp_path / "m")
    (tmp_path / "half").mkdir()
    with pytest.raises(ArtifactError, match=r"no manifest\.json"):
        EmbeddingModel.load(tmp_path / "half")
