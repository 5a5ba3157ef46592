"""Click options shared by more than one command, so their text and defaults are written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from recs.config import SCORES, IndexConfig

_I = IndexConfig()

SCORE_HELP = (
    "How target vectors are ranked: prob = the model's estimate of P(target | source), "
    "u.v + 0.75 log count(target); in-out = u.v alone (favours rare targets); "
    "cosine = cosine of input vectors (the paper's nearest vectors)."
)
BACKOFF_HELP = (
    "Items without a vector of the asked interaction (clicked, never carted) stand in with their most "
    "frequent token: as queries always, as targets with --score prob (ranked below real cart vectors "
    "by the log's cart/click ratio)."
)

SHRINK_HELP = (
    "With --score prob and --backoff: an item's cart row is w * its cart vector + (1 - w) * its stand-in, "
    "w = n / (n + shrink), n its cart events (pseudo-events; 0 = trust every cart vector fully)."
)


def score_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--score, --backoff/--no-backoff and --shrink, defaults from IndexConfig."""
    f = click.option("--shrink", type=float, default=_I.shrink, show_default=True, help=SHRINK_HELP)(f)
    f = click.option("--backoff/--no-backoff", default=_I.backoff, show_default=True, help=BACKOFF_HELP)(f)
    return click.option("--score", type=click.Choice(list(SCORES)), default=_I.score, show_default=True,
                        help=SCORE_HELP)(f)
