"""Cold start: catalogue items without a vector of their own ask and are found through their group.

The fallback chain, per interaction and side (``recs.columns.Level``): the item's own row (its token,
or with ``--backoff`` its stand-in of another interaction), else its shop's row, else its category's,
else, as a query only, the most frequent items of the target interaction ("most carted" for
Click-to-Cart). Group rows come from ``recs.candidates.groups`` (``mean`` or ``trained``).

* **Queries**: a cold item gets its group's query row, one row per item, so the ordinary search and
  the "not the item itself" rule apply to it as to any other query.
* **Targets**: the index holds the known items' rows and *one* row per group that has cold members
  (not one per member: thousands of equal vectors would only crowd the HNSW graph). A hit on a group
  row expands into its members, all with the group's score, in a fixed order: newest ``listed_at``
  first, then item id; at most ``per_group`` of them (``--rollup-per-group``), so one shop's new
  listings do not fill a list with equal scores, and a group's rows sit after known items that
  score the same (``groups.COLD_PSEUDO_COUNT``). A group with more members than that shows each
  query a window of ``per_group`` consecutive members (wrapping round), starting at member
  ``(c * per_group) mod m`` for the query's item code c: every member is in some lists, and which
  ones is fixed by the index, not by chance (a cap on the group itself would hide its newest-but-
  eleventh listing from every list). Searching ``k + 1`` rows is enough: every row expands into at
  least one item.

With a roll-up the candidate table has two more columns, ``query_level`` and ``candidate_level``
(``Level.CHAIN``), and the set's manifest entry counts queries and rows per level.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from recs.candidates.base import item_codes
from recs.candidates.groups import (
    COLD_PSEUDO_COUNT,
    GroupRows,
    as_query,
    as_target,
    cold_bias,
    mean_rows,
    procrustes,
    side_weights,
    trained_rows,
)
from recs.candidates.hnsw import Hnsw, search_blocks
from recs.candidates.scoring import _N_OWN, Side, item_rows, ns_exponent
from recs.columns import Col, Level
from recs.config import ROLLUP_MEAN, ROLLUP_TRAINED, IndexConfig
from recs.embeddings.model import EmbeddingModel
from recs.errors import ConfigError
from recs.progress import NullProgress, Progress

LEVEL_DTYPE = pl.Enum(list(Level.CHAIN))
_CODE = {name: np.int8(i) for i, name in enumerate(Level.CHAIN)}
_GROUP_ROW, _ORDER = "_group_row", "_order"


@dataclass(frozen=True)
class RolledQuery:
    """The query rows of one source interaction: known items, then cold items with a group row."""

    items: pl.Series  # known items, then the cold ones with a group row (``cold`` holds their rows)
    vectors: np.ndarray  # the known items' rows: the Side's own array, not a copy (10M x 201 floats is 8 GB)
    group_rows: np.ndarray  # the distinct group rows the cold items ask with (one per group that has any)
    cold_row: np.ndarray  # int64 per cold item (after the known ones in ``items``): its row of ``group_rows``
    levels: np.ndarray  # int8 level code per row of ``items``
    popular_items: pl.Series  # cold items with no group row: they get the most frequent targets
    backoff: int

    @property
    def cold(self) -> np.ndarray:
        """The cold items' query rows, one per item (a copy: the search never needs it, see ``rolled_blocks``)."""
        return self.group_rows[self.cold_row]


@dataclass(frozen=True)
class RolledTarget:
    """The index rows of one target interaction and the items each row stands for."""

    items: pl.Series  # known target items, then the cold items indexed through a group
    vectors: np.ndarray  # known items' rows, then one row per group with cold members (emptied once the
    # HNSW index is built from them: recs.candidates.embedding)
    offsets: np.ndarray  # int64 [rows + 1]: row r stands for items[members[offsets[r]:offsets[r + 1]]]
    members: np.ndarray  # int64 positions into ``items``, each group's in the tie order
    row_levels: np.ndarray  # int8 level code per index row
    backoff: int
    per_group: int  # items of one group row shown per query (the window of the module docstring)
    details: dict[str, int]  # cold items per level, the largest group, and those with no group


