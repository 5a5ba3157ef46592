"""An index's candidate sets in a compact, read-only, in-memory form.

A candidate table (``item_id, candidate_item_id, rank, score``) becomes, per set, three numpy arrays
in CSR layout over one item code space: ``offsets[code] .. offsets[code + 1]`` are the rows of item
``code``'s list in rank order, ``cands`` their candidate codes (int32) and ``scores`` (float32).
Nothing holds a Python object per row or per item: ``ids`` is one sorted numpy array (int64, or
fixed-width unicode for text ids), so a lookup is a ``searchsorted`` and the codes of a list are
ids again by fancy indexing. At 1M planted events (two sets of 200 per item) this is ~8 bytes a row.

Codes are positions in the sorted union of every id any set names (as a trigger or as a candidate),
so a code is the same item in every set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.candidates.build import load_candidates, load_index_manifest
from recs.columns import Col
from recs.errors import ArtifactError

_CODE, _CAND_CODE = "_code", "_cand_code"
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class CandidateSet:
    """One candidate set in CSR form (see the module doc)."""

    name: str
    source: str
    target: str
    offsets: np.ndarray  # int64, len = number of item codes + 1
    cands: np.ndarray  # int32 codes
    scores: np.ndarray  # float32
    # scores never rise along a list (every index recs writes: rank 1 is the best score); the score
    # merge may then skip rows past rank k (recs.recommend.recommender._per_trigger)
    ranked_by_score: bool = True

    def has_list(self, codes: np.ndarray) -> np.ndarray:
        """Which of ``codes`` (-1 = unknown item) have a non-empty list in this set."""
        ok = codes >= 0
        out = np.zeros(len(codes), dtype=bool)
        out[ok] = self.offsets[codes[ok] + 1] > self.offsets[codes[ok]]
        return out


class CandidateStore:
    """Every candidate set of one index directory, over one item code space."""

    def __init__(self, index_dir: Path, manifest: dict[str, Any], ids: np.ndarray, sets: dict[str, CandidateSet]):
        self.index_dir = index_dir
        self.manifest = manifest
        self.ids = ids
        self.sets = sets
        self.text_ids = ids.dtype.kind == "U"
        self._text_table: pl.DataFrame | None = None  # ids as text -> code, for text lookups in batches

    @classmethod
    def open(cls, index_dir: str | Path, max_rank: int | None = None) -> CandidateStore:
        """Load every candidate set of ``index_dir`` (checked by ``load_index_manifest``).

        ``max_rank`` keeps only ranks 1..max_rank of each list (a service that never reads past 200 need
        not hold more)."""
        index_dir = Path(index_dir)
        manifest = load_index_manifest(index_dir)
        scans = {name: load_candidates(index_dir, name, lazy=True, manifest=manifest)
                 for name in manifest["candidate_sets"]}
        if max_rank is not None:
            scans = {n: s.filter(pl.col(Col.RANK) <= max_rank) for n, s in scans.items()}
        ids = _all_ids(scans)
        codes = pl.DataFrame({Col.ITEM: ids}).with_row_index(_CODE)
        ids_np = _numpy_ids(ids)
        sets = {}
        for name, scan in scans.items():
            spec = manifest["candidate_sets"][name]
            sets[name] = _csr(name, spec["source"], spec["target"], scan, codes, ids_np, index_dir)
        return cls(index_dir, manifest, ids_np, sets)

    def codes(self, items: Any) -> np.ndarray:
        """Codes of ``items`` (a sequence or array of ids); -1 for an id no set knows.

        An id of the other kind (text for an index of integer ids, or the reverse) is compared as text,
        as ``recs eval-hitrate`` and the batch path (``code_frame``) compare them, so ``"42"`` finds item
        42 and ``"-103339"`` finds item -103339 (``int_of_text``).

        Ids compare exactly, and the table is never widened: numpy compares fixed-width strings at the
        wider of the two widths, so a 1,024-character query once copied the whole id table at 4 KB an id
        (3.65 s and 1 GB for one request at 302k items), and it drops trailing NULs, so ``"sku-1\\0"``
        found ``"sku-1"``. A text query longer than the longest id, or ending in NUL, cannot be an id of
        the table: it is unknown without a comparison; the rest are cast to the table's own width."""
        n = len(items)
        if len(self.ids) == 0 or n == 0:
            return np.full(n, -1, dtype=np.int64)
        if self.text_ids:
            query, known = self._text_query(items)
        elif isinstance(items, np.ndarray) and items.dtype.kind in "iu":
            query, known = items.astype(np.int64), np.ones(n, dtype=bool)
        else:
            query, known = _int_or_missing(items)
        pos = np.searchsorted(self.ids, query)
        pos = np.minimum(pos, len(self.ids) - 1)
        found = known & (self.ids[pos] == query)
        return np.where(found, pos, -1).astype(np.int64)

    def _text_query(self, items: Any) -> tuple[np.ndarray, np.ndarray]:
        """``items`` as text at the id table's own width, and which of them can be ids of it at all."""
        width = self.ids.dtype.itemsize // 4
        values = items.tolist() if isinstance(items, np.ndarray) else items
        keys, known = [], np.zeros(len(values), dtype=bool)
        for i, value in enumerate(values):  # a request's few ids: the loop is cheap, a wide array is not
            text = value if isinstance(value, str) else str(value)
            if len(text) <= width and not text.endswith("\0"):
                keys.append(text)
                known[i] = True
            else:
                keys.append("")
        return np.array(keys, dtype=self.ids.dtype), known

    def typed_id(self, text: str) -> int | str | None:
        """``text`` (an id as a URL path gives it) as this index's ids are typed: itself for text ids,
        the integer for a canonical one (``"42"``, ``"-7"``) in an integer index, else None: no item of
        this index can have it. So an answer names an item in one JSON type, whether the index knows it
        or not."""
        if self.text_ids:
            return text
        return int_of_text(text)

    def code_frame(self, items: pl.Series) -> pl.Series:
        """Codes of a polars column of ids (the batch path); null for unknown ids. Integers against an
        integer index: ``codes`` (searchsorted); text on either side: a join against the id table,
        built once per store (rebuilding it per block cost 0.64 s a block at 4M ids)."""
        if not self.text_ids and items.dtype.is_integer():
            codes = self.codes(items.cast(pl.Int64).to_numpy())
            return pl.Series(_CODE, codes, dtype=pl.Int64).set(pl.Series(codes < 0), None)
        if self._text_table is None:
            self._text_table = pl.DataFrame({Col.ITEM: pl.Series(self.ids.astype(str), dtype=pl.String),
                                             _CODE: np.arange(len(self.ids), dtype=np.int64)})
        return (
            pl.DataFrame({Col.ITEM: items.cast(pl.String)}).with_row_index("_row")
            .join(self._text_table, on=Col.ITEM, how="left")
            .sort("_row")[_CODE]
        )

    def item_ids(self, codes: np.ndarray) -> np.ndarray:
        return self.ids[codes]


