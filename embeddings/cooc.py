"""Co-occurrence regularization pairs (paper sec. 4.1 and 5.1.2).

For every token p, count in how many sessions each token q occurs *after* p (directional), then keep
for each p the ``k`` most frequent q *per interaction type of q*. Each kept (p, q) becomes an extra
positive training pair, which pulls together tokens that skip-gram's symmetric window sees too
rarely, e.g. a click and the cart-add that follows it many events later.

Memory bound: only the next ``horizon`` events after p count as "after p". That caps the candidate
pairs at ``horizon`` per event, so a session of 500 events costs 500*horizon rows, not 500**2/2, and
memory grows linearly with the log. Sessions are processed in chunks of whole sessions, each chunk
reduced to (p, q, sessions) counts before the next, so the peak is one chunk plus the pair table.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import polars as pl

from recs.columns import Col
from recs.config import CoocConfig
from recs.progress import NullProgress, Progress

P, Q, SESSIONS = "p", "q", "sessions"


def _chunk_pairs(chunk: pl.DataFrame, item_of: pl.Series, horizon: int, same_item: bool) -> pl.DataFrame:
    """(p, q, sessions) counts of one chunk of whole sessions, sorted by (session, pos)."""
    sess = chunk["_s"]
    tok = chunk[Col.TOKEN_ID]
    max_len = int(chunk.group_by("_s").len()["len"].max())
    frames = []
    for d in range(1, min(horizon, max_len - 1) + 1):  # a loop over distances, not events
        frame = pl.DataFrame({"_s": sess, P: tok, Q: tok.shift(-d), "_s2": sess.shift(-d)}).filter(
            pl.col("_s") == pl.col("_s2")
        )
        frames.append(frame.select("_s", P, Q))
    if not frames:
        return pl.DataFrame(schema={P: pl.Int32, Q: pl.Int32, SESSIONS: pl.UInt32})
    pairs = pl.concat(frames)
    if not same_item:
        pairs = pairs.filter(item_of.gather(pairs[P]) != item_of.gather(pairs[Q]))
    return pairs.unique().group_by(P, Q).agg(pl.len().alias(SESSIONS))


def count_successors(
    sequences: pl.DataFrame,
    vocab: pl.DataFrame,
    cfg: CoocConfig,
    chunk_events: int = 2_000_000,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """All directional (p, q, sessions) counts within the horizon, over all sessions."""
    progress = progress or NullProgress()
    item_code = vocab.select(pl.col(Col.ITEM).rank("dense").cast(pl.Int64)).to_series()  # by token_id
    seq = sequences.with_columns(pl.col(Col.SESSION).rank("dense").cast(pl.Int64).alias("_s")).sort(["_s", Col.POS])
    # Chunk boundaries on session starts, about chunk_events events each.
    s = seq["_s"].to_numpy()
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    cuts = [0]
    for target in range(chunk_events, len(s), chunk_events):
        i = int(np.searchsorted(starts, target))
        if i < len(starts) and starts[i] > cuts[-1]:
            cuts.append(int(starts[i]))
    cuts.append(len(s))
    parts = []
    with progress.stage("co-occurrence", total=len(s), unit="ev") as bar:
        for a, b in pairwise(cuts):
            parts.append(_chunk_pairs(seq.slice(a, b - a), item_code, cfg.horizon, cfg.same_item))
            bar.update(b - a)
    if len(parts) == 1:
        return parts[0]
    return pl.concat(parts).group_by(P, Q).agg(pl.col(SESSIONS).sum())


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
        return pl.DataFrame(schema={P: pl.Int32, Q: pl.Int32, SESSIONS: pl.UInt32})
    counts = count_successors(sequences, vocab, cfg, chunk_events, progress)
    q_inter = vocab.select(pl.col(Col.TOKEN_ID).alias(Q), pl.col(Col.INTERACTION).alias("_qi"))
    return (
        counts.join(q_inter, on=Q, how="left")
        .sort([P, "_qi", SESSIONS, Q], descending=[False, False, True, False])
        .filter(pl.int_range(pl.len()).over(P, "_qi") < cfg.k)
        .select(pl.col(P).cast(pl.Int32), pl.col(Q).cast(pl.Int32), pl.col(SESSIONS).cast(pl.UInt32))
        .sort([P, Q])
    )
