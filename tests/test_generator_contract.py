"""Our method passes the shared GeneratorContract in each of its variants: the three scores, with and
without backoff, and the unregularized ablation (``ours-noreg``)."""

from __future__ import annotations

from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.registry import unregularized
from recs.config import IndexConfig, TrainConfig

from contract import GeneratorContract


class TestInteractionEmbeddings(GeneratorContract):
    @classmethod
    def make_generator(cls):
        # one worker: gensim is bit-for-bit reproducible only single-threaded
        return EmbeddingCandidates(TrainConfig(dim=32, epochs=5, workers=1, seed=5), IndexConfig(threads=1))


class TestInteractionEmbeddingsInOut(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return EmbeddingCandidates(TrainConfig(dim=32, epochs=5, workers=1, seed=5),
                                   IndexConfig(threads=1, score="in-out"))


class TestInteractionEmbeddingsCosineNoBackoff(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return EmbeddingCandidates(TrainConfig(dim=32, epochs=5, workers=1, seed=5),
                                   IndexConfig(threads=1, score="cosine", backoff=False))


class TestInteractionEmbeddingsUnregularized(GeneratorContract):
    @classmethod
    def make_generator(cls):
        return EmbeddingCandidates(unregularized(TrainConfig(dim=32, epochs=5, workers=1, seed=5)),
                                   IndexConfig(threads=1), name="ours-noreg")