def _all_ids(scans: dict[str, pl.LazyFrame]) -> pl.Series:
    parts = [s.select(pl.col(Col.ITEM)) for s in scans.values()]
    parts += [s.select(pl.col(Col.CANDIDATE).alias(Col.ITEM)) for s in scans.values()]
    kinds = {p.collect_schema()[Col.ITEM] == pl.String for p in parts}
    if len(kinds) > 1:  # index_check refuses mixed kinds inside a table, not across tables
        parts = [p.select(pl.col(Col.ITEM).cast(pl.String)) for p in parts]
    return pl.concat(parts).unique().sort(Col.ITEM).collect()[Col.ITEM]


def _numpy_ids(ids: pl.Series) -> np.ndarray:
    if ids.dtype == pl.String:
        return np.asarray(ids.to_list(), dtype=str)  # fixed-width unicode: searchsorted runs in C
    return ids.cast(pl.Int64).to_numpy()


def _csr(name: str, source: str, target: str, scan: pl.LazyFrame, codes: pl.DataFrame, ids: np.ndarray,
         index_dir: Path) -> CandidateSet:
    """One set as CSR arrays, rows in (item code, rank) order.

    Integer ids are coded by ``searchsorted`` on the sorted ids (every id is there: ``ids`` is the
    union), text ids by a join; rows written in item order (as build-index writes them) are not sorted
    again. Measured at 2 x 20M rows: the two joins and a sort took ~11 s per set."""
    n = len(ids)
    if ids.dtype.kind == "U":
        cand = codes.rename({Col.ITEM: Col.CANDIDATE, _CODE: _CAND_CODE})
        rows = (
            scan.select(pl.col(Col.ITEM).cast(pl.String), pl.col(Col.CANDIDATE).cast(pl.String), Col.RANK,
                        Col.SCORE)
            .join(codes.lazy(), on=Col.ITEM).join(cand.lazy(), on=Col.CANDIDATE)
            .select(_CODE, _CAND_CODE, Col.RANK, Col.SCORE).collect()
        )
        code = rows[_CODE].to_numpy().astype(np.int64)
        cand_code = rows[_CAND_CODE].to_numpy().astype(np.int64)
    else:
        rows = scan.select(pl.col(Col.ITEM).cast(pl.Int64), pl.col(Col.CANDIDATE).cast(pl.Int64), Col.RANK,
                           Col.SCORE).collect()
        code = _int_codes(ids, rows[Col.ITEM].to_numpy())
        cand_code = _int_codes(ids, rows[Col.CANDIDATE].to_numpy())
    rank = rows[Col.RANK].to_numpy().astype(np.int64)
    scores = rows[Col.SCORE].cast(pl.Float32).to_numpy()
    key = code * (int(rank.max()) + 1 if len(rank) else 1) + rank
    if len(key) > 1 and not np.all(key[1:] > key[:-1]):
        order = np.argsort(key, kind="stable")
        code, cand_code, scores, key = code[order], cand_code[order], scores[order], key[order]
        if np.any(key[1:] == key[:-1]):
            raise ArtifactError(f"{index_dir}: candidate set {name!r} repeats a rank within one item's list")
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(code, minlength=n), out=offsets[1:])
    same_list = code[1:] == code[:-1]
    ranked = not bool(np.any((scores[1:] > scores[:-1]) & same_list))
    return CandidateSet(name, source, target, offsets, cand_code.astype(np.int32), scores, ranked)


