"""Click options shared by more than one command, so their text and defaults are written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from recs.config import SCORES, IndexConfig
from recs.sessions.times import TIME_UNITS

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


TIME_UNIT_HELP = (
    "Unit of integer timestamps (unix time in s, ms, us or ns). A value outside 1990-01-01..2100-01-01 "
    "in this unit is refused with its row and the unit that would fit."
)
AUTO_HELP = " auto: the format's own unit, else the one unit that puts each value in that range."


def time_unit_option(f: Callable[..., Any] | None = None, *, auto: bool = False) -> Any:
    """--time-unit, for every command that reads integer times; ``auto=True`` adds ``auto`` (recs prepare).

    Usable bare (``@time_unit_option``) or called (``@time_unit_option(auto=True)``).
    """
    def decorate(g: Callable[..., Any]) -> Callable[..., Any]:
        choices = ["auto", *TIME_UNITS] if auto else list(TIME_UNITS)
        return click.option("--time-unit", type=click.Choice(choices), default="auto" if auto else "s",
                            show_default=True, help=TIME_UNIT_HELP + (AUTO_HELP if auto else ""))(g)

    return decorate if f is None else decorate(f)


def score_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--score, --backoff/--no-backoff and --shrink, defaults from IndexConfig."""
    f = click.option("--shrink", type=float, default=_I.shrink, show_default=True, help=SHRINK_HELP)(f)
    f = click.option("--backoff/--no-backoff", default=_I.backoff, show_default=True, help=BACKOFF_HELP)(f)
    return click.option("--score", type=click.Choice(list(SCORES)), default=_I.score, show_default=True,
                        help=SCORE_HELP)(f)
