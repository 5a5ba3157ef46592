"""Count-based baselines on sparse matrices: co-purchase (4) and interaction co-occurrence (8).

* **Co-purchase** (the paper's production baseline): an item is its sparse vector of baskets (users,
  or sessions when the log has no user) that purchased it; candidates are the items with the highest
  cosine. Only items bought together with another item get a list, hence its low coverage.
* **Co-occurrence**: a token ``item:interaction`` is its binary vector of sessions; for a (source,
  target) pair, candidates of a source token are the target tokens that share the most sessions
  with it (a count aggregated over sessions, no learning).

Both answer through ``candidate_frame``, so the trigger item is left out exactly as for our model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl
import scipy.sparse as sp

from recs.candidates.base import CandidateGenerator, candidate_frame
from recs.candidates.baselines.common import basket_column
from recs.candidates.baselines.sparse import dense_codes, incidence, popularity_codes, row_normalized, sparse_knn
from recs.columns import Col, Interaction
from recs.errors import InputError
from recs.progress import NullProgress, Progress


@dataclass
class CoPurchaseCandidates(CandidateGenerator):
    """Items by cosine of their co-purchase vectors; the same list for every (source, target) pair."""

    purchase: str = Interaction.PURCHASE
    progress: Progress = field(default_factory=NullProgress)
    name: str = "co-purchase"
    interaction_aware: bool = False
    _items: pl.Series | None = field(default=None, repr=False)
    _vectors: sp.csr_matrix | None = field(default=None, repr=False)

    def _fit(self, train: pl.DataFrame) -> None:
        bought = train.filter(pl.col(Col.INTERACTION) == self.purchase)
        if bought.height == 0:
            raise InputError(f"co-purchase: the training sessions have no {self.purchase!r} events")
        item_code, self._items = popularity_codes(bought[Col.ITEM])
        basket_code, baskets = dense_codes(bought[basket_column(train)])
        self._vectors = row_normalized(incidence(item_code, basket_code, (self._items.len(), baskets.len())))

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        assert self._vectors is not None and self._items is not None  # fitted: the base class checked
        width = min(k + 1, self._items.len())
        scores, ids = sparse_knn(self._vectors, self._vectors, width, progress=self.progress, label=self.name)
        yield candidate_frame(self._items, self._items, ids, scores, k)


@dataclass
class CooccurrenceCandidates(CandidateGenerator):
    """Target tokens ranked by the number of training sessions they share with the source token."""

    progress: Progress = field(default_factory=NullProgress)
    name: str = "co-occurrence"
    interaction_aware: bool = True
    _tokens: pl.DataFrame | None = field(default=None, repr=False)  # item_id, interaction; row = token code
    _sessions: sp.csr_matrix | None = field(default=None, repr=False)  # token x session, binary

    def _fit(self, train: pl.DataFrame) -> None:
        # Token codes by descending count (then interaction, item): ties in a co-occurrence count go to
        # the more frequent token, and the same log always gives the same codes.
        self._tokens = (
            train.group_by(Col.ITEM, Col.INTERACTION)
            .len("_n")
            .sort(["_n", Col.INTERACTION, Col.ITEM], descending=[True, False, False])
            .drop("_n")
            .with_row_index("_t")
        )
        keyed = train.select(Col.SESSION, Col.ITEM, Col.INTERACTION).join(
            self._tokens, on=[Col.ITEM, Col.INTERACTION], how="left"
        )
        self._tokens = self._tokens.drop("_t")
        session_code, sessions = dense_codes(keyed[Col.SESSION])
        token_code = keyed["_t"].to_numpy().astype("int64")
        self._sessions = incidence(token_code, session_code, (self._tokens.height, sessions.len()))

    def _rows(self, interaction: str) -> pl.DataFrame:
        """The tokens of one interaction with their row in the token x session matrix (never empty:
        the base class let only interactions of the training sessions through)."""
        assert self._tokens is not None
        return self._tokens.with_row_index("_row").filter(pl.col(Col.INTERACTION) == interaction)

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        src, tgt = self._rows(source), self._rows(target)
        assert self._sessions is not None
        queries = self._sessions[src["_row"].to_numpy()]
        targets = self._sessions[tgt["_row"].to_numpy()]
        width = min(k + 1, tgt.height)
        label = f"{self.name} {source}->{target}"
        scores, ids = sparse_knn(queries, targets, width, progress=self.progress, label=label)
        yield candidate_frame(src[Col.ITEM], tgt[Col.ITEM], ids, scores, k)
