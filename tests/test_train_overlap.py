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


@pytest.mark.parametrize("sample", [1e-3, 0.0, 1e-5, 5.0])
@pytest.mark.parametrize("min_count", [1, 3])
def test_prepare_vocab_equals_gensims(sample: float, min_count: int) -> None:
    rng = np.random.default_rng(2)
    freq = {str(i): int(c) for i, c in enumerate(rng.zipf(1.4, 20_000) % 50_000 + 1)}
    fast = Word2Vec(vector_size=8, min_count=min_count, sample=sample, negative=5, workers=1, seed=3)
    train_mod._fast_vocab(fast)
    fast.build_vocab_from_freq(dict(freq), corpus_count=77)
    plain = Word2Vec(vector_size=8, min_count=min_count, sample=sample, negative=5, workers=1, seed=3)
    plain.build_vocab_from_freq(dict(freq), corpus_count=77)
    assert fast.wv.index_to_key == plain.wv.index_to_key and fast.wv.key_to_index == plain.wv.key_to_index
    assert list(fast.wv.expandos) == list(plain.wv.expandos)
    for name, values in plain.wv.expandos.items():
        assert fast.wv.expandos[name].dtype == values.dtype and np.array_equal(fast.wv.expandos[name], values), name
    assert np.array_equal(fast.cum_table, plain.cum_table)
    assert np.array_equal(fast.wv.vectors, plain.wv.vectors) and np.array_equal(fast.syn1neg, plain.syn1neg)
    assert (fast.min_count, fast.sample, fast.effective_min_count) == (plain.min_count, plain.sample,
                                                                       plain.effective_min_count)


def test_training_equals_gensims_own_vocabulary_code(monkeypatch) -> None:
    sessions = generate(SynthConfig(events=8_000, seed=2))[0]
    fast = train(sessions, TrainConfig(**SMALL))
    # as before issue 23: gensim's own prepare_vocab and make_cum_table (no _fast_vocab)
    monkeypatch.setattr(train_mod, "_fast_vocab", lambda model: None)
    plain = train(sessions, TrainConfig(**SMALL))
    assert fast.vocab.equals(plain.vocab)
    assert fast.vectors_in.tobytes() == plain.vectors_in.tobytes()
    assert fast.vectors_out.tobytes() == plain.vectors_out.tobytes()
