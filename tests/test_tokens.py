from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.embeddings.tokens import tokenize

from helpers import sessions_frame

INTERACTIONS = st.sampled_from(["click", "cart", "favorite", "purchase", "message_seller"])


def test_tokens_in_time_order_and_readable():
    df = sessions_frame({1: [(42, "click"), (42, "cart"), (7, "click")], 2: [(7, "click")]})
    tok = tokenize(df)
    seq = tok.sequences.join(tok.vocab, on="token_id").sort("session_id", "pos")
    assert seq.filter(pl.col("session_id") == 1)["token"].to_list() == ["42:click", "42:cart", "7:click"]
    # counts come from the sessions; the most frequent token gets id 0
    assert tok.vocab.row(0, named=True) == {"token_id": 0, "token": "7:click", "item_id": 7,
                                            "interaction": "click", "count": 2}


def test_min_count_drops_rare_tokens_from_vocab_and_sequences():
    df = sessions_frame({1: [(1, "click"), (2, "click"), (1, "cart")], 2: [(1, "click"), (2, "click")]})
    tok = tokenize(df, min_count=2)
    assert sorted(tok.vocab["token"].to_list()) == ["1:click", "2:click"]
    assert tok.sequences.height == 4
    assert tok.n_items == 2 and tok.n_events == 5


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.integers(0, 50),
        st.lists(st.tuples(st.one_of(st.integers(-5, 30), st.text("ab:c", min_size=1, max_size=3)), INTERACTIONS),
                 min_size=1, max_size=12),
        min_size=1, max_size=8,
    ),
    st.booleans(),
)
def test_tokenize_round_trips(sessions, as_string):
    # item ids of one type per table: all strings or all ints
    sessions = {s: [(str(i) if as_string else (i if isinstance(i, int) else len(i)), x) for i, x in ev]
                for s, ev in sessions.items()}
    df = sessions_frame(sessions)
    tok = tokenize(df)
    back = tok.sequences.join(tok.vocab, on="token_id").sort("session_id", "pos")
    for s, events in sessions.items():
        got = back.filter(pl.col("session_id") == s).select("item_id", "interaction").rows()
        assert got == [(i, x) for i, x in events]
    assert back["item_id"].dtype == df["item_id"].dtype
    # ids are dense and the vocabulary is a pure function of the sessions
    assert tok.vocab["token_id"].to_list() == list(range(tok.vocab.height))
    assert tokenize(df.sample(fraction=1.0, shuffle=True, seed=1).sort("session_id", "timestamp",
                                                                         maintain_order=True)).vocab.equals(tok.vocab)
