"""Index directories written from hand-made lists, for tests whose right answer is known by construction.

``hand_index(path, {"click_to_cart": {1: [10, 11], 2: [11, 12]}, ...})`` writes a real INDEX_DIR (the
format ``recs build-index`` writes, through the same ``write_index``), so readers are tested on what they
read in production. Scores default to falling with rank (1.0, 0.9, ...); give ``(item, score)`` pairs to
set them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from recs.candidates.base import CandidateGenerator
from recs.candidates.build import write_index
from recs.columns import Col
from recs.config import IndexConfig

Lists = dict[str, dict[Any, list[Any]]]


@dataclass
class FixedLists(CandidateGenerator):
    """A generator whose lists are given: set name -> item -> [candidate | (candidate, score)]."""

    lists: Lists = field(default_factory=dict)
    name: str = "hand"

    def _fit(self, train: pl.DataFrame) -> None:
        pass

    def _known_interactions(self) -> tuple[str, ...] | None:
        return tuple(sorted({p for n in self.lists for p in n.split("_to_")}))

    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        rows = []
        for item, cands in self.lists.get(f"{source}_to_{target}", {}).items():
            for r, c in enumerate(cands[:k]):
                cand, score = c if isinstance(c, tuple) else (c, 1.0 - 0.1 * r)
                rows.append((item, cand, r + 1, float(score)))
        item_type = pl.String if rows and isinstance(rows[0][0], str) else pl.Int64
        yield pl.DataFrame(rows, schema={Col.ITEM: item_type, Col.CANDIDATE: item_type, Col.RANK: pl.Int32,
                                         Col.SCORE: pl.Float32}, orient="row")


def hand_index(path: Path, lists: Lists, k: int = 200) -> Path:
    """Write ``lists`` as an index directory at ``path``; return ``path``."""
    gen = FixedLists(lists=lists)
    gen.__dict__["_generator_interactions"] = gen._known_interactions()  # "fitted": it needs no data
    gen.__dict__["_generator_cache"] = {}
    pairs = tuple(tuple(n.split("_to_")) for n in lists)
    write_index(path, gen, IndexConfig(pairs=pairs, k=k), {"sessions": {"path": "hand-made", "fingerprint": "-"}},
                None)
    return path