@dataclass
class RollUp:
    """What a roll-up needs beyond the model: the catalogue, how groups get vectors, the tie cap."""

    catalog: pl.DataFrame  # recs.candidates.catalog: item_id, shop_id and/or category, maybe listed_at
    representation: str = ROLLUP_MEAN  # or ROLLUP_TRAINED (recs.config.ROLLUPS; "auto" is resolved before)
    per_group: int = IndexConfig.rollup_per_group  # the one default: recs.config
    group_models: dict[str, EmbeddingModel] = field(default_factory=dict)  # by group column, for "trained"
    _maps: dict[str, np.ndarray] = field(default_factory=dict)

    def levels(self) -> list[tuple[str, str]]:
        """(level, catalogue column) of the chain's group steps this catalogue can take, in order."""
        return [(level, col) for level, col in Level.GROUP_COLUMNS.items() if col in self.catalog.columns]

    def check(self) -> None:
        """A ``trained`` roll-up needs a group model for every group column of the catalogue."""
        if self.representation != ROLLUP_TRAINED:
            return
        missing = [col for _, col in self.levels() if col not in self.group_models]
        if missing:
            have = ", ".join(self.group_models) or "none"
            raise ConfigError(f"--rollup trained needs {', '.join(missing)} vectors in the model (it has: {have}); "
                              f"train with recs train-embeddings --entity {' --entity '.join(missing)}, "
                              "or use --rollup mean")

    def describe(self) -> dict[str, Any]:
        return {"representation": self.representation, "per_group": self.per_group,
                "levels": [level for level, _ in self.levels()], "catalog_items": self.catalog.height,
                "cold_pseudo_count": COLD_PSEUDO_COUNT}

    def _group_rows(self, model: EmbeddingModel, side: Side, interaction: str, cfg: IndexConfig,
                    target: bool) -> list[tuple[str, GroupRows]]:
        out = []
        backoff = cfg.backoff and (cfg.score == "prob" or not target)  # as query_side / target_side decide
        for level, col in self.levels():
            if self.representation == ROLLUP_MEAN:
                rows: GroupRows | None = mean_rows(side.items, side_weights(model, interaction, backoff),
                                                   side.vectors, self.catalog, col)
            else:
                if col not in self._maps:
                    self._maps[col] = procrustes(self.group_models[col], model, self.catalog, col)
                rows = trained_rows(self.group_models[col], interaction, cfg, col, target, self._maps[col])
            if rows is not None and len(rows.groups):
                out.append((level, as_target(rows, model, cfg) if target else as_query(rows, cfg)))
        return out

    def query(self, model: EmbeddingModel, side: Side, source: str, cfg: IndexConfig) -> RolledQuery:
        """Known query rows plus a row per cold catalogue item that has a group row of ``source``."""
        dim = side.vectors.shape[1]
        items, levels = [side.items], [np.full(len(side.items), _CODE[Level.ITEM])]
        group_rows, cold_row, n_rows = [np.empty((0, dim), np.float32)], [np.empty(0, np.int64)], 0
        remaining = self._cold(side.items)
        for level, rows in self._group_rows(model, side, source, cfg, target=False):
            matched, remaining = _assign(remaining, rows)
            items.append(matched[Col.ITEM])
            # a million cold items of three hundred shops ask with three hundred distinct rows: keep each
            # once and which one every item asks with, so each is searched once (rolled_blocks)
            used, which = np.unique(matched[_GROUP_ROW].to_numpy().astype(np.int64), return_inverse=True)
            group_rows.append(rows.vectors[used])
            cold_row.append(n_rows + which.astype(np.int64).ravel())
            n_rows += len(used)
            levels.append(np.full(matched.height, _CODE[level]))
        return RolledQuery(pl.concat(items), side.vectors,
                           np.ascontiguousarray(np.vstack(group_rows), dtype=np.float32), np.concatenate(cold_row),
                           np.concatenate(levels), remaining[Col.ITEM], side.backoff)

    def target(self, model: EmbeddingModel, side: Side, target: str, cfg: IndexConfig) -> RolledTarget:
        """Known target rows plus one row per group with cold members (see the module docstring)."""
        n = len(side.items)
        items, vectors = [side.items], [side.vectors]
        counts, row_levels = [np.ones(n, dtype=np.int64)], [np.full(n, _CODE[Level.ITEM])]
        details = {level: 0 for level, _ in self.levels()}  # a level with no group row counts 0, not absent
        remaining = self._cold(side.items)
        n_items, largest = n, 0
        for level, rows in self._group_rows(model, side, target, cfg, target=True):
            matched, remaining = _assign(remaining, rows)
            details[level] = matched.height
            kept = _tie_order(matched)
            per_row = kept.group_by(_GROUP_ROW, maintain_order=True).len()  # rows in tie order, grouped
            items.append(kept[Col.ITEM])
            vectors.append(rows.vectors[per_row[_GROUP_ROW].to_numpy()])
            counts.append(per_row["len"].to_numpy().astype(np.int64))
            row_levels.append(np.full(per_row.height, _CODE[level]))
            n_items += kept.height
            largest = max(largest, int(per_row["len"].max() or 0))
        details["largest_group"] = largest
        details["no_group"] = remaining.height
        offsets = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
        return RolledTarget(pl.concat(items), np.ascontiguousarray(np.vstack(vectors), dtype=np.float32), offsets,
                            np.arange(n_items, dtype=np.int64), np.concatenate(row_levels), side.backoff,
                            self.per_group, details)

    def _cold(self, known: pl.Series) -> pl.DataFrame:
        """Catalogue items without a row of their own on this side, in catalogue order."""
        return self.catalog.join(known.to_frame(Col.ITEM), on=Col.ITEM, how="anti", maintain_order="left")


