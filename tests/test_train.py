"""Training: what gensim sees, reproducibility, and the two corpus modes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

import recs.embeddings.train as train_mod
from recs.config import CoocConfig, TrainConfig
from recs.embeddings.epochs import MAX_EPOCHS, MIN_EPOCHS, auto_epochs
from recs.embeddings.train import train
from recs.errors import InputError
from recs.sessions.synth import SynthConfig, generate

SMALL = {"dim": 16, "epochs": 3, "workers": 1, "seed": 3}


@pytest.fixture(scope="module")
def sessions():
    return generate(SynthConfig(events=8_000, seed=1))[0]


class SpyWord2Vec(train_mod.Word2Vec):
    """Records, for every train() call, which corpus it got and the subsampling in force."""

    calls: ClassVar[list[tuple[str, float]]] = []
    last: ClassVar[SpyWord2Vec | None] = None

    def train(self, *args, **kwargs):
        source = kwargs.get("corpus_file") or type(kwargs.get("corpus_iterable")).__name__
        SpyWord2Vec.calls.append((str(source), self.sample))
        SpyWord2Vec.last = self
        return super().train(*args, **kwargs)


@pytest.mark.parametrize("mode", ["file", "iterable"])
def test_pairs_never_subsampled_and_vocab_counts_from_sessions(sessions, monkeypatch, mode):
    SpyWord2Vec.calls = []
    monkeypatch.setattr(train_mod, "Word2Vec", SpyWord2Vec)
    model = train(sessions, TrainConfig(**SMALL, sample=1e-3, corpus_mode=mode))
    pair_calls = [s for src, s in SpyWord2Vec.calls if "pair" in src.lower()]
    session_calls = [s for src, s in SpyWord2Vec.calls if "session" in src.lower()]
    assert len(pair_calls) == len(session_calls) == 3  # one of each per epoch
    assert set(pair_calls) == {0} and set(session_calls) == {1e-3}
    assert SpyWord2Vec.last.sample == 1e-3  # restored after each pair pass
    # gensim's vocabulary counts are exactly the session token counts
    w2v = SpyWord2Vec.last
    gensim_counts = [w2v.wv.get_vecattr(str(t), "count") for t in model.vocab["token_id"].to_list()]
    assert gensim_counts == model.vocab["count"].to_list()
    expected = sessions.group_by("item_id", "interaction").len()
    assert expected["len"].sum() == model.vocab["count"].sum() == sessions.height


def test_seed_reproducible_single_worker(sessions):
    a = train(sessions, TrainConfig(**SMALL))
    b = train(sessions, TrainConfig(**SMALL))
    assert np.array_equal(a.vectors_in, b.vectors_in) and np.array_equal(a.vectors_out, b.vectors_out)
    c = train(sessions, TrainConfig(**{**SMALL, "seed": 4}))
    assert not np.allclose(a.vectors_in, c.vectors_in)
    # threads change floats, never the vocabulary
    d = train(sessions, TrainConfig(**{**SMALL, "workers": 2}))
    assert d.vocab.equals(a.vocab)


def test_regularization_off_records_zero_pairs(sessions):
    m = train(sessions, TrainConfig(**SMALL, cooc=CoocConfig(k=0)))
    assert m.manifest["counts"]["regularization_pairs"] == 0
    assert m.manifest["config"]["cooc"]["k"] == 0 and m.manifest["config"]["epochs"] == 3


def test_manifest_and_vectors_line_up(sessions):
    m = train(sessions, TrainConfig(**SMALL))
    assert m.vectors_in.shape == m.vectors_out.shape == (m.vocab.height, 16)
    assert np.isfinite(m.vectors_in).all()
    counts = m.manifest["counts"]
    assert counts["events"] == sessions.height and counts["tokens"] == m.vocab.height
    assert sum(counts["tokens_per_interaction"].values()) == m.vocab.height
    # gensim starts vectors uniform in +-0.5/dim (norm <= 0.5/sqrt(dim)); row 0 is the most frequent
    # token, which training must have moved well beyond that bound
    assert np.linalg.norm(m.vectors_in[0]) > 2 * 0.5 / np.sqrt(16)


def test_min_count_and_too_little_data(sessions):
    m = train(sessions, TrainConfig(**{**SMALL, "min_count": 3}))
    assert m.vocab["count"].min() >= 3
    tiny = sessions.head(1)
    with pytest.raises(InputError, match="nothing to learn"):
        train(tiny, TrainConfig(**SMALL))


def test_auto_epochs_rule():
    assert auto_epochs(100) == MAX_EPOCHS
    assert auto_epochs(10**9) == MIN_EPOCHS
    sizes = [10**k for k in range(3, 10)]
    epochs = [auto_epochs(n) for n in sizes]
    assert epochs == sorted(epochs, reverse=True)  # never more passes for a larger corpus
