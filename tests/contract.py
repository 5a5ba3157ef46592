"""The shared contract every CandidateGenerator passes (the pattern of implicit's
``recommender_base_test``): subclass ``GeneratorContract`` and provide the classmethod ``make_generator``.

It fits the generator once on a small planted log and checks what the rest of recs relies on:
the candidate table's columns and types, at most k rows per item, ranks 1..n without gaps, scores
not increasing with rank, no item recommended to itself, candidate ids from the training
catalogue, and the same answer twice for the same seed.
"""

from __future__ import annotations

from itertools import pairwise

import polars as pl
import pytest

from recs.candidates.base import CandidateGenerator
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate

PAIRS = [("click", "cart"), ("cart", "cart")]


class GeneratorContract:
    K = 20

    @classmethod
    def make_generator(cls) -> CandidateGenerator:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        df, _ = generate(SynthConfig(events=25_000, seed=11))
        return split_sessions(df)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data):
        return cls.make_generator().fit(data.train)

    @pytest.fixture(scope="class")
    @classmethod
    def tables(cls, fitted):
        return {pair: fitted.candidates(*pair, cls.K) for pair in PAIRS}

    def test_schema(self, tables, data):
        for frame in tables.values():
            assert frame.columns == ["item_id", "candidate_item_id", "rank", "score"]
            assert frame["item_id"].dtype == data.train["item_id"].dtype
            assert frame["candidate_item_id"].dtype == data.train["item_id"].dtype
            assert frame["rank"].dtype.is_integer() and frame["score"].dtype.is_float()
            assert frame.height > 0

    def test_at_most_k_ranks_contiguous_scores_sorted(self, tables):
        for frame in tables.values():
            per = frame.sort("item_id", "rank").group_by("item_id", maintain_order=True).agg(
                pl.col("rank"), pl.col("score"))
            assert per["rank"].list.len().max() <= self.K
            for ranks, scores in per.select("rank", "score").iter_rows():
                assert ranks == list(range(1, len(ranks) + 1))
                assert all(a >= b - 1e-6 for a, b in pairwise(scores))

    def test_no_self_and_known_items(self, tables, data):
        catalogue = set(data.train["item_id"].unique().to_list())
        for frame in tables.values():
            assert (frame["item_id"] != frame["candidate_item_id"]).all()
            assert set(frame["candidate_item_id"].unique().to_list()) <= catalogue
            assert frame.select("item_id", "candidate_item_id").is_duplicated().sum() == 0

    def test_deterministic(self, data, tables):
        again = self.make_generator().fit(data.train)
        for pair, frame in tables.items():
            other = again.candidates(*pair, self.K)
            assert other.select("item_id", "candidate_item_id", "rank").equals(
                frame.select("item_id", "candidate_item_id", "rank"))