def _assign(remaining: pl.DataFrame, rows: GroupRows) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(items of ``remaining`` whose group has a row, with ``_group_row``; the others)."""
    col = rows.column
    index = rows.groups.rename(col).to_frame().with_row_index(_GROUP_ROW)
    if index.schema[col] != remaining.schema[col]:  # text shop ids in one, integers in the other
        index = index.with_columns(pl.col(col).cast(pl.String))
        remaining = remaining.with_columns(pl.col(col).cast(pl.String))
    joined = remaining.join(index, on=col, how="left", maintain_order="left")
    hit = joined[_GROUP_ROW].is_not_null()
    return joined.filter(hit), remaining.filter(~hit)


def _tie_order(matched: pl.DataFrame) -> pl.DataFrame:
    """Members grouped by group row (in row order), each group's newest listing first, then by id."""
    keys, desc = [_GROUP_ROW], [False]
    if Col.LISTED_AT in matched.columns:
        keys.append(Col.LISTED_AT)
        desc.append(True)
    keys.append(Col.ITEM)
    desc.append(False)
    return matched.sort(keys, descending=desc, nulls_last=True)


def popular(model: EmbeddingModel, target: str, k: int) -> tuple[pl.Series, np.ndarray]:
    """The ``k`` most frequent items of ``target`` (ties: smaller id) and their prior ``a log n``, the
    list of a query with no vector and no group."""
    rows = item_rows(model, target, backoff=False).sort([_N_OWN, Col.ITEM], descending=[True, False]).head(k)
    a = ns_exponent(model)
    return rows[Col.ITEM], (a * np.log(rows[_N_OWN].to_numpy().astype(np.float64))).astype(np.float32)


