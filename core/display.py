"""How result keys read to people: display names and one number format per column.

The one mapping from machine keys (``click_to_cart``, ``time_s``) to the names the README uses
(``Click-to-Cart``, ``time (s)``), shared by the terminal tables (``recs.cli.render``) and the HTML
report (``recs.eval.html_report``), and one format per column, so that a column of hit rates has
four decimals in every row and a column of seconds one, whatever the size of each value.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

HEADERS: dict[str, str] = {
    # candidate sets and the hit-rate columns named after them
    "item_to_item": "Item-to-Item",
    "click_to_cart": "Click-to-Cart",
    "cart_to_cart": "Cart-to-Cart",
    "candidate_set": "candidate set",
    "set": "candidate set",
    # hit rate and coverage
    "targets": "targets",
    "targets_with_trigger": "with trigger",
    "targets_without_trigger": "no trigger",
    "hits": "hits",
    "hit_rate": "hit rate",
    "active_items": "active items",
    "covered_items": "with candidates",
    "coverage": "coverage",
    "mean_list_length": "mean list length",
    "catalogue_reach": "catalogue reach",
    # compare
    "label": "method",
    "group": "family",
    "time_s": "time (s)",
    "fit_s": "fit (s)",
    "candidates_s": "candidates (s)",
    "trigger": "trigger \\ candidates",
    "same_category": "same category",
    "different_category": "different category",
    # split
    "first": "first event",
    "last": "last event",
    # check
    "recorded_bytes": "recorded bytes",
}

_SET = re.compile(r"([A-Za-z0-9-]+(?:_[A-Za-z0-9-]+)*?)_to_([A-Za-z0-9_-]+)")


def set_name(name: str) -> str:
    """``click_to_cart`` -> ``Click-to-Cart``; any ``a_to_b`` -> ``A-to-B``; other names unchanged."""
    m = _SET.fullmatch(name)
    if not m:
        return name
    return "-to-".join(part[:1].upper() + part[1:] for part in m.groups())


def header(key: str) -> str:
    """The display name of a result key: from ``HEADERS``, a candidate set's name, or the key with spaces."""
    if key in HEADERS:
        return HEADERS[key]
    shown = set_name(key)
    return shown if shown != key else key.replace("_", " ")


Format = str | Callable[[Any], str]

SECONDS = ".1f"
RATE = ".4f"
# Keys whose floats are not rates or shares (those, and any float column not named here, get RATE).
FORMATS: dict[str, Format] = {
    "time_s": SECONDS,
    "fit_s": SECONDS,
    "candidates_s": SECONDS,
    "train_s": SECONDS,
    "total_s": SECONDS,
    "seconds": SECONDS,
    "mean_list_length": ".1f",
    "events_per_session": ".2f",
    # names of candidate sets are shown as the README writes them
    "candidate_set": set_name,
    "set": set_name,
}


def format_value(value: Any, spec: Format | None = None) -> str:
    """``value`` as text: None and NaN as ``-``, ints with thousands separators, floats with ``spec``
    (default four decimals), strings as they are; a callable ``spec`` gets every non-missing value."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if callable(spec):
        return spec(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:{spec or ','}}"
    if isinstance(value, float):
        return f"{value:{spec or RATE}}"
    return str(value)
