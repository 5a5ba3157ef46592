from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.config import CoocConfig
from recs.embeddings.cooc import count_successors, regularization_pairs
from recs.embeddings.tokens import tokenize
from recs.sessions.synth import SynthConfig, generate

from helpers import sessions_frame


def named(pairs: pl.DataFrame, vocab: pl.DataFrame) -> set[tuple[str, str, int]]:
    v = vocab.select("token_id", "token")
    out = pairs.join(v.rename({"token_id": "p", "token": "pt"}), on="p").join(
        v.rename({"token_id": "q", "token": "qt"}), on="q")
    return set(out.select("pt", "qt", "sessions").rows())


def test_counts_sessions_not_occurrences_and_direction():
    df = sessions_frame({
        1: [(1, "click"), (2, "click"), (2, "click"), (3, "cart")],
        2: [(1, "click"), (3, "cart")],
        3: [(3, "cart"), (1, "click")],
    })
    tok = tokenize(df)
    got = named(count_successors(tok.sequences, tok.vocab, CoocConfig(k=3)), tok.vocab)
    # 2:click occurs twice after 1:click in session 1, but counts one session
    assert ("1:click", "2:click", 1) in got
    assert ("1:click", "3:cart", 2) in got  # sessions 1 and 2
    assert ("3:cart", "1:click", 1) in got  # session 3 only: direction matters
    assert ("2:click", "2:click", 1) not in got  # same item left out by default
    assert ("2:click", "3:cart", 1) in got


def test_same_item_flag_and_horizon():
    df = sessions_frame({1: [(1, "click"), (1, "cart"), (2, "click"), (3, "click")]})
    tok = tokenize(df)
    with_same = named(count_successors(tok.sequences, tok.vocab, CoocConfig(same_item=True)), tok.vocab)
    assert ("1:click", "1:cart", 1) in with_same
    near = named(count_successors(tok.sequences, tok.vocab, CoocConfig(horizon=1)), tok.vocab)
    assert near == {("1:cart", "2:click", 1), ("2:click", "3:click", 1)}


def test_top_k_per_interaction_type_of_successor():
    # p = 0:click is followed by clicks 1..4 and carts 5..8 with decreasing session counts
    sessions = {}
    sid = 0
    for rank, item in enumerate([1, 2, 3, 4]):
        for _ in range(5 - rank):
            sessions[sid] = [(0, "click"), (item, "click"), (item + 4, "cart")]
            sid += 1
    tok = tokenize(sessions_frame(sessions))
    kept = named(regularization_pairs(tok.sequences, tok.vocab, CoocConfig(k=2)), tok.vocab)
    from_p = {(q, n) for p, q, n in kept if p == "0:click"}
    assert from_p == {("1:click", 5), ("2:click", 4), ("5:cart", 5), ("6:cart", 4)}
    assert regularization_pairs(tok.sequences, tok.vocab, CoocConfig(k=0)).height == 0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(50, 3_000))
def test_chunking_does_not_change_counts(seed, horizon, chunk):
    df, _ = generate(SynthConfig(events=3_000, seed=seed))
    tok = tokenize(df)
    cfg = CoocConfig(horizon=horizon)
    whole = count_successors(tok.sequences, tok.vocab, cfg, chunk_events=10**9).sort("p", "q")
    parts = count_successors(tok.sequences, tok.vocab, cfg, chunk_events=chunk).sort("p", "q")
    assert whole.equals(parts)


def test_pairs_per_event_bounded_by_horizon_on_long_sessions():
    long = {1: [(i, "click") for i in range(400)]}
    tok = tokenize(sessions_frame(long))
    counts = count_successors(tok.sequences, tok.vocab, CoocConfig(horizon=5))
    assert counts.height == sum(min(5, 399 - i) for i in range(400))
