"""The shared contract every CandidateGenerator passes (the pattern of implicit's
``recommender_base_test``): subclass ``GeneratorContract`` and provide the classmethod ``make_generator``.

It fits the generator once on a small planted log and checks what the rest of recs relies on:
the candidate table's columns and types, at most k rows per item, ranks 1..n without gaps, scores
not increasing with rank, no item recommended to itself, candidate ids from the training
catalogue, the same answer twice for the same seed, a NotFittedError before fit, a ConfigError
naming the known interactions when an interaction-aware method is asked for an unknown one, string
item ids kept as strings, the lists of a few items (``candidates_of``) equal to theirs in the table,
the written index read back as it was answered, and one list for every pair (whatever its names) from
an item-level method.
"""

from __future__ import annotations

from itertools import pairwise

import polars as pl
import pytest

from recs.candidates.base import CandidateGenerator
from recs.candidates.build import load_candidates, write_index
from recs.config import IndexConfig
from recs.errors import ConfigError, NotFittedError, RecsError
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

    def test_lists_of_some_items_are_those_of_the_whole_table(self, fitted, tables):
        """``candidates_of`` (a few query items, as the blend asks for its triggers) gives exactly those
        items' rows of the full table, whether the method filters the table or searches only them."""
        for pair, frame in tables.items():
            items = frame["item_id"].unique().sort()
            some = items.gather(list(range(0, len(items), 7)))
            key = ["item_id", "rank"]
            got = fitted.candidates_of(*pair, self.K, some).sort(key)
            want = frame.filter(pl.col("item_id").is_in(some.implode())).sort(key)
            assert got.select("item_id", "candidate_item_id", "rank").equals(
                want.select("item_id", "candidate_item_id", "rank")), pair
            assert got.height > 0

    def test_deterministic(self, data, tables):
        again = self.make_generator().fit(data.train)
        for pair, frame in tables.items():
            other = again.candidates(*pair, self.K)
            assert other.select("item_id", "candidate_item_id", "rank").equals(
                frame.select("item_id", "candidate_item_id", "rank"))

    def test_use_before_fit_is_not_fitted_error(self):
        fresh = self.make_generator()
        with pytest.raises(NotFittedError, match="fit"):
            fresh.candidate_blocks("click", "cart", self.K)  # on the call, before a block is asked for
        with pytest.raises(NotFittedError):
            fresh.candidates("click", "cart", self.K)

    def test_a_failed_refit_leaves_it_unfitted(self, data):
        gen = self.make_generator().fit(data.train.head(2_000))
        assert gen.candidates("click", "cart", self.K).height > 0
        with pytest.raises(RecsError, match="no rows"):
            gen.fit(data.train.head(0))
        with pytest.raises(NotFittedError):  # not the lists of the earlier fit
            gen.candidates("click", "cart", self.K)

    def test_unknown_interaction_names_the_known_ones(self, fitted, tables):
        for pair in [("wishlist", "cart"), ("click", "wishlist")]:
            if not fitted.interaction_aware:  # interaction-blind: the one list, whatever the names
                assert fitted.candidates(*pair, self.K).equals(tables[PAIRS[0]])
                continue
            with pytest.raises(ConfigError, match=r"'wishlist'.*it knows .*cart.*click"):
                fitted.candidate_blocks(*pair, self.K)

    def test_string_item_ids(self, data):
        train = data.train.with_columns(pl.col("item_id").cast(pl.String))
        gen = self.make_generator().fit(train)
        catalogue = set(train["item_id"].unique().to_list())
        for pair in PAIRS:
            frame = gen.candidates(*pair, self.K)
            assert frame.schema["item_id"] == pl.String and frame.schema["candidate_item_id"] == pl.String
            assert frame.height > 0 and set(frame["candidate_item_id"].unique().to_list()) <= catalogue

    def test_written_index_reads_back_as_answered(self, fitted, data, tables, tmp_path):
        # the writer of recs build-index, for ours and every other method alike
        manifest = write_index(tmp_path / "index", fitted, IndexConfig(pairs=tuple(PAIRS), k=self.K, threads=1),
                               {"sessions": {"path": "train"}}, data.train["item_id"].n_unique())
        assert manifest["method"]["name"] == fitted.name
        for (source, target), frame in tables.items():
            name = f"{source}_to_{target}"
            assert manifest["candidate_sets"][name]["rows"] == frame.height
            assert load_candidates(tmp_path / "index", name).equals(frame)

    def test_item_level_methods_answer_one_list_for_every_pair(self, fitted, tables):
        if fitted.interaction_aware:
            pytest.skip("an interaction-aware method answers each pair on its own")
        first, *others = tables.values()
        others.append(fitted.candidates("purchase", "favorite", self.K))
        assert all(other.equals(first) for other in others)