def _int_codes(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Codes of integer ids that are all in ``ids`` (sorted). A dense lookup table when the id range is
    small (one gather per row: 12M rows in ~0.1 s), else ``searchsorted`` (random probes: ~4 s)."""
    if len(values) == 0:  # an index with no candidate rows (a valid, empty index)
        return np.zeros(0, dtype=np.int64)
    lo, hi = int(ids[0]), int(ids[-1])
    if hi - lo < max(16 * len(ids), 1 << 24):  # at most 64 MB of int32, or 16 entries per item
        lut = np.full(hi - lo + 1, -1, dtype=np.int32)
        lut[ids - lo] = np.arange(len(ids), dtype=np.int32)
        return lut[values - lo].astype(np.int64)
    return np.searchsorted(ids, values)


_INT_TEXT = re.compile(r"0|-?[1-9][0-9]{0,18}")  # [0-9]: ASCII digits only (not "３" or "²")


def int_of_text(text: str) -> int | None:
    """The int64 whose decimal text ``text`` is (``str(n) == text``), else None.

    The one rule for text that names an item of an integer index, in every path: the batch path
    (``code_frame``) and ``recs eval-hitrate`` compare such ids as text, an integer's text being
    ``str(n)``, so ``"-103339"`` is item -103339 (hashed ids are often negative) while ``"007"``,
    ``"+7"``, ``"-0"`` and ``"７"`` are no integer's text and name no item of an integer index."""
    if _INT_TEXT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


def _int_or_missing(items: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ids against an integer index: integers in int64 as they are, text by ``int_of_text``; the rest unknown."""
    out = np.zeros(len(items), dtype=np.int64)
    known = np.zeros(len(items), dtype=bool)
    for i, value in enumerate(items):  # a history's few items, not rows of a table
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            number: int | None = int(value) if -_INT64_MAX - 1 <= value <= _INT64_MAX else None
        else:
            number = int_of_text(str(value))
        if number is not None:
            out[i], known[i] = number, True
    return out, known