def rolled_blocks(
    model: EmbeddingModel, query: RolledQuery, target: RolledTarget, hnsw: Hnsw, source: str, target_name: str,
    k: int, cfg: IndexConfig, counts: dict[str, dict[str, int]], progress: Progress | None = None,
) -> Iterator[pl.DataFrame]:
    """The candidate table of ``source`` -> ``target_name`` with roll-up, in blocks; ``counts`` receives
    queries and rows per level (``queries``, ``rows_by_query_level``, ``rows_by_candidate_level``)."""
    progress = progress or NullProgress()
    for key in ("queries", "rows_by_query_level", "rows_by_candidate_level"):
        counts[key] = dict.fromkeys(Level.CHAIN, 0)
    width = min(k + 1, len(target.row_levels))
    q_code, t_code = item_codes(pl.concat([query.items, query.popular_items]), target.items)
    label = f"{source}->{target_name}"
    if len(query.vectors):
        for a, scores, ids in search_blocks(hnsw, query.vectors, width, cfg, progress, label):
            block = _expand(query, target, ids, scores, q_code, t_code, k, a)
            _count(block, counts)
            yield block
    if len(query.cold_row):
        for a, scores, ids in _cold_hits(query, hnsw, width, cfg, progress, f"{label} (rolled up)"):
            block = _expand(query, target, ids, scores, q_code, t_code, k, len(query.vectors) + a)
            _count(block, counts)
            yield block
    if len(query.popular_items):
        # one list for all of them (but each item itself), written in blocks of batch_size queries as the
        # searched ones are: a million ungrouped items must not make one block of a million x k rows
        top, prior = popular(model, target_name, k + 1)
        top_code = t_code[_positions(target.items, top)]
        own = q_code[len(query.items):]
        for a in range(0, len(own), cfg.batch_size):
            block = _popular_block(query.popular_items[a : a + cfg.batch_size], own[a : a + cfg.batch_size],
                                   top, prior, top_code, k)
            _count(block, counts)
            yield block


DEDUPE_GROUP_QUERIES = True  # False: search every cold item's row (the old way; tests and bench/catalog_dedup.py)


