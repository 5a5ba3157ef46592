"""Table 1 ordering on a planted log: our regularized interaction model against every baseline.

Setting (documented, the same for every method): the README's planted log (200k events, seed 0),
the default split, our model and the embedding baselines with the default TrainConfig (dim 200,
epochs from corpus size) and the default scoring (``prob`` with backoff), k = 50. k is 50 rather
than the paper's 200 because this catalogue is tiny: ~4,000 carted items, and 4 triggers x 200
candidates would cover a large share of a category, which measures list length, not ranking.

Noise, measured with one worker (so a seed gives the same table on every run) over training seeds
0, 1, 2 on this log: our Click-to-Cart 0.347 / 0.347 / 0.334 (std 0.0075), Cart-to-Cart 0.208 /
0.202 / 0.199; the best baseline's Click-to-Cart (the item embeddings) 0.327 / 0.327 / 0.323, so the
lead was 0.020 / 0.020 / 0.011. Co-visitation and co-occurrence are deterministic. ``MARGIN = 0.01``
is above every std measured and below every lead; at seed 0, the one asserted, the closest margins
are 0.020 (Click-to-Cart, embedding + reg.) and 0.078 (Cart-to-Cart, co-visitation).
"""

from __future__ import annotations

import pytest

from recs.config import TrainConfig
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, CompareConfig, compare
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate

pytestmark = pytest.mark.slow
MARGIN = 0.01
K = 50
# every baseline of the issue; "ours-noreg" is our own ablation, reported in Table 1 but not a baseline
BASELINES = ("embedding", "embedding-reg", "mf", "co-purchase", "interaction-mf", "co-occurrence", "co-visitation")


@pytest.fixture(scope="module")
def result():
    frame, _ = generate(SynthConfig(events=200_000, seed=0))
    split = split_sessions(frame)
    # one worker: gensim is bit-for-bit reproducible only single-threaded, so this table is the same
    # on every run and the margins below are against seed noise, not thread races
    cfg = CompareConfig(k=K, seed=0, workers=1, train=TrainConfig(), methods=("ours", *BASELINES))
    return compare(split.train, split.test, cfg)


@pytest.fixture(scope="module")
def table1(result):
    return {r["method"]: r for r in result["table1"]}


@pytest.mark.parametrize("column", [CLICK_TO_CART, CART_TO_CART])
@pytest.mark.parametrize("baseline", BASELINES)
def test_ours_beats_baseline(table1, baseline, column):
    if table1[baseline]["status"] == "skipped":
        pytest.skip(table1[baseline]["reason"])
    ours, other = table1["ours"][column], table1[baseline][column]
    assert ours > other + MARGIN, (baseline, column, ours, other)


def test_table2_same_category_vectors_are_closer(result):
    # paper Table 2: random same-category pairs have a clearly higher cosine than different-category
    # pairs, for click and for cart vectors (measured: click 0.78 vs 0.43, cart 0.72 vs 0.46)
    for row in result["table2"]:
        assert row["same_category"] > row["different_category"] + 0.15, row


def test_every_method_is_timed(table1):
    # recorded, not compared: how fast each method is belongs in BENCHMARKS.md, not in a test
    assert all(r["time_s"] > 0 for r in table1.values() if r["status"] == "ok")
