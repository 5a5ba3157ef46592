"""Range and value checks shared by the config dataclasses (``recs.config``), and their bounds.

Kept apart from the dataclasses so that the one config module stays a readable list of defaults;
every check raises the ConfigError that names the option, for the CLI and Python callers alike.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from recs.columns import Interaction
from recs.errors import ConfigError


def default_workers() -> int:
    """All cores: gensim and faiss both scale with threads, and users expect a busy machine."""
    return max(1, os.cpu_count() or 1)


# Upper bounds of integer options, checked in validate() so that Python callers get the same
# ConfigError as the CLI instead of a numpy/gensim/faiss traceback (or a run that never ends).
MAX_SEED = 2**32 - 1  # numpy's legacy seeding and gensim take an unsigned 32-bit seed
MAX_THREADS = 1024  # more threads than any machine has cores: gensim hangs spawning 1e6 of them
MAX_DAYS = 36_500  # 100 years; beyond it a date range leaves what Python's datetime can hold
MAX_DIM = 10_000
MAX_WINDOW = 10_000  # longer than any session
MAX_NEGATIVE = 1_000  # word2vec uses 5-20; gensim's C loop overflows far above this
MAX_EPOCHS = 10_000
MAX_HNSW_M = 512
MAX_EF = 1_000_000  # faiss holds efSearch in a C int and doubles it for --score prob


def check_range(option: str, value: int, low: int, high: int, why: str = "") -> None:
    """Raise a ConfigError naming ``option`` when ``value`` is outside ``low..high`` (inclusive)."""
    if not low <= value <= high:
        raise ConfigError(f"{option} must be in {low:,}..{high:,}{f' ({why})' if why else ''} (got {value})")


def check_at_least(option: str, value: int, low: int) -> None:
    """Raise a ConfigError naming ``option`` when ``value`` is below ``low``, for options with no upper bound."""
    if value < low:
        raise ConfigError(f"{option} must be at least {low:,} (got {value})")


def check_seed(seed: int, option: str = "--seed") -> None:
    """One seed rule for every stage, so a seed that trains also generates and compares."""
    check_range(option, seed, 0, MAX_SEED, "numpy and gensim seeds are unsigned 32-bit")


def check_threads(threads: int, option: str) -> None:
    """At least one thread (faiss takes 0 and -1 silently), at most MAX_THREADS."""
    check_range(option, threads, 1, MAX_THREADS)


def check_interactions(option: str, names: Iterable[str], present: Iterable[str], where: str,
                       canonical: bool = True) -> None:
    """Raise a ConfigError when an interaction ``option`` names is unknown, naming it and the known ones.

    Known: those ``present`` in ``where`` (the sessions an option applies to) and, with ``canonical``,
    click, favorite, cart and purchase, which a log may simply lack (a log without purchases scores
    none). A typo (``purchse``) or a name ``prepare`` maps to another (``buy`` is purchase) would
    otherwise count nothing, silently. ``--pairs`` (``canonical=False``: a pair needs its data) and
    every ``--targets`` go through here, so a name is refused alike wherever it is given."""
    present = set(present)
    if not canonical:
        for name in names:
            if name not in present:
                raise ConfigError(f"{option}: interaction {name!r} is not in {where} "
                                  f"(interactions present: {', '.join(sorted(present))})")
        return
    known = present | set(Interaction.CANONICAL)
    unknown = [n for n in dict.fromkeys(names) if n not in known]
    if unknown:
        raise ConfigError(f"{option}: unknown interaction{'s' if len(unknown) > 1 else ''} "
                          f"{', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))} (the canonical ones "
                          f"and those in {where})")


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a ConfigError naming ``option`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{option} {value!r}: choose one of {', '.join(choices)}")


def check_time_zone(tz: str, option: str = "--tz") -> None:
    """Raise a ConfigError unless ``tz`` is an IANA time-zone name that this machine knows."""
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{option} {tz!r}: unknown time zone; use an IANA name such as UTC or Asia/Shanghai") \
            from None


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``30m``, ``1h``, ``90s``, ``1h30m``, ``2d`` or a bare number of seconds (``--gap``).

    A bare number means seconds so that ``--gap 1800`` does what a shell user expects.
    """
    bad = f"--gap {text!r}: not a duration; use e.g. 30m, 1h, 90s, 1h30m or a number of seconds"
    if isinstance(text, timedelta):
        seconds = text.total_seconds()
    elif isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = text.strip().lower().replace(" ", "")
        try:
            seconds = float(s)
        except ValueError:
            parts = _DURATION_PART.findall(s)
            if not parts or "".join(n + u for n, u in parts) != s:
                raise ConfigError(bad) from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if math.isnan(seconds):
        raise ConfigError(bad)
    if seconds <= 0:
        raise ConfigError(f"--gap {text!r}: must be longer than zero")
    if seconds > MAX_DAYS * 86_400:  # also inf; a longer gap overflows timedelta and polars
        raise ConfigError(f"--gap {text!r}: must be at most {MAX_DAYS:,} days (100 years)")
    return timedelta(seconds=seconds)
