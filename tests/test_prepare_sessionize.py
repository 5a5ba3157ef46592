"""Gap sessionization and dedupe as properties over generated event streams (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recs.columns import Col
from recs.errors import ConfigError
from recs.sessions.sessionize import dedupe_mask, parse_duration, sessionize

T0 = datetime(2020, 1, 1, tzinfo=timezone.utc)

events = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 20_000), st.integers(0, 3), st.sampled_from(["click", "cart"])),
    min_size=1,
    max_size=80,
)


def frame(rows: list[tuple[int, int, int, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            Col.USER: [r[0] for r in rows],
            Col.TIMESTAMP: [T0 + timedelta(seconds=r[1]) for r in rows],
            Col.ITEM: [r[2] for r in rows],
            Col.INTERACTION: [r[3] for r in rows],
        },
        schema_overrides={Col.TIMESTAMP: pl.Datetime("us", "UTC")},
    )


@settings(max_examples=150, deadline=None)
@given(rows=events, gap_s=st.integers(1, 3_000))
def test_sessions_are_maximal_runs_within_the_gap(rows, gap_s):
    gap = timedelta(seconds=gap_s)
    out = sessionize(frame(rows).lazy(), gap=gap_s).collect()
    assert out.height == len(rows)
    for user, part in out.group_by(Col.USER, maintain_order=True):
        ids = part[Col.SESSION].to_list()
        times = part[Col.TIMESTAMP].to_list()
        assert times == sorted(times)
        n_sessions = len(set(ids))
        assert ids[0] == f"{user[0]}-1" and ids[-1] == f"{user[0]}-{n_sessions}"  # numbered in time order
        for (id_a, t_a), (id_b, t_b) in itertools.pairwise(zip(ids, times, strict=True)):
            if id_a == id_b:
                assert t_b - t_a <= gap  # inside a session: no gap longer than the limit
            else:
                assert t_b - t_a > gap  # a new session starts only after a longer gap
                assert int(id_b.rsplit("-", 1)[1]) == int(id_a.rsplit("-", 1)[1]) + 1


@settings(max_examples=150, deadline=None)
@given(rows=events)
def test_dedupe_collapses_exactly_the_immediate_repeats(rows):
    out = sessionize(frame(rows).lazy(), gap="10m").collect()
    kept = out.filter(~dedupe_mask())
    for _, part in kept.group_by(Col.SESSION):
        tokens = list(zip(part[Col.ITEM], part[Col.INTERACTION], strict=True))
        assert all(a != b for a, b in itertools.pairwise(tokens))
    # the same sequence of runs as the original, session by session
    for sid, part in out.group_by(Col.SESSION):
        tokens = list(zip(part[Col.ITEM], part[Col.INTERACTION], strict=True))
        after = kept.filter(pl.col(Col.SESSION) == sid[0])
        runs = [k for k, _ in itertools.groupby(tokens)]
        assert list(zip(after[Col.ITEM], after[Col.INTERACTION], strict=True)) == runs


def test_gap_boundary_is_inclusive():
    rows = [(1, 0, 1, "click"), (1, 1800, 2, "click"), (1, 3601, 3, "click")]
    out = sessionize(frame(rows).lazy(), gap="30m").collect()
    assert out[Col.SESSION].to_list() == ["1-1", "1-1", "1-2"]


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("90s", 90), ("2d", 172_800), ("45", 45)]
)
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "30x", "m30", "-5", "0", "1h 30q"])
def test_parse_duration_rejects(text):
    with pytest.raises(ConfigError):
        parse_duration(text)
