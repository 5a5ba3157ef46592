"""How many passes a corpus needs.

Skip-gram moves a token's vector a little at each occurrence, and the learning rate decays linearly
over the whole run. On a small log (100k events) five passes leave most vectors barely trained:
on the planted log, the hit rates rise with epochs up to about 40 and then flatten. On larger logs
the effect reverses: at 1M events 5 epochs beat 10 and 20, because there are already enough steps
and extra passes fit session-level noise.

So the default gives every corpus a similar budget of SGD steps: enough epochs to process about
``TARGET_EVENTS`` events in total, within ``[MIN_EPOCHS, MAX_EPOCHS]``. The floor stays at 5 (the
usual word2vec default) although the planted 1M log of the sweep scored slightly higher with 2-3
passes: that log had no structure below category and popularity, so it rewarded under-training,
and real logs do carry item-level signal. The sweep is in BENCHMARKS.md (``bench/epochs_sweep.py``);
it was measured with plain cosine candidates, before they were ranked by P(target | source), so its
hit rates are not those ``recs compare`` reports today; only their trend over epochs is used here.
"""

from __future__ import annotations

import math

TARGET_EVENTS = 4_500_000
MIN_EPOCHS = 5
MAX_EPOCHS = 40


def auto_epochs(n_events: int) -> int:
    """Epochs for a corpus of ``n_events`` session events (see module docstring)."""
    if n_events <= 0:
        return MIN_EPOCHS
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_EVENTS / n_events))))
