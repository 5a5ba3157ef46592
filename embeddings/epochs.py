"""How many passes a corpus needs.

Skip-gram updates a token's vector about once per occurrence per epoch. On a large log every token
is seen often and a few passes suffice (the paper's scale); on a small or sparse log, where most
tokens occur a handful of times, five passes leave vectors near their random start. So the default
gives every corpus a similar budget of updates: enough epochs that the corpus is processed about
``TARGET_EVENTS`` times in total, within ``[MIN_EPOCHS, MAX_EPOCHS]``. The constants come from the
epochs sweep in BENCHMARKS.md (hit rate against epochs on planted logs of 100k and 10M events).
"""

from __future__ import annotations

import math

TARGET_EVENTS = 50_000_000
MIN_EPOCHS = 5
MAX_EPOCHS = 40


def auto_epochs(n_events: int) -> int:
    """Epochs for a corpus of ``n_events`` session events (see module docstring)."""
    if n_events <= 0:
        return MIN_EPOCHS
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_EVENTS / n_events))))
