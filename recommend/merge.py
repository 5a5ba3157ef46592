"""Merge the candidate lists of many triggers into one list per user: the numpy engine shared by a
single history and a batch of users.

The rule (``RecommendConfig.merge``):

* ``score``: every trigger's list is read; a candidate keeps its best score over the triggers that
  brought it (ties: the more recent trigger, then the better rank), and the list is ordered by that
  score (ties the same way). Scores of one index are comparable across its lists (the same
  model's log-probability, cosine or count), so this ranks by the index's own confidence.
* ``round-robin``: rank 1 of every trigger from the most recent to the oldest, then rank 2, and so
  on; a candidate already taken is skipped. Every trigger gets a share of the list whatever its scores.

Either way a candidate appears once per user, with the trigger (item, interaction, set) that put it
there, the list stops at ``k``, and ``drop`` removes candidates the user already bought. Which rule
is better is measured by ``recs eval-recommend --merge`` (README, "Offline A/B").
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from recs.recommend.store import CandidateSet


class Triggers(NamedTuple):
    """The triggers of a block of users, one row each."""

    user: np.ndarray  # int64 user index within the block
    recency: np.ndarray  # int64: 0 = the user's most recent trigger; distinct within a user
    code: np.ndarray  # int64 item code in the store (>= 0: triggers without a list are dropped before)
    set_index: np.ndarray  # int64 index into the tuple of sets passed to ``merge``


class Merged(NamedTuple):
    """Merged lists, rows grouped by user in rank order."""

    user: np.ndarray
    rank: np.ndarray  # 1-based
    cand: np.ndarray  # item code
    score: np.ndarray
    trigger: np.ndarray  # row of ``Triggers`` that brought the candidate


def gather(triggers: Triggers, sets: tuple[CandidateSet, ...], per_trigger: int | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (trigger row, list rank, candidate code, score) of the triggers' lists, without a loop
    over rows: one ``np.repeat`` of list starts per set."""
    rows, ranks, cands, scores = [], [], [], []
    for s_idx, cs in enumerate(sets):
        t_rows = np.flatnonzero(triggers.set_index == s_idx)
        if len(t_rows) == 0:
            continue
        codes = triggers.code[t_rows]
        starts = cs.offsets[codes]
        lens = cs.offsets[codes + 1] - starts
        if per_trigger is not None:
            lens = np.minimum(lens, per_trigger)
        total = int(lens.sum())
        if total == 0:
            continue
        first = np.cumsum(lens) - lens  # where each trigger's rows start in the output
        within = np.arange(total, dtype=np.int64) - np.repeat(first, lens)
        idx = np.repeat(starts, lens) + within
        rows.append(np.repeat(t_rows, lens))
        ranks.append(within + 1)
        cands.append(cs.cands[idx].astype(np.int64))
        scores.append(cs.scores[idx])
    if not rows:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e, np.zeros(0, dtype=np.float32)
    if len(rows) == 1:  # one set read (every module but both and cart-page): no copy
        return rows[0], ranks[0], cands[0], scores[0]
    return np.concatenate(rows), np.concatenate(ranks), np.concatenate(cands), np.concatenate(scores)


def merge(
    triggers: Triggers,
    sets: tuple[CandidateSet, ...],
    k: int,
    rule: str,
    drop: tuple[np.ndarray, np.ndarray] | None = None,
    per_trigger: int | None = None,
) -> Merged:
    """One list of at most ``k`` distinct candidates per user (see the module doc for the rule).

    ``drop``: (user, item code) pairs to leave out (the items a user already bought)."""
    t_row, rank, cand, score = gather(triggers, sets, per_trigger)
    user = triggers.user[t_row]
    recency = triggers.recency[t_row]
    n_codes = int(max(len(cs.offsets) for cs in sets)) if sets else 1
    if drop is not None and len(drop[0]) and len(user):
        keep = ~np.isin(user * n_codes + cand, drop[0] * n_codes + drop[1])
        t_row, rank, cand, score, user, recency = (a[keep] for a in (t_row, rank, cand, score, user, recency))
    if len(user) and user.min() == user.max():  # one user (a served history): no sort of every row
        fast = _merge_one(rule, k, rank, recency, cand, score, n_codes)
        if fast is not None:
            return Merged(user[fast], np.arange(1, len(fast) + 1), cand[fast], score[fast], t_row[fast])
    pair = user * n_codes + cand
    # priority order within a user: lexsort's last key is the primary one. A user's triggers have
    # distinct recencies and a trigger's rows distinct ranks, so (recency, rank) names one row and is
    # packed into one int64 key: each lexsort key is a pass of its own (5 keys cost ~2.5x 3 keys).
    if rule == "score":
        span = int(rank.max()) + 1 if len(rank) else 1
        order = np.lexsort((recency * span + rank, -score, user))
    else:  # round-robin: rank 1 of every trigger (newest first), then rank 2, ...
        span = int(recency.max()) + 1 if len(recency) else 1
        order = np.lexsort((rank * span + recency, user))
    pair = pair[order]
    # the first row of each (user, candidate) in priority order wins
    _, first = np.unique(pair, return_index=True)
    order = order[np.sort(first)]
    user = user[order]
    pos = np.arange(len(user))
    starts = np.flatnonzero(user[1:] != user[:-1]) + 1
    if len(starts):  # several users: position within each user's run
        starts = np.concatenate(([0], starts))
        pos -= np.repeat(starts, np.diff(np.append(starts, len(user))))
    keep = pos < k
    order = order[keep]
    return Merged(user[keep], pos[keep] + 1, cand[order], score[order], t_row[order])


def _merge_one(rule: str, k: int, rank: np.ndarray, recency: np.ndarray, cand: np.ndarray, score: np.ndarray,
               n_codes: int) -> np.ndarray | None:
    """``merge`` for the rows of one user, in O(rows) plus a sort of the k winners: the rows kept, best
    first; None when the rows do not fit the packed key (the sort path then answers).

    The general path sorts every row (``lexsort`` and ``unique``: 3 ms for the 18,000 rows of 92
    triggers, the p99 of a served ``recent`` list; BENCHMARKS.md, "Serving"). Here each row gets one
    int64 priority whose order is the rule's (lower first), each candidate keeps its best row
    (``np.minimum.at`` into one slot per item code), and only the <= k best winners are sorted. The
    priority of ``score`` is (-score, recency, rank): the float32 score as an order-preserving int32
    in the high half, ``recency * span + rank`` in the low half. Priorities are distinct (a user's
    (recency, rank) names one row), so the order is the sort path's exactly."""
    span = int(rank.max()) + 1
    tie = recency * span + rank
    if int(tie.max()) >= 2**31 or score.dtype != np.float32:
        return None
    if rule == "score":
        s = score + np.float32(0)  # -0.0 -> 0.0: the sort path holds them equal
        if np.isnan(s).any():  # the sort path puts NaN last; the packed key would not
            return None
        bits = s.view(np.int32).astype(np.int64)
        ordered = bits ^ ((bits >> 31) & 0x7FFFFFFF)  # IEEE order of the floats as integers
        key = ((-ordered) << 32) | tie
    else:
        span = int(recency.max()) + 1
        key = rank * span + recency
    best = np.empty(n_codes, dtype=np.int64)  # only the rows' slots are set (and their pages touched)
    best[cand] = np.iinfo(np.int64).max
    np.minimum.at(best, cand, key)
    win = np.flatnonzero(best[cand] == key)  # each candidate's best row
    if len(win) > k:
        win = win[np.argpartition(key[win], k - 1)[:k]]
    return win[np.argsort(key[win])]