def _cold_hits(query: RolledQuery, hnsw: Hnsw, width: int, cfg: IndexConfig, progress: Progress,
               label: str) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The hits of the cold items' queries, in ``search_blocks``' form and blocks.

    Each distinct group row is searched once and its hits are shared by every item that asks with it:
    the same lists as a search per item (one query vector gives one answer), for one search per shop
    instead of one per listing (1,001,353 searches for about 300 shop vectors at 1M catalogue rows)."""
    if not DEDUPE_GROUP_QUERIES:
        yield from search_blocks(hnsw, query.cold, width, cfg, progress, label)
        return
    scores = np.empty((len(query.group_rows), width), np.float32)
    ids = np.empty((len(query.group_rows), width), np.int64)
    for a, s, i in search_blocks(hnsw, query.group_rows, width, cfg, progress, f"{label}, distinct group rows"):
        scores[a : a + len(s)], ids[a : a + len(i)] = s, i
    for a in range(0, len(query.cold_row), cfg.batch_size):
        rows = query.cold_row[a : a + cfg.batch_size]
        yield a, scores[rows], ids[rows]


def _expand(query: RolledQuery, target: RolledTarget, ids: np.ndarray, scores: np.ndarray, q_code: np.ndarray,
            t_code: np.ndarray, k: int, offset: int) -> pl.DataFrame:
    """Hits of query rows ``offset ..`` expanded into the items they stand for, without the query item
    itself, at most ``k`` per query, in hit order (each hit's members in their tie order)."""
    b, w = ids.shape
    valid = ids >= 0
    row = np.where(valid, ids, 0).ravel()
    size = np.diff(target.offsets)[row]  # members of each hit's row (1 for an item's own row)
    length = np.where(valid.ravel(), np.minimum(size, target.per_group), 0)
    total = int(length.sum())
    # a group larger than per_group shows this query the window starting at (code * per_group) mod size
    code = np.repeat(q_code[offset : offset + b].astype(np.int64), w)
    rot = np.where(size > target.per_group, (code * target.per_group) % np.maximum(size, 1), 0)
    within = np.arange(total) - np.repeat(np.cumsum(length) - length, length)
    pos = target.members[np.repeat(target.offsets[row], length)
                         + (np.repeat(rot, length) + within) % np.repeat(np.maximum(size, 1), length)]
    qrow = np.repeat(np.repeat(np.arange(b), w), length)
    hit = np.repeat(np.arange(b * w), length)
    # equal scores (cosine and in-out have no prior to part them): known items first, else the search's order
    order = np.lexsort((np.arange(total), target.row_levels[row[hit]], -scores.ravel()[hit], qrow))
    pos, qrow, hit = pos[order], qrow[order], hit[order]
    keep = t_code[pos] != q_code[offset + qrow]
    pos, qrow, hit = pos[keep], qrow[keep], hit[keep]
    # rank within each query: rows are grouped by query row, in order
    first = np.searchsorted(qrow, np.arange(b))
    rank = np.arange(len(qrow)) - first[qrow] + 1
    ok = rank <= k
    pos, qrow, hit, rank = pos[ok], qrow[ok], hit[ok], rank[ok]
    return _frame(query.items.gather(offset + qrow), target.items.gather(pos), rank,
                  scores.ravel()[hit], query.levels[offset + qrow], target.row_levels[row[hit]])


def _popular_block(items: pl.Series, own: np.ndarray, top: pl.Series, prior: np.ndarray, top_code: np.ndarray,
                   k: int) -> pl.DataFrame:
    """The list ``top`` (``k + 1`` long, codes ``top_code``) for each of ``items`` (codes ``own``), without
    the item itself, at most ``k`` rows each."""
    n, m = len(items), len(top)
    keep = np.tile(top_code, n) != np.repeat(own, m)
    rank = (np.cumsum(keep.reshape(n, m), axis=1)).ravel()
    keep &= rank <= k
    qrow, col = np.repeat(np.arange(n), m)[keep], np.tile(np.arange(m), n)[keep]
    return _frame(items.gather(qrow), top.gather(col), rank[keep], prior[col],
                  np.full(len(qrow), _CODE[Level.POPULAR]), np.full(len(qrow), _CODE[Level.ITEM]))


def _positions(items: pl.Series, wanted: pl.Series) -> np.ndarray:
    """Positions in ``items`` of each of ``wanted`` (all present)."""
    index = items.to_frame(Col.ITEM).with_row_index(_ORDER)
    return wanted.to_frame(Col.ITEM).join(index, on=Col.ITEM, how="left", maintain_order="left")[_ORDER].to_numpy()


def _frame(items: pl.Series, candidates: pl.Series, rank: np.ndarray, score: np.ndarray, query_level: np.ndarray,
           candidate_level: np.ndarray) -> pl.DataFrame:
    names = pl.Series(list(Level.CHAIN))
    return pl.DataFrame({
        Col.ITEM: items,
        Col.CANDIDATE: candidates,
        Col.RANK: np.asarray(rank, dtype=np.int32),
        Col.SCORE: np.asarray(score, dtype=np.float32),
        Col.QUERY_LEVEL: names.gather(query_level.astype(np.int64)).cast(LEVEL_DTYPE),
        Col.CANDIDATE_LEVEL: names.gather(candidate_level.astype(np.int64)).cast(LEVEL_DTYPE),
    })


def _count(block: pl.DataFrame, counts: dict[str, dict[str, int]]) -> None:
    """Add a block's queries and rows per level to ``counts`` (a query's rows are all in one block)."""
    for key, col, agg in (("queries", Col.QUERY_LEVEL, pl.col(Col.ITEM).n_unique()),
                          ("rows_by_query_level", Col.QUERY_LEVEL, pl.len()),
                          ("rows_by_candidate_level", Col.CANDIDATE_LEVEL, pl.len())):
        for level, n in block.group_by(col).agg(agg.alias("_n")).iter_rows():
            counts[key][level] += int(n)


__all__ = ["LEVEL_DTYPE", "RollUp", "RolledQuery", "RolledTarget", "cold_bias", "popular", "rolled_blocks"]
