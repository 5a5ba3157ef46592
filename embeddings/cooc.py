"""Co-occurrence regularization pairs (paper sec. 4.1 and 5.1.2).

For every token p, count in how many sessions each token q occurs *after* p (directional), then keep
for each p the ``k`` most frequent q *per interaction type of q*. Each kept (p, q) becomes an extra
positive training pair, which pulls together tokens that skip-gram's symmetric window sees too
rarely, e.g. a click and the cart-add that follows it many events later.

Memory bound: only the next ``horizon`` events after p count as "after p". That caps the candidate
pairs at ``horizon`` per event, so a session of 500 events costs 500*horizon rows, not 500**2/2, and
memory grows linearly with the log. Sessions are processed in chunks of whole sessions, each chunk
reduced to (p, q, sessions) counts before the next, so the peak is one chunk plus the pair table.

Speed: a (session, p, q) triple is packed into one int64 (``(s * V + p) * V + q`` for a vocabulary
of V tokens, with s local to the chunk) whenever it fits, so "count each pair once per session" is a
hash ``unique`` over one integer column followed by a ``group_by`` on ``p * V + q``: two passes of
polars' fastest kernels instead of multi-column hashing. Chunks too large to pack fall back to the
two-column form; the counts are identical either way (``tests/test_cooc.py``).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import polars as pl

from recs.columns import Col
from recs.config import CoocConfig
from recs.progress import NullProgress, Progress

P, Q, SESSIONS = "p", "q", "sessions"
PQ = "_pq"
_INT64_MAX = 2**63 - 1


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={P: pl.Int32, Q: pl.Int32, SESSIONS: pl.UInt32})


def chunk_pairs(sess: np.ndarray, tok: np.ndarray, item: np.ndarray, horizon: int, same_item: bool,
                n_tokens: int) -> pl.DataFrame:
    """(_pq, sessions) counts of one chunk of whole sessions, with _pq = p * n_tokens + q.

    ``sess`` holds chunk-local session numbers 0.. in ascending order; ``tok`` the token ids (int64)
    in (session, pos) order and ``item`` a code of each event's item (equal codes: one item). Both
    engines count with this function (``recs.spark.cooc`` on each task's sessions). A loop over
    distances d = 1..horizon (not over events): the pairs at distance d are the positions i with
    sess[i] == sess[i + d]. No pair at distance d means no session is longer than d, so the loop stops.
    """
    v2 = n_tokens * n_tokens
    packed = (int(sess[-1]) + 1) * v2 <= _INT64_MAX if sess.size else True
    keys, sessions = [], []
    for d in range(1, min(horizon, sess.size - 1) + 1):
        idx = np.flatnonzero(sess[d:] == sess[:-d])
        if idx.size == 0:
            break
        p, q = tok[idx], tok[idx + d]
        if not same_item:
            keep = item[idx] != item[idx + d]
            idx, p, q = idx[keep], p[keep], q[keep]
        pq = p * n_tokens + q
        if packed:
            keys.append(sess[idx] * v2 + pq)
        else:
            keys.append(pq)
            sessions.append(sess[idx])
    if not keys:
        return pl.DataFrame(schema={PQ: pl.Int64, SESSIONS: pl.UInt32})
    if packed:
        once = pl.LazyFrame({"_k": np.concatenate(keys)}).unique().select((pl.col("_k") % v2).alias(PQ))
    else:
        once = pl.LazyFrame({"_s": np.concatenate(sessions), PQ: np.concatenate(keys)}).unique().select(PQ)
    return once.group_by(PQ).agg(pl.len().cast(pl.UInt32).alias(SESSIONS)).collect()


def count_successors(
    sequences: pl.DataFrame,
    vocab: pl.DataFrame,
    cfg: CoocConfig,
    chunk_events: int = 2_000_000,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """All directional (p, q, sessions) counts within the horizon, over all sessions (in no set order)."""
    progress = progress or NullProgress()
    n_tokens = max(1, vocab.height)
    item_of = vocab.select(pl.col(Col.ITEM).rank("dense").cast(pl.Int64)).to_series().to_numpy()  # by token_id
    seq = sequences.select(
        pl.col(Col.SESSION).rank("dense").cast(pl.Int64).alias("_s"), Col.POS, Col.TOKEN_ID
    ).sort(["_s", Col.POS])
    s = seq["_s"].to_numpy()
    tok = seq[Col.TOKEN_ID].cast(pl.Int64).to_numpy()
    del seq
    # Chunk boundaries on session starts, about chunk_events events each.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    cuts = [0]
    for target in range(chunk_events, len(s), chunk_events):
        i = int(np.searchsorted(starts, target))
        if i < len(starts) and starts[i] > cuts[-1]:
            cuts.append(int(starts[i]))
    cuts.append(len(s))
    parts = []
    with progress.stage("co-occurrence", total=len(s), unit="event") as bar:
        for a, b in pairwise(cuts):
            if b > a:
                parts.append(chunk_pairs(s[a:b] - s[a], tok[a:b], item_of[tok[a:b]], cfg.horizon, cfg.same_item,
                                         n_tokens))
            bar.update(b - a)
    if not parts:
        return _empty()
    # Lazy merge: the eager group_by over tens of millions of rows needs several times the memory
    # and time of the lazy engine's (measured at 10M events: the merge was a third of the stage).
    counts = (
        parts[0]
        if len(parts) == 1
        else pl.concat(parts).lazy().group_by(PQ).agg(pl.col(SESSIONS).sum()).collect()
    )
    return counts.select(
        (pl.col(PQ) // n_tokens).cast(pl.Int32).alias(P),
        (pl.col(PQ) % n_tokens).cast(pl.Int32).alias(Q),
        pl.col(SESSIONS).cast(pl.UInt32),
    )


def top_k(counts: pl.DataFrame, types: np.ndarray, k: int, n_tokens: int) -> pl.DataFrame:
    """Rows of ``counts`` that rank < k in their (p, type of q) group by (sessions desc, q asc).

    ``types`` holds the interaction code (0, 1, ...) of each row's q. Both engines keep pairs with
    this function (``recs.spark.cooc`` on each task's range of p). One int64 sort key
    ``((p * T + type) * (S + 1) + (S - sessions)) * V + q`` orders rows exactly as the four-column sort
    would; a group is a run of equal ``key // ((S + 1) * V)``. Falls back to the four-column sort when
    the key would not fit.
    """
    n_types = int(types.max()) + 1 if types.size else 1
    s_max = int(counts[SESSIONS].max() or 0)
    span = (s_max + 1) * n_tokens
    if n_tokens * n_types * span > _INT64_MAX:
        return (
            counts.with_columns(pl.Series("_qt", types))
            .sort([P, "_qt", SESSIONS, Q], descending=[False, False, True, False])
            .filter(pl.int_range(pl.len()).over(P, "_qt") < k)
            .select(P, Q, SESSIONS)
        )
    p = counts[P].cast(pl.Int64).to_numpy()
    q = counts[Q].cast(pl.Int64).to_numpy()
    key = ((p * n_types + types) * (s_max + 1) + (s_max - counts[SESSIONS].cast(pl.Int64).to_numpy())) * n_tokens
    key = pl.Series(key + q).sort().to_numpy()
    group = key // span
    new = np.r_[True, group[1:] != group[:-1]]
    first = np.maximum.accumulate(np.where(new, np.arange(key.size), 0))
    key = key[np.arange(key.size) - first < k]
    return pl.DataFrame({
        P: (key // span // n_types).astype(np.int32),
        Q: (key % n_tokens).astype(np.int32),
        SESSIONS: (s_max - (key // n_tokens) % (s_max + 1)).astype(np.uint32),
    })


def regularization_pairs(
    sequences: pl.DataFrame,
    vocab: pl.DataFrame,
    cfg: CoocConfig,
    chunk_events: int = 2_000_000,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """The kept (p, q, sessions) pairs: top ``cfg.k`` successors per p and interaction type of q.

    Ties in the count are broken by q's token id (the more frequent token first), so the result is
    deterministic.
    """
    if cfg.k == 0:
        return _empty()
    counts = count_successors(sequences, vocab, cfg, chunk_events, progress)
    if counts.height == 0:
        return _empty()
    # Interaction type of each token as a small int code (by token_id); only equality matters.
    q_type = vocab.select(pl.col(Col.INTERACTION).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    kept = top_k(counts, q_type[counts[Q].to_numpy()], cfg.k, max(1, vocab.height))
    return kept.select(pl.col(P).cast(pl.Int32), pl.col(Q).cast(pl.Int32), pl.col(SESSIONS).cast(pl.UInt32)).sort(
        [P, Q]
    )
