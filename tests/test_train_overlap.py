"""train-embeddings around gensim, faster and the same (issue 23): the negative-sampling table made with
numpy equals gensim's loop value for value, the token order of the export equals the dict lookups it
replaces, and a one-thread training (vocabulary built in a thread while the pairs are counted) gives
the vectors of gensim's own vocabulary code, bit for bit."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from gensim.models import Word2Vec

import recs.embeddings.train as train_mod
from recs.config import TrainConfig
from recs.embeddings.train import _cum_table, gensim_rows, new_model, train
from recs.sessions.synth import SynthConfig, generate

SMALL = {"dim": 16, "epochs": 2, "workers": 1, "seed": 7}


def gensim_table(counts: list[int], ns_exponent: float) -> np.ndarray:
    model = Word2Vec(vector_size=4, min_count=1, negative=5, ns_exponent=ns_exponent, workers=1)
    model.build_vocab_from_freq({str(i): c for i, c in enumerate(counts)})
    return model.cum_table, model.wv.expandos["count"]


@pytest.mark.parametrize("ns_exponent", [0.75, 0.5, 1.0, -0.5])
def test_cum_table_equals_gensims(ns_exponent: float) -> None:
    rng = np.random.default_rng(0)
    counts = (rng.zipf(1.3, 30_000) % 100_000 + 1).tolist()
    expected, gensim_counts = gensim_table(counts, ns_exponent)
    got = _cum_table(np.asarray(gensim_counts, dtype=np.int64), ns_exponent, 2**31 - 1)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


def test_new_model_table_and_rows() -> None:
    rng = np.random.default_rng(1)
    vocab = pl.DataFrame({"count": rng.integers(1, 500, 5_000)})
    model = new_model(vocab, 100, TrainConfig(**SMALL), {})
    plain = Word2Vec(vector_size=16, min_count=1, negative=5, workers=1, seed=7)
    plain.build_vocab_from_freq({str(i): c for i, c in enumerate(vocab["count"].to_list())})
    assert np.array_equal(model.cum_table, plain.cum_table)
    expected = np.array([model.wv.key_to_index[str(i)] for i in range(vocab.height)], dtype=np.int64)
    assert np.array_equal(gensim_rows(model), expected)


def test_training_equals_gensims_own_vocabulary_code(monkeypatch) -> None:
    sessions = generate(SynthConfig(events=8_000, seed=2))[0]
    fast = train(sessions, TrainConfig(**SMALL))
    # as before issue 23: gensim's own make_cum_table, and the vocabulary built in the calling thread
    monkeypatch.setattr(train_mod, "_make_cum_table", lambda model, domain=2**31 - 1: Word2Vec.make_cum_table(
        model, domain))
    plain = train(sessions, TrainConfig(**SMALL))
    assert fast.vocab.equals(plain.vocab)
    assert fast.vectors_in.tobytes() == plain.vectors_in.tobytes()
    assert fast.vectors_out.tobytes() == plain.vectors_out.tobytes()
