"""``recs.recommend.merge``: the one-user path (a served history; packed int64 priorities, no sort of
every row) answers exactly what the sort path answers for a batch, on scores the planted and hand
indexes never have: negative, zero and minus zero, infinities, NaN, and many ties.

The sort path is reached by merging the same triggers for two users at once: user 1 is a copy of
user 0, so user 0's rows of that batch are the sort path's answer for the one-user call.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.recommend.merge import Triggers, merge
from recs.recommend.store import CandidateSet

N_ITEMS = 12
SCORES = st.sampled_from([0.5, 0.25, 0.0, -0.0, -0.25, -1.5, 1e30, np.inf, -np.inf, np.nan, 0.5, 0.25])


@st.composite
def candidate_sets(draw) -> tuple[CandidateSet, ...]:
    out = []
    for s in range(draw(st.integers(1, 2))):
        lists = [draw(st.lists(st.integers(0, N_ITEMS - 1), unique=True, max_size=7)) for _ in range(N_ITEMS)]
        offsets = np.zeros(N_ITEMS + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(x) for x in lists])
        cands = np.array([c for x in lists for c in x], dtype=np.int32)
        scores = np.array([draw(SCORES) for _ in range(len(cands))], dtype=np.float32)
        out.append(CandidateSet(f"s{s}", "click", "cart", offsets, cands, scores, ranked_by_score=False))
    return tuple(out)


def _user0(m) -> list[tuple[int, int, int, int]]:
    """User 0's rows; scores by their bits, so that -0.0 is not 0.0 and NaN equals NaN."""
    keep = m.user == 0
    return list(zip(m.rank[keep].tolist(), m.cand[keep].tolist(), m.trigger[keep].tolist(),
                    m.score[keep].view(np.int32).tolist(), strict=True))


@settings(max_examples=300, deadline=None)
@given(sets=candidate_sets(), data=st.data())
def test_the_one_user_path_equals_the_sort_path(sets, data):
    n = data.draw(st.integers(1, 6))
    codes = np.array(data.draw(st.lists(st.integers(0, N_ITEMS - 1), min_size=n, max_size=n)), dtype=np.int64)
    recency = np.array(data.draw(st.permutations(range(n))), dtype=np.int64)
    set_index = np.array(data.draw(st.lists(st.integers(0, len(sets) - 1), min_size=n, max_size=n)), dtype=np.int64)
    one = Triggers(np.zeros(n, dtype=np.int64), recency, codes, set_index)
    two = Triggers(np.repeat([0, 1], n), np.tile(recency, 2), np.tile(codes, 2), np.tile(set_index, 2))
    k = data.draw(st.integers(1, 20))
    bought = np.array(data.draw(st.lists(st.integers(0, N_ITEMS - 1), max_size=3)), dtype=np.int64)
    for rule in ("score", "round-robin"):
        for drop in (None, (np.zeros(len(bought), dtype=np.int64), bought)):
            drop2 = None if drop is None else (np.repeat([0, 1], len(bought)), np.tile(bought, 2))
            got, want = merge(one, sets, k, rule, drop), merge(two, sets, k, rule, drop2)
            # trigger rows of user 0 are the same rows (0..n-1) in both calls
            assert _user0(got) == _user0(want), (rule, drop is not None)
            assert got.rank.tolist() == list(range(1, len(got.rank) + 1))


def test_a_hand_worked_one_user_merge():
    """Two triggers' lists with a tie, a negative and a minus-zero score, by score and round-robin."""
    #  item 0's list: 5 (.5), 6 (-0.0), 7 (-1);  item 1's list: 6 (0.0), 5 (.5), 8 (.25)
    cs = CandidateSet("c2c", "click", "cart", np.array([0, 3, 6] + [6] * 7, dtype=np.int64),
                      np.array([5, 6, 7, 6, 5, 8], dtype=np.int32),
                      np.array([0.5, -0.0, -1.0, 0.0, 0.5, 0.25], dtype=np.float32), ranked_by_score=False)
    trig = Triggers(np.zeros(2, dtype=np.int64), np.array([1, 0]), np.array([0, 1]), np.zeros(2, dtype=np.int64))
    m = merge(trig, (cs,), 10, "score")
    # 5: .5 from both, trigger 1 (recency 0) wins; 8 .25; 6: 0.0 and -0.0 tie, the more recent trigger 1; 7
    assert m.cand.tolist() == [5, 8, 6, 7] and m.trigger.tolist() == [1, 1, 1, 0]
    m = merge(trig, (cs,), 3, "round-robin")
    # rank 1 of trigger 1 (6), of trigger 0 (5); rank 2 of 1 (5, taken), of 0 (6, taken); rank 3 of 1 (8)
    assert m.cand.tolist() == [6, 5, 8] and m.trigger.tolist() == [1, 0, 1] and m.rank.tolist() == [1, 2, 3]
