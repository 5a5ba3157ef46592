"""The one interface every candidate generator implements, ours and each baseline.

A generator is fitted on training sessions and then answers, for a (source, target) pair of
interactions, a candidate table ``item_id, candidate_item_id, rank, score``: for every item it can
answer for, at most ``k`` other items, best first (rank 1). Methods that ignore interactions answer
the same table for every pair. ``tests/contract.py`` holds the shared tests every method passes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from recs.columns import Col
from recs.errors import ConfigError, NotFittedError
from recs.overlap import HashingFile
from recs.sessions.io import validate_sessions

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self is Python 3.11+; recs runs on 3.10

# Instance state the template keeps for every subclass. Subclasses are dataclasses that never call a
# base __init__, so the state lives in the instance dict under names no subclass field uses.
_INTERACTIONS = "_generator_interactions"  # interactions of the training sessions, set by fit()
_CACHE = "_generator_cache"  # k -> blocks of an item-level method's one list


class CandidateGenerator(ABC):
    """Fit on sessions, then produce candidate tables.

    A template: ``fit`` and ``candidate_blocks`` do once, for every method, what each used to repeat
    (validating the training frame, refusing use before fit and unknown interactions, keeping an
    item-level list per k); a subclass implements only ``_fit`` and ``_candidate_blocks``.
    """

    name: str = "generator"
    interaction_aware: bool = True

    def fit(self, train: pl.DataFrame) -> Self:
        """Learn from canonical training sessions; return self.

        The frame is checked the way a sessions file is (``validate_sessions``: required columns and
        types, no nulls, at least one row), so a Python caller gets the one-line error the CLI gives
        instead of a polars error deep inside a method. On a canonical frame it changes nothing.
        """
        # a refit that fails (bad frame or failed training) leaves the generator unfitted, not answering
        # with the lists of the old fit
        self.__dict__[_INTERACTIONS] = None
        self.__dict__[_CACHE] = {}
        self._reset()
        train = validate_sessions(train, where=f"{self.name}: the training sessions")
        self._fit(train)
        self.__dict__[_INTERACTIONS] = tuple(sorted(train[Col.INTERACTION].unique().to_list()))
        return self

    def _reset(self) -> None:  # noqa: B027  (a hook: most generators keep nothing beyond what fit resets)
        """Forget what a previous fit learned that ``_known_interactions`` reads (see EmbeddingCandidates)."""

    @abstractmethod
    def _fit(self, train: pl.DataFrame) -> None:
        """Learn from validated canonical sessions (``fit`` has checked them)."""

    def _known_interactions(self) -> tuple[str, ...] | None:
        """The interactions the generator can answer for, or None before fit. A generator that can be
        made ready without ``fit`` (ours, given a trained model) overrides this."""
        return self.__dict__.get(_INTERACTIONS)

    def interactions(self) -> tuple[str, ...]:
        """The interactions of the training sessions (for an interaction-aware method, the names
        ``candidate_blocks`` accepts); a NotFittedError before fit."""
        known = self._known_interactions()
        if known is None:
            raise NotFittedError(f"{self.name}: not fitted; call fit(train) before asking for candidates")
        return known

    def candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        """The candidate table for ``source`` -> ``target``, at most ``k`` rows per item, in blocks.

        Blocks let a writer (``recs.candidates.build``) hold one at a time: ours at 10M events has
        240M Cart-to-Cart rows. The checks run on the call, not at the first block, so a bad request
        fails before an index directory is started. An interaction-aware method refuses an interaction
        its training sessions lack, naming those it knows. An item-level method's one list serves every
        pair, whatever its names: it is computed once per k (while the first caller streams it) and
        then answered from memory.
        """
        known = self.interactions()
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"{self.name}: k must be an integer of at least 1 (got {k!r})")
        if self.interaction_aware:
            for interaction in (source, target):
                if interaction not in known:
                    raise ConfigError(f"{self.name}: no {interaction!r} events in its training sessions, so no "
                                      f"{source}->{target} candidates; it knows {', '.join(known)}")
            return self._candidate_blocks(source, target, k)
        cache: dict[int, list[pl.DataFrame]] = self.__dict__.setdefault(_CACHE, {})
        if k in cache:
            return iter(cache[k])
        return _kept(self._candidate_blocks(source, target, k), cache, k)

    def forget_lists(self) -> None:
        """Drop the item-level list kept in memory for the next pair: a caller that has written it to disk
        once (the blend's spills) does not need a second, in-memory copy of every (item, candidate) row."""
        self.__dict__[_CACHE] = {}

    @abstractmethod
    def _candidate_blocks(self, source: str, target: str, k: int) -> Iterator[pl.DataFrame]:
        """Yield the table in one or more blocks (at least one, empty if need be, so its schema is
        known); the arguments are checked. A method that computes a whole table yields it as one block."""

    def candidates(self, source: str, target: str, k: int) -> pl.DataFrame:
        """Candidate table for ``source`` -> ``target`` with at most ``k`` rows per item: the blocks, joined."""
        blocks = list(self.candidate_blocks(source, target, k))
        return blocks[0] if len(blocks) == 1 else pl.concat(blocks, rechunk=False)

    def candidates_of(self, source: str, target: str, k: int, items: pl.Series) -> pl.DataFrame:
        """The rows of ``candidates`` whose query item is in ``items``, and only those: the blend asks
        for its validation triggers' lists, a few hundred items of a catalogue of many thousands. This
        default filters the whole table as it streams; a method that searches per query (the vector
        methods) overrides it to search just those queries."""
        wanted = items.unique().implode()
        blocks = [b.filter(pl.col(Col.ITEM).is_in(wanted)) for b in self.candidate_blocks(source, target, k)]
        return blocks[0] if len(blocks) == 1 else pl.concat(blocks)

    def set_details(self, source: str, target: str) -> dict[str, Any]:
        """Extra facts about the ``source`` -> ``target`` set just produced, for the index manifest
        (ours: how many queries stood in with another token); none by default."""
        return {}

    def save_files(self, directory: Path) -> dict[str, Any]:
        """Write what else the generator needs to be understood or re-run beside its tables (the blend's
        ranker models) into ``directory``, an index being written; return the manifest's
        ``method.files`` field (relative path -> what it is). Nothing by default."""
        return {}

    def settings(self) -> dict[str, Any]:
        """What decides this generator's answers, JSON-ready: its config dataclasses and plain options.

        An index manifest records it, so a candidate table says how it was made. Read from the
        dataclass fields, so a new option is recorded without anyone remembering to add it here;
        state (models, caches, fitted arrays) and progress reporters are not options and are left out.
        """
        out: dict[str, Any] = {}
        for f in fields(self) if is_dataclass(self) else ():
            value = getattr(self, f.name)
            if f.name.startswith("_") or f.name == "name":
                continue
            if is_dataclass(value) and not isinstance(value, type) and value.__dataclass_params__.frozen:
                out[f.name] = asdict(value)
            elif isinstance(value, str | int | float | bool):
                out[f.name] = value
        return out


def _kept(blocks: Iterator[pl.DataFrame], cache: dict[int, list[pl.DataFrame]], k: int) -> Iterator[pl.DataFrame]:
    """Yield ``blocks`` as they come and keep them in ``cache[k]`` once all were read (a caller that
    stops early keeps nothing, and the next one computes them again)."""
    kept = []
    for block in blocks:
        kept.append(block)
        yield block
    cache[k] = kept


def item_codes(query_items: pl.Series, target_items: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dense codes shared by both sides, so "is this the query item itself" is an integer compare
    (item ids may be ints or strings)."""
    both = pl.concat([query_items.rename("x"), target_items.rename("x")]).rank("dense").to_numpy()
    return both[: len(query_items)], both[len(query_items) :]


def candidate_frame(
    query_items: pl.Series, target_items: pl.Series, ids: np.ndarray, scores: np.ndarray, k: int
) -> pl.DataFrame:
    """Turn k-NN results into the candidate table, dropping the query item itself and empty slots.

    ``ids[i]`` index into ``target_items``; row i belongs to ``query_items[i]``. The search should ask
    for ``k + 1`` neighbours so that removing the item itself still leaves ``k``.

    Rows are done in blocks of ``_BLOCK`` queries: the masks, cumulative counts and index arrays are
    as large as ``ids`` (int64, n x (k+1)), and at 700k queries x 201 one of them is 1.1 GB, so
    doing all rows at once would hold several GB of temporaries next to the output.
    """
    q_code, t_code = item_codes(query_items, target_items)
    parts = [candidate_block(query_items, target_items, ids[a : a + _BLOCK], scores[a : a + _BLOCK],
                             q_code, t_code, k, a)
             for a in range(0, max(len(ids), 1), _BLOCK)]
    return parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)


_BLOCK = 32_768


def candidate_block(
    query_items: pl.Series, target_items: pl.Series, ids: np.ndarray, scores: np.ndarray, q_code: np.ndarray,
    t_code: np.ndarray, k: int, offset: int,
) -> pl.DataFrame:
    """The candidate rows of the queries ``offset .. offset + len(ids)`` (see ``candidate_frame``);
    ``ids`` and ``scores`` are those queries' rows only, codes are from ``item_codes``."""
    valid = ids >= 0
    safe = np.where(valid, ids, 0)
    valid &= t_code[safe] != q_code[offset : offset + len(ids), None]
    seen = np.cumsum(valid, axis=1)
    valid &= seen <= k
    rows, cols = np.nonzero(valid)
    return pl.DataFrame(
        {
            Col.ITEM: query_items.gather(rows + offset),
            Col.CANDIDATE: target_items.gather(safe[rows, cols]),
            Col.RANK: seen[rows, cols].astype(np.int32),
            Col.SCORE: scores[rows, cols].astype(np.float32),
        }
    )


def describe(frame: pl.DataFrame | pl.LazyFrame) -> dict[str, Any]:
    """Small summary of a candidate table (a frame, or a lazy scan of a written one).

    Lazy on purpose: the eager group_by over a 130M-row table took +3.6 GiB at 10M events, the lazy
    one +38 MiB (BENCHMARKS.md, Memory).
    """
    lengths = frame.lazy().group_by(Col.ITEM).len().collect()["len"]
    return {"items": lengths.len(), "rows": int(lengths.sum()), "mean_list_length": float(lengths.mean() or 0.0)}


def write_blocks(blocks: Iterable[pl.DataFrame], path: Path) -> dict[str, Any] | None:
    """Write frames of one schema to one parquet file as they come (one row group each), so memory
    holds one block, not the table: Cart-to-Cart at 10M events with backoff is 240M rows.

    Each block is encoded and compressed in a worker thread (pyarrow releases the GIL) while the
    caller makes the next one, and the file is hashed as it is written (``recs.overlap``): the bytes
    are those of writing the blocks one after the other, and the returned ``{"bytes", "blake2b"}``
    record lets ``record_files`` skip reading the file back. No blocks: no file, and None."""
    writer: pq.ParquetWriter | None = None
    sink: HashingFile | None = None
    pending: Future[None] | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recs-write")
    try:
        for block in blocks:
            table = block.to_arrow()
            if writer is None:
                sink = HashingFile(path)
                writer = pq.ParquetWriter(sink, table.schema, compression="zstd")
            if pending is not None:
                pending.result()  # one block in the writer at a time: row groups in order, memory bounded
            pending = pool.submit(writer.write_table, table)
        if pending is not None:
            pending.result()
            pending = None
    finally:
        if pending is not None:  # the caller's exception propagates; the write in flight ends first
            pending.cancel()
            wait([pending])
        pool.shutdown(wait=True)
        if writer is not None:
            writer.close()
        if sink is not None:
            sink.close()
    return None if sink is None else sink.record()
