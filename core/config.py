"""Defaults in one place: dataclass configs read by the click options and by the Python API.

Each stage takes one of these; the resolved config is written into every artifact's manifest, so a
model or index directory says exactly how it was made (the pattern of spaCy's ``InitValues``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

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


def check_seed(seed: int, option: str = "--seed") -> None:
    """One seed rule for every stage, so a seed that trains also generates and compares."""
    check_range(option, seed, 0, MAX_SEED, "numpy and gensim seeds are unsigned 32-bit")


def check_threads(threads: int, option: str) -> None:
    """At least one thread (faiss takes 0 and -1 silently), at most MAX_THREADS."""
    check_range(option, threads, 1, MAX_THREADS)


@dataclass(frozen=True)
class SplitConfig:
    """Time-based split (paper 5.1): train on sessions before day T, test on the day after."""

    test_days: int = 1
    # Cut-off time T as ISO-8601; None = start (00:00 UTC) of the last `test_days` days in the data.
    cutoff: str | None = None

    def validate(self) -> None:
        check_range("--test-days", self.test_days, 1, MAX_DAYS, "100 years")


@dataclass(frozen=True)
class CoocConfig:
    """Co-occurrence regularization (paper 4.1, 5.1.2)."""

    k: int = 3  # kept successors per token and per interaction type of the successor; 0 = off
    # Only the next `horizon` events after p count as "after p". This caps the pairs per event, so
    # counting memory grows linearly with events even when sessions run to hundreds of events.
    horizon: int = 20
    same_item: bool = False  # keep pairs of two interactions with one item (e.g. 42:click -> 42:cart)

    def validate(self) -> None:
        if self.k < 0:
            raise ConfigError(f"--cooc-k must be 0 or more (got {self.k})")
        if self.horizon < 1:
            raise ConfigError(f"--cooc-horizon must be at least 1 (got {self.horizon})")


@dataclass(frozen=True)
class TrainConfig:
    """Skip-gram with negative sampling; paper defaults for dim, window and negatives."""

    dim: int = 200
    window: int = 5
    negative: int = 5
    ns_exponent: float = 0.75  # negative-sampling distribution ~ count^ns_exponent (gensim default)
    # None = chosen from corpus size by `recs.embeddings.epochs.auto_epochs` (few events per token
    # need many passes; a large log needs few).
    epochs: int | None = None
    min_count: int = 1
    sample: float = 1e-3  # frequency subsampling of session tokens (never of regularization pairs)
    alpha: float = 0.025
    min_alpha: float = 0.0001
    workers: int = field(default_factory=default_workers)
    seed: int = 42
    corpus_mode: str = "file"  # "file" (gensim corpus_file, faster) or "iterable"
    cooc: CoocConfig = field(default_factory=CoocConfig)

    def validate(self) -> None:
        for name in ("dim", "window", "negative", "min_count", "workers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        check_range("--dim", self.dim, 1, MAX_DIM)
        check_range("--window", self.window, 1, MAX_WINDOW)
        check_range("--negative", self.negative, 1, MAX_NEGATIVE)
        check_threads(self.workers, "--workers")
        check_seed(self.seed)
        if self.epochs is not None:
            check_range("--epochs", self.epochs, 1, MAX_EPOCHS)
        if not 0 <= self.sample < 1:
            raise ConfigError(f"--sample must be in [0, 1) (got {self.sample})")
        if self.corpus_mode not in ("file", "iterable"):
            raise ConfigError(f"--corpus-mode must be 'file' or 'iterable' (got {self.corpus_mode!r})")
        self.cooc.validate()


DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    (Interaction.CLICK, Interaction.CART),
    (Interaction.CART, Interaction.CART),
)


SCORES: tuple[str, ...] = ("prob", "in-out", "cosine")


@dataclass(frozen=True)
class IndexConfig:
    """Faiss HNSW per target interaction (paper: M=64, efConstruction=128, efSearch=256)."""

    pairs: tuple[tuple[str, str], ...] = DEFAULT_PAIRS
    k: int = 200
    m: int = 64
    ef_construction: int = 128
    ef_search: int = 256
    # How targets are ranked (recs.candidates.scoring): "prob" = the model's estimate of
    # P(target token | source token), "in-out" = u_p . v_q, "cosine" = cosine of input vectors.
    score: str = "prob"
    # Items without a token of the asked interaction stand in with their most frequent token.
    backoff: bool = True
    # With "prob": an item's target row is w * own row + (1 - w) * stand-in row, w = n / (n + shrink),
    # n = its target-interaction events; 0 = no shrinking (recs.candidates.scoring).
    shrink: float = 1.0
    batch_size: int = 4096
    threads: int = field(default_factory=default_workers)

    def validate(self) -> None:
        if self.k < 1:
            raise ConfigError(f"--k must be at least 1 (got {self.k})")
        check_range("--m", self.m, 2, MAX_HNSW_M)
        if self.ef_construction < 1 or self.ef_search < 1:
            raise ConfigError("--ef-construction and --ef-search must be at least 1")
        check_range("--ef-construction", self.ef_construction, 1, MAX_EF)
        check_range("--ef-search", self.ef_search, 1, MAX_EF)
        check_threads(self.threads, "--threads")
        if self.score not in SCORES:
            raise ConfigError(f"--score must be one of {', '.join(SCORES)} (got {self.score!r})")
        if not self.pairs:
            raise ConfigError("--pairs names no pair of interactions")
        if not self.shrink >= 0:
            raise ConfigError(f"--shrink must be 0 or more (got {self.shrink})")


@dataclass(frozen=True)
class EvalConfig:
    """Purchase-intent hit rate (paper 5.3.1) and coverage (5.3.3)."""

    targets: tuple[str, ...] = (Interaction.CART, Interaction.PURCHASE)
    triggers: int = 4  # last N distinct source items before a target (paper's online test uses 4)

    def validate(self) -> None:
        if self.triggers < 1:
            raise ConfigError(f"--triggers must be at least 1 (got {self.triggers})")
        if not self.targets:
            raise ConfigError("--targets names no interaction")


def parse_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """Parse ``click:cart,cart:cart`` into pairs; raise a ConfigError that shows the bad part."""
    pairs: list[tuple[str, str]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        bits = part.split(":")
        if len(bits) != 2 or not all(b.strip() for b in bits):
            raise ConfigError(f"--pairs: {part!r} is not of the form SOURCE:TARGET (e.g. click:cart)")
        pairs.append((bits[0].strip(), bits[1].strip()))
    if not pairs:
        raise ConfigError("--pairs names no pair of interactions")
    return tuple(dict.fromkeys(pairs))


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a (nested) config dataclass."""
    return asdict(config)
