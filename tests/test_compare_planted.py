"""Table 1 ordering on a planted log: our regularized interaction model against the baselines.

Setting (documented, the same for every method): 100k planted events (seed 0), the default split,
our model and the embedding baseline with the default TrainConfig (dim 200, epochs from corpus
size), cosine scoring, k = 50. k is 50 rather than the paper's 200 because this catalogue is tiny:
~2,000 carted items, and 4 triggers x 200 candidates would already be 40% of them, which measures
list length, not ranking (see the k sweep in the README's compare section).

Margins. Across planted seeds the hit rates move by 0.01-0.05 (std of a method's hit rate); the
per-seed margin of ours over each baseline asserted below was >= 0.03 on every seed measured
(mean 0.06-0.26), so ``MARGIN = 0.03`` fails on a real regression and not on seed noise.

Known gaps (strict xfail, so they turn into failures the day the model closes them): on this log
co-visitation beats our model on both columns by about 0.1, and ALS ties it on Click-to-Cart. See
the README's compare section for why.
"""

from __future__ import annotations

import pytest

from recs.config import TrainConfig
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, CompareConfig, compare
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate

pytestmark = pytest.mark.slow
MARGIN = 0.03
K = 50
BEATEN = ("embedding", "co-purchase", "interaction-mf", "co-occurrence")


@pytest.fixture(scope="module")
def table1():
    frame, _ = generate(SynthConfig(events=100_000, seed=0))
    split = split_sessions(frame)
    cfg = CompareConfig(k=K, seed=0, workers=2, train=TrainConfig(),
                        methods=("ours", *BEATEN, "mf", "co-visitation"))
    rows = compare(split.train, split.test, cfg)["table1"]
    return {r["method"]: r for r in rows}


@pytest.mark.parametrize("column", [CLICK_TO_CART, CART_TO_CART])
@pytest.mark.parametrize("baseline", BEATEN)
def test_ours_beats_baseline(table1, baseline, column):
    if table1[baseline]["status"] == "skipped":
        pytest.skip(table1[baseline]["reason"])
    ours, other = table1["ours"][column], table1[baseline][column]
    assert ours > other + MARGIN, (baseline, column, ours, other)


def test_ours_beats_mf_on_cart_to_cart(table1):
    if table1["mf"]["status"] == "skipped":
        pytest.skip(table1["mf"]["reason"])
    assert table1["ours"][CART_TO_CART] > table1["mf"][CART_TO_CART] + MARGIN


@pytest.mark.xfail(reason="ALS ties our model on Click-to-Cart on the planted log (margin 0.006 +- 0.04 across "
                          "seeds); see README, recs compare", strict=False)
def test_ours_beats_mf_on_click_to_cart(table1):
    assert table1["ours"][CLICK_TO_CART] > table1["mf"][CLICK_TO_CART] + MARGIN


@pytest.mark.xfail(reason="co-visitation beats our model on the planted log by ~0.1 on both columns; "
                          "see README, recs compare", strict=True)
@pytest.mark.parametrize("column", [CLICK_TO_CART, CART_TO_CART])
def test_ours_beats_co_visitation(table1, column):
    assert table1["ours"][column] > table1["co-visitation"][column] + MARGIN


def test_every_method_is_timed(table1):
    assert all(r["time_s"] > 0 for r in table1.values() if r["status"] == "ok")
    # the count-based methods need no training: they are at least 10x faster than our model
    assert table1["co-visitation"]["time_s"] * 10 < table1["ours"]["time_s"]
