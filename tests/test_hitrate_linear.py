"""``target_triggers`` is linear in a session's length and equals the definition exactly.

The definition (docs/metric.md, "The purchase-intent hit rate, exactly"): the triggers of a target are the last
N distinct items that had a source-interaction event strictly earlier in the same session, ranked by
their latest such event (rank 1 = latest); file order breaks timestamp ties.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

import recs.eval.hitrate as hitrate
from recs.config import EvalConfig
from recs.eval.hitrate import target_triggers, trigger_work

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
INTERACTIONS = ("click", "cart", "purchase", "view")


def reference(test: pl.DataFrame, source: str, cfg: EvalConfig) -> tuple[list[tuple], list[tuple]]:
    """Pure Python, per session, per target: walk back over earlier source events until N distinct."""
    rows = test.with_row_index("_row").sort("session_id", "timestamp", "_row").to_dicts()
    targets, triggers = [], []
    by_session: dict[object, list[dict]] = {}
    for r in rows:
        by_session.setdefault(r["session_id"], []).append(r)
    for session in sorted(by_session, key=lambda s: (s is None, s)):
        events = by_session[session]
        for pos, ev in enumerate(events):
            if ev["interaction"] not in cfg.targets:
                continue
            t = len(targets)
            targets.append((t, session, pos, ev["item_id"]))
            seen: list[object] = []
            for earlier in reversed(events[:pos]):
                if len(seen) == cfg.triggers:
                    break
                if earlier["interaction"] == source and earlier["item_id"] not in seen:
                    seen.append(earlier["item_id"])
            triggers += [(t, item, rank) for rank, item in enumerate(seen, 1)]
    return targets, sorted(triggers)


def frames(test: pl.DataFrame, source: str, cfg: EvalConfig) -> tuple[list[tuple], list[tuple]]:
    targets, triggers = target_triggers(test, source, cfg)
    assert targets.columns == ["_target", "session_id", "_tpos", "_titem"]
    assert triggers.columns == ["_target", "_sitem", "trigger_rank"]
    assert triggers.schema["_target"] == pl.UInt32 and triggers.schema["trigger_rank"] == pl.UInt32
    assert triggers.schema["_sitem"] == test.schema["item_id"]
    return sorted(targets.rows()), sorted(triggers.rows())


event = st.tuples(
    st.sampled_from(["s1", "s2", "s3"]),  # session
    st.integers(0, 5),  # item: few, so repeats happen
    st.sampled_from(INTERACTIONS),
    st.integers(0, 6),  # minute: ties happen
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(event, max_size=60),
    source=st.sampled_from(["click", "cart"]),
    targets=st.sampled_from([("cart", "purchase"), ("cart",), ("purchase", "click"), ("click",)]),
    n=st.integers(1, 5),
    block=st.sampled_from([1, 3, 1 << 20]),  # scan blocks of 1 and 3 cells: the batching path too
)
def test_matches_reference(events, source, targets, n, block):
    test = pl.DataFrame(
        {"session_id": [e[0] for e in events], "item_id": [e[1] for e in events],
         "interaction": [e[2] for e in events], "timestamp": [T0 + timedelta(minutes=e[3]) for e in events]},
        schema={"session_id": pl.String, "item_id": pl.Int64, "interaction": pl.String,
                "timestamp": pl.Datetime("us", "UTC")},
    )
    cfg = EvalConfig(targets=targets, triggers=n)
    with scan_block(block):
        assert frames(test, source, cfg) == reference(test, source, cfg)


@contextmanager
def scan_block(cells: int):
    saved = hitrate._SCAN_BLOCK
    hitrate._SCAN_BLOCK = cells
    try:
        yield
    finally:
        hitrate._SCAN_BLOCK = saved


def test_a_trigger_kept_over_a_long_run_of_one_item():
    # click 1, then 600 x (click 2, cart 3): with N=2, item 1 stays a trigger of every cart, and its
    # scan runs the whole session (about log2(600) doubling rounds; many more with 5-cell blocks)
    test = pl.DataFrame({"session_id": ["a"] * 1201, "item_id": [1] + [2, 3] * 600,
                         "interaction": ["click"] + ["click", "cart"] * 600,
                         "timestamp": [T0 + timedelta(seconds=i) for i in range(1201)]})
    cfg = EvalConfig(triggers=2)
    expected = reference(test, "click", cfg)
    assert all(len([t for t in expected[1] if t[0] == i]) == 2 for i in range(600))
    for block in (5, 1 << 20):
        with scan_block(block):
            assert frames(test, "click", cfg) == expected
            assert trigger_work(test, "click", cfg)["scan_iterations"] <= (11 if block > 5 else 150)


def test_string_items_and_empty_inputs():
    test = pl.DataFrame({"session_id": ["a"] * 5, "item_id": ["x", "y", "x", "z", "q"],
                         "interaction": ["click", "click", "click", "click", "cart"],
                         "timestamp": [T0] * 5})
    cfg = EvalConfig(triggers=2)
    assert frames(test, "click", cfg) == reference(test, "click", cfg)
    assert frames(test, "cart", cfg) == reference(test, "cart", cfg)  # no earlier cart: no trigger rows
    assert frames(test.head(0), "click", cfg) == ([], [])


def long_session(events: int) -> pl.DataFrame:
    """One session of alternating click/cart events over 50 items (the square case of the issue)."""
    return pl.DataFrame({
        "session_id": ["long"] * events,
        "item_id": [(i * 7) % 50 for i in range(events)],
        "interaction": ["click" if i % 2 == 0 else "cart" for i in range(events)],
        "timestamp": [T0 + timedelta(seconds=i) for i in range(events)],
    })


def test_intermediates_linear_in_a_long_session():
    cfg = EvalConfig(triggers=4)
    for source in ("click", "cart"):
        w = trigger_work(long_session(5_000), source, cfg)
        n, s = cfg.triggers, w["sources"]
        assert w["trigger_rows"] <= n * w["targets"]
        assert w["scanned_cells"] <= 2 * n * s + s  # the old join built targets x sources / 2 = 3.1M rows
        assert w["largest_block"] <= 2 * n * s + s
        assert w["scan_iterations"] <= 20


CHILD = textwrap.dedent("""
    import importlib, json, resource, sys
    sys.path.insert(0, {tests!r})
    from test_hitrate_linear import long_session
    from recs.config import EvalConfig
    module, name = sys.argv[1].split(":")
    fn = getattr(importlib.import_module(module), name)
    test = long_session(int(sys.argv[2]))
    fn(test.head(100), "click", EvalConfig())  # warm up polars (thread pool, allocator)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    targets, triggers = fn(test, "click", EvalConfig())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({{"growth_mib": (after - before) / 1024, "rows": triggers.height}}))
""")


def peak_growth(fn: str, events: int) -> dict:
    """Peak-RSS growth (MiB, ru_maxrss) of one target_triggers call in a fresh process."""
    from pathlib import Path

    code = CHILD.format(tests=str(Path(__file__).resolve().parent))
    out = subprocess.run([sys.executable, "-c", code, fn, str(events)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_peak_memory_of_a_long_session_stays_small():
    # the old join: ~400 MiB more at 5k events in one session (and ~2.5 GB at 20k); linear: a few MiB
    r = peak_growth("recs.eval.hitrate:target_triggers", 5_000)
    assert r["rows"] > 0
    assert r["growth_mib"] < 100, r
