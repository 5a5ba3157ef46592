"""Defaults, choices and checks in one place: the config dataclasses read by the click options and the Python API.

Each stage takes one of these; the resolved config is written into every artifact's manifest, so a
model or index directory says exactly how it was made (the pattern of spaCy's ``InitValues``). Each
config's ``validate()`` is the one check of its values, so a Python caller gets the same
``ConfigError`` as the CLI; the tuples of allowed values below are what the CLI's ``click.Choice``
options offer. This module imports nothing from the sub-packages: they all import it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

# re-exported: callers import the checks and bounds from recs.config, where the configs are
from recs.checks import (  # noqa: F401
    MAX_DAYS,
    MAX_DIM,
    MAX_EF,
    MAX_EPOCHS,
    MAX_HNSW_M,
    MAX_NEGATIVE,
    MAX_SEED,
    MAX_THREADS,
    MAX_WINDOW,
    check_at_least,
    check_choice,
    check_range,
    check_seed,
    check_threads,
    check_time_zone,
    default_workers,
    parse_duration,
)
from recs.columns import Col, Interaction
from recs.errors import ConfigError

# Allowed values of the choice options. "auto" = decided from the data (format, time unit, epochs).
AUTO = "auto"
TIME_UNITS: tuple[str, ...] = ("s", "ms", "us", "ns")  # of integer unix times (recs.sessions.times)
DEFAULT_TIME_UNIT = "s"  # of integer times, for every reader but ``recs prepare`` (which defaults to auto)
PREPARE_TIME_UNITS: tuple[str, ...] = (AUTO, *TIME_UNITS)  # auto: the one unit that puts a value in 1990..2100
ON_ERRORS: tuple[str, ...] = ("fail", "skip")  # bad rows in ``recs prepare``: stop at the first, or drop and count
CORPUS_MODES: tuple[str, ...] = ("file", "iterable")  # gensim corpus_file (C threads, faster) or a Python iterable
SCORES: tuple[str, ...] = ("prob", "in-out", "cosine")  # how targets are ranked (recs.candidates.scoring)
# How a cold-start item's group (shop, category) gets a vector (recs.candidates.groups): the mean of its
# known items' rows, the group's own trained tokens (``train-embeddings --entity``), or no roll-up;
# auto = trained when the model has the catalogue's group models, else mean (README, "Cold start")
ROLLUPS: tuple[str, ...] = ("auto", "mean", "trained", "off")
ROLLUP_AUTO, ROLLUP_MEAN, ROLLUP_TRAINED, ROLLUP_OFF = ROLLUPS
# How a vector method finds each query's k best targets (recs.candidates.hnsw): the paper's Faiss HNSW graph, an
# exact BLAS scan, or the scan while the targets are few enough (``EXACT_MAX_ROWS``) and the graph beyond
SEARCHES: tuple[str, ...] = ("hnsw", "exact", "auto")
# Every candidate-generation method, in Table 1 order; ``recs.candidates.registry.METHODS`` holds how
# each is built, under these names.
METHOD_NAMES: tuple[str, ...] = (
    "embedding", "embedding-reg", "mf", "co-purchase", "ours", "ours-noreg", "interaction-mf", "co-occurrence",
    "co-visitation", "same-shop", "same-category", "blend",
)
BLEND = "blend"  # the learned second stage over the other methods (recs.candidates.blend)
# the sources a blend combines by default: ours, the item-level embedding, co-visitation, ALS and the category's
# best sellers (left out on a log without a category column; README, "Blend": on Taobao it added 19 and 5 hits)
BLEND_SOURCES: tuple[str, ...] = ("ours", "embedding-reg", "co-visitation", "mf", "same-category")

DEFAULT_K = 200  # candidates per item, of build-index and compare alike
NS_EXPONENT = 0.75  # negative sampling ~ count^0.75 (gensim's default); also the prior of --score prob
DEFAULT_GAP = "30m"  # inactivity gap that starts a new session
DEFAULT_TIME_ZONE = "UTC"
# Columns that can stand in for item_id in a model of their own (``--entity``): shop- and
# category-interaction tokens for the cold-start roll-up (paper 5.3.3). Their names are directory
# names in the model (groups/<entity>/), so only these.
ENTITIES: tuple[str, ...] = (Col.SHOP, Col.CATEGORY)




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
        check_at_least("--cooc-horizon", self.horizon, 1)


@dataclass(frozen=True)
class TrainConfig:
    """Skip-gram with negative sampling; paper defaults for dim, window and negatives."""

    dim: int = 200
    window: int = 5
    negative: int = 5
    ns_exponent: float = NS_EXPONENT  # negative-sampling distribution ~ count^ns_exponent
    # None = chosen from corpus size by `recs.embeddings.epochs.auto_epochs` (few events per token
    # need many passes; a large log needs few).
    epochs: int | None = None
    min_count: int = 1
    sample: float = 1e-3  # frequency subsampling of session tokens (never of regularization pairs)
    alpha: float = 0.025
    min_alpha: float = 0.0001
    workers: int = field(default_factory=default_workers)
    seed: int = 42
    corpus_mode: str = CORPUS_MODES[0]  # one of CORPUS_MODES
    cooc: CoocConfig = field(default_factory=CoocConfig)
    # Group columns that get a model of their own besides the item model (``--entity``): the same
    # pipeline on the sessions with item_id replaced by the column (recs.embeddings.groups).
    entities: tuple[str, ...] = ()

    def validate(self) -> None:
        check_range("--dim", self.dim, 1, MAX_DIM)
        check_range("--window", self.window, 1, MAX_WINDOW)
        check_range("--negative", self.negative, 1, MAX_NEGATIVE)
        check_at_least("--min-count", self.min_count, 1)
        check_threads(self.workers, "--workers")
        check_seed(self.seed)
        if self.epochs is not None:
            check_range("--epochs", self.epochs, 1, MAX_EPOCHS)
        if not 0 <= self.sample < 1:
            raise ConfigError(f"--sample must be in [0, 1) (got {self.sample})")
        check_choice("--corpus-mode", self.corpus_mode, CORPUS_MODES)
        self.cooc.validate()
        for entity in self.entities:
            check_choice("--entity", entity, ENTITIES)
        repeated = sorted({e for e in self.entities if self.entities.count(e) > 1})
        if repeated:
            raise ConfigError(f"--entity {', '.join(repeated)} is given more than once")


DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    (Interaction.CLICK, Interaction.CART),
    (Interaction.CART, Interaction.CART),
)



@dataclass(frozen=True)
class IndexConfig:
    """Faiss HNSW per target interaction (paper: M=64, efConstruction=128, efSearch=256)."""

    pairs: tuple[tuple[str, str], ...] = DEFAULT_PAIRS
    k: int = DEFAULT_K
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
    # Cold start (recs.candidates.rollup): catalogue items without a vector take their shop's, else their
    # category's (with a catalogue, or when the training sessions had shop_id / category)
    rollup: str = ROLLUPS[0]
    rollup_per_group: int = 10  # at most this many of one group's rolled-up items per list (equal scores)
    batch_size: int = 4096
    threads: int = field(default_factory=default_workers)
    # "hnsw" (the paper's); the blend searches its sources with "auto" (``BlendConfig.search``)
    search: str = SEARCHES[0]

    def validate(self) -> None:
        check_at_least("--k", self.k, 1)
        check_choice("search", self.search, SEARCHES)
        check_choice("--rollup", self.rollup, ROLLUPS)
        check_range("--rollup-per-group", self.rollup_per_group, 1, MAX_RECOMMEND_K)
        check_range("--m", self.m, 2, MAX_HNSW_M)
        check_range("--ef-construction", self.ef_construction, 1, MAX_EF)
        check_range("--ef-search", self.ef_search, 1, MAX_EF)
        check_threads(self.threads, "--threads")
        check_choice("--score", self.score, SCORES)
        if not self.pairs:
            raise ConfigError("--pairs names no pair of interactions")
        if not self.shrink >= 0:
            raise ConfigError(f"--shrink must be 0 or more (got {self.shrink})")


# Where the heavy work of a command runs: this process (polars/numpy/faiss), or a Spark cluster
# (``recs.spark``; the optional extra ``[spark]``). Shared by every command with ``--engine``.
ENGINES: tuple[str, ...] = ("polars", "spark")
MAX_INDEX_SHARDS = 4096  # more index shards than this is a configuration mistake, not a catalogue
MAX_QUERY_PARTITIONS = 100_000  # of the Spark search; one part file per partition (index_check.MAX_PARTS)


@dataclass(frozen=True)
class IndexEngineConfig:
    """Where ``recs build-index`` searches our model's HNSW indexes (recs.spark.search).

    Kept apart from IndexConfig on purpose: these say where and how the work is spread, not what the
    candidates are, so ``compare`` (one machine) and the candidate settings stay as they were.
    """

    engine: str = ENGINES[0]
    spark_master: str | None = None  # None: the active session, else $RECS_SPARK_MASTER, else local[*]
    shards: int = 1  # target rows split into this many HNSW indexes, each searched, top-k merged
    partitions: int | None = None  # query partitions (= part files per set); None: Spark's default parallelism
    spark_conf: tuple[str, ...] = ()  # --spark-conf KEY=VALUE, as given (parse_spark_conf)
    spark_remote: str | None = None  # Spark Connect URL (sc://host:15002); None: $SPARK_REMOTE, else classic

    def validate(self) -> None:
        check_choice("--engine", self.engine, ENGINES)
        check_spark_conf(self.engine, self.spark_conf, self.spark_remote, self.spark_master)
        check_range("--shards", self.shards, 1, MAX_INDEX_SHARDS)
        if self.partitions is not None:
            check_range("partitions", self.partitions, 1, MAX_QUERY_PARTITIONS)
        if self.engine != "spark":
            if self.shards != 1:
                raise ConfigError(f"--shards {self.shards} splits the index across Spark executors: "
                                  "give --engine spark with it")
            if self.spark_master is not None:
                raise ConfigError("--spark-master is for --engine spark")


# Settings that have an option of their own: given as --spark-conf they would fight it.
SPARK_CONF_OWN_OPTION = {"spark.master": "--spark-master", "spark.remote": "--spark-remote"}
SECRET_WORDS = ("secret", "password", "token", "key")
MASKED = "***"


def parse_spark_conf(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--spark-conf KEY=VALUE`` options as a dict (the last of a repeated key wins, as in spark-submit).
    The first ``=`` splits, so a value may hold ``=`` (Java options, URLs)."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--spark-conf {item!r}: expected KEY=VALUE (e.g. spark.executor.memory=4g)")
        if key in SPARK_CONF_OWN_OPTION:
            raise ConfigError(f"--spark-conf {key}: give it as {SPARK_CONF_OWN_OPTION[key]}")
        out[key] = value
    return out


def check_spark_conf(engine: str, items: tuple[str, ...], remote: str | None = None,
                     master: str | None = None) -> None:
    """--spark-conf and --spark-remote only with --engine spark; each setting KEY=VALUE; a Connect
    server and a master are two answers to one question."""
    if items and engine != "spark":
        raise ConfigError("--spark-conf is for --engine spark")
    if remote is not None and engine != "spark":
        raise ConfigError("--spark-remote is for --engine spark")
    if remote is not None and master is not None:
        raise ConfigError(f"--spark-master {master} and --spark-remote {remote}: give one of them (a Spark Connect "
                          "server runs on a master of its own)")
    parse_spark_conf(items)


def mask_secrets(conf: dict[str, str]) -> dict[str, str]:
    """``conf`` with the value of every key that names a secret (secret, password, token, key: s3a's
    ``fs.s3a.secret.key``, ``fs.azure.account.key...``) replaced by ``***``, sorted by key: what a
    manifest may record. Over-masking (``spark.ssl.keyStore``) is harmless; a leaked credential is not."""
    return {k: MASKED if any(w in k.lower() for w in SECRET_WORDS) else v for k, v in sorted(conf.items())}


MAX_SPARK_PARTITIONS = 1_000_000  # session partitions of the Spark counting (one corpus part file each)


@dataclass(frozen=True)
class TrainEngineConfig:
    """Where ``recs train-embeddings`` tokenizes and counts co-occurrences (``recs.spark.train``).

    Kept apart from TrainConfig for the reason IndexEngineConfig is: these say where the work runs,
    not what is learnt, so both engines give the same vocabulary, pairs and corpus from one TrainConfig.
    Training itself stays on this machine (gensim) either way.
    """

    engine: str = ENGINES[0]
    spark_master: str | None = None  # None: the active session, else $RECS_SPARK_MASTER, else local[*]
    partitions: int | None = None  # session partitions (corpus part files); None: spark.sql.shuffle.partitions
    spark_conf: tuple[str, ...] = ()  # --spark-conf KEY=VALUE, as given (parse_spark_conf)
    spark_remote: str | None = None  # Spark Connect URL (sc://host:15002); None: $SPARK_REMOTE, else classic

    def validate(self) -> None:
        check_choice("--engine", self.engine, ENGINES)
        check_spark_conf(self.engine, self.spark_conf, self.spark_remote, self.spark_master)
        if self.partitions is not None:
            check_range("partitions", self.partitions, 1, MAX_SPARK_PARTITIONS)
        if self.engine != "spark" and self.spark_master is not None:
            raise ConfigError("--spark-master is for --engine spark")


@dataclass(frozen=True)
class EvalConfig:
    """Purchase-intent hit rate (paper 5.3.1) and coverage (5.3.3)."""

    targets: tuple[str, ...] = (Interaction.CART, Interaction.PURCHASE)
    triggers: int = 4  # last N distinct source items before a target (paper's online test uses 4)
    # bootstrap interval of each hit rate (recs.eval.intervals): replicates (0 = off) and coverage
    bootstrap: int = 1000
    confidence: float = 0.95

    def validate(self) -> None:
        check_at_least("--triggers", self.triggers, 1)
        if not self.targets:
            raise ConfigError("--targets names no interaction")
        check_range("--bootstrap", self.bootstrap, 0, 100_000, "replicates; 0 = off")
        if not 0 < self.confidence < 1:  # also refuses NaN
            raise ConfigError(f"confidence must be between 0 and 1, exclusive (got {self.confidence})")


# Modules of ``recs recommend`` (paper sec. 5.4): which history events trigger which candidate set.
MODULES: tuple[str, ...] = ("click", "cart", "both", "recent", "cart-page")
MERGE_RULES: tuple[str, ...] = ("score", "round-robin")  # how the lists of several triggers are merged
MAX_RECOMMEND_K = 100_000
AB_ARMS: tuple[str, ...] = ("recent", "click", "cart", "both")  # eval-recommend's arms: control, then treatments


@dataclass(frozen=True)
class RecommendConfig:
    """Per-user lists from an index's candidate sets (recs.recommend); paper: 4 triggers x 200 = 800."""

    module: str = MODULES[0]
    k: int = 800  # list length cap after the merge
    triggers: int = 4  # last N distinct items of the module's interaction (click, cart, both)
    recent: int = 100  # the control module's last N distinct items of any interaction
    merge: str = MERGE_RULES[0]
    drop_bought: bool = False  # drop candidates the history already purchased
    block_users: int = 4096  # users per block of a batch run: memory is per block, not per user

    def validate(self) -> None:
        check_choice("--module", self.module, MODULES)
        check_choice("--merge", self.merge, MERGE_RULES)
        check_range("--k", self.k, 1, MAX_RECOMMEND_K)
        check_range("--triggers", self.triggers, 1, 10_000)
        check_range("--recent", self.recent, 1, 10_000)
        check_range("--block-users", self.block_users, 1, 10_000_000)


@dataclass(frozen=True)
class ServeConfig:
    """``recs serve`` (recs.serve): where it listens and how large a request may be. The limits bound
    one request's work and answer (a history of max_events events, a list of max_k rows), so one
    client cannot hold the single process for seconds."""

    host: str = "127.0.0.1"  # loopback: open it to a network on purpose (--host 0.0.0.0)
    port: int = 8000  # 0: a free port chosen by the OS (printed at start)
    max_events: int = 10_000  # events per history in one POST /recommend
    max_k: int = 10_000  # list length a request may ask for (recommend and candidates)
    # server processes (recs.serve.server): a request is ~1 ms of CPU under one GIL, so one process
    # uses one core; one per core by default, all mapping one copy of the index's arrays
    workers: int = field(default_factory=default_workers)
    # slow or idle clients (docs/serving.md, "Limits and failure handling"): a connection that has not
    # sent a request's headers this long after it opened (or after its last answer) is closed, a body
    # not in this long after its headers is a 408, and a worker holding max_connections refuses more (503)
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 1000
    # a worker that leaves a hand-off or a ping unanswered this long is killed and replaced
    worker_timeout: float = 5.0

    def validate(self) -> None:
        if not self.host.strip():
            raise ConfigError("--host is empty")
        check_range("--workers", self.workers, 1, 256)
        check_range("--header-timeout", self.header_timeout, 0.1, 3600)
        check_range("--body-timeout", self.body_timeout, 0.1, 3600)
        check_range("--max-connections", self.max_connections, 1, 1_000_000)
        check_range("--worker-timeout", self.worker_timeout, 0.5, 3600)
        check_range("--port", self.port, 0, 65_535, "0 = a free port")
        check_range("--max-events", self.max_events, 1, 10_000_000)
        check_range("--max-k", self.max_k, 1, MAX_RECOMMEND_K)


MAX_SYNTH_EVENTS = 10**9  # the arrays of a larger log do not fit in any memory we run on


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the generated marketplace (``recs synth``, ``recs.sessions.synth``). Defaults give
    ~90/5/3/2% click/cart/fav/purchase."""

    events: int = 200_000
    seed: int = 0
    items: int | None = None  # None: events // 8, so most items are seen a handful of times (sparse)
    top_categories: int = 12
    sub_categories: int = 8  # per top-level category
    complements: int = 2  # complementary leaf categories per leaf category
    shops_per_item: float = 0.02
    days: int = 10
    sessions_per_user: float = 4.0
    p_cart: float = 0.27  # a session carts something
    p_second_cart: float = 0.25
    p_favorite: float = 0.22
    p_complement: float = 0.5  # a carting session goes on to a complementary category
    p_complement_cart: float = 0.7
    p_purchase: float = 0.4  # per carted item
    p_browse: float = 0.3  # an intent-phase click (not the first) lands in a sibling leaf category
    noise_clicks: float = 0.6  # mean noise clicks per session
    zipf_a: float = 1.1  # popularity exponent inside a category
    appeal_sigma: float = 1.0  # item appeal ~ lognormal(0, sigma): odds that a click becomes a cart
    start: str = "2026-01-01"
    # Share of the world's items listed on the last day: their events before its start are dropped,
    # so a split at the last day finds them new to training (cold start). 0 = the log as it always was.
    new_items: float = 0.0
    # Which world (recs.sessions.synth): "planted" (the default log, unchanged) or "view-before-cart",
    # where every cart is of an item clicked earlier in the session and sessions click items of one
    # small co-view cluster, so item-level methods (co-visitation, item embeddings, ALS) are strong.
    variant: str = "planted"
    coview_size: int = 8  # view-before-cart: items per co-view cluster of a leaf category
    p_coview: float = 0.85  # view-before-cart: a later click stays in the session's co-view cluster

    VARIANTS = ("planted", "view-before-cart")  # not a field: the choices of ``variant``

    def validate(self) -> None:
        """Refuse values numpy would choke on (a negative seed, 1e14 events) before any array is drawn."""
        check_range("--events", self.events, 100, MAX_SYNTH_EVENTS)
        check_choice("--variant", self.variant, self.VARIANTS)
        if self.coview_size < 1:
            raise ConfigError(f"coview_size must be 1 or more (got {self.coview_size})")
        if not 0 <= self.p_coview <= 1:
            raise ConfigError(f"p_coview must be in [0, 1] (got {self.p_coview})")
        if not 0 <= self.new_items < 1:
            raise ConfigError(f"--new-items must be in [0, 1) (got {self.new_items})")
        check_seed(self.seed)
        check_range("--days", self.days, 2, MAX_DAYS, "a split needs a train and a test day; at most 100 years")
        if not 0 <= self.p_browse < 1:
            raise ConfigError(f"--p-browse must be in [0, 1) (got {self.p_browse})")
        if self.appeal_sigma < 0:
            raise ConfigError(f"--appeal-sigma must be 0 or more (got {self.appeal_sigma})")
        if self.items is not None:
            check_range("--items", self.items, 50, MAX_SYNTH_EVENTS)


@dataclass(frozen=True)
class PrepareConfig:
    """Options of ``recs prepare`` (``recs.sessions.prepare``); the defaults are what the CLI uses."""

    format: str = AUTO  # a name of recs.sessions.formats.FORMAT_NAMES, checked when the run resolves it
    columns: dict[str, str] = field(default_factory=dict)  # field -> source column (``--col``)
    events: dict[str, str | None] = field(default_factory=dict)  # raw event -> interaction, None drops
    keep_unmapped: bool = False  # keep unknown/unmapped events under their own (lower-cased) name
    time_unit: str = AUTO  # one of PREPARE_TIME_UNITS
    sessionize: bool | None = None  # None: cut by gap only when the source has no session column
    gap: str = DEFAULT_GAP
    dedupe: bool = True
    paper_filter: bool = False
    min_session_len: int = 1
    min_item_count: int = 1
    on_error: str = ON_ERRORS[0]  # one of ON_ERRORS
    partition_rows: int = 4_000_000  # events sorted in memory at once; bounds peak memory on big logs

    def validate(self) -> None:
        check_choice("--on-error", self.on_error, ON_ERRORS)
        check_choice("--time-unit", self.time_unit, PREPARE_TIME_UNITS)
        check_at_least("--min-session-len", self.min_session_len, 1)
        check_at_least("partition_rows", self.partition_rows, 1)
        check_at_least("--min-item-count", self.min_item_count, 1)
        gap = parse_duration(self.gap)
        # kept sessions are never cut, so a gap other than the default would be silently ignored
        if self.sessionize is False and gap != parse_duration(DEFAULT_GAP):
            raise ConfigError("--gap has no effect with --keep-sessions; drop one of them")
        for raw, canon in self.events.items():
            if not raw.strip():
                raise ConfigError(f"--map {raw}={canon}: the raw event name is empty")


@dataclass(frozen=True)
class ALSConfig:
    """ALS hyper-parameters (``recs.candidates.baselines.mf``). Confidence c_ui = alpha x (number of
    events of user u on column i)."""

    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 10.0
    seed: int = 42
    workers: int = field(default_factory=default_workers)

    def validate(self) -> None:
        if self.factors < 1 or self.iterations < 1:
            raise ConfigError(f"ALS factors and iterations must be at least 1 (got {self.factors}, {self.iterations})")
        if self.alpha <= 0 or self.regularization < 0:
            raise ConfigError(
                f"ALS alpha must be > 0 and regularization >= 0 (got {self.alpha}, {self.regularization})"
            )


# OTTO's type weights of co-visitation (click 1, cart 6, order 3); a favorite, no OTTO type, weighs as an order
OTTO_WEIGHTS: tuple[tuple[str, float], ...] = (
    (Interaction.CLICK, 1.0),
    (Interaction.FAVORITE, 3.0),
    (Interaction.CART, 6.0),
    (Interaction.PURCHASE, 3.0),
)


@dataclass(frozen=True)
class CoVisitConfig:
    """OTTO-style co-visitation (``recs.candidates.baselines.covisit``)."""

    window_s: int = 24 * 3600
    max_events: int = 30  # per session, the most recent ones
    weights: tuple[tuple[str, float], ...] = OTTO_WEIGHTS
    other_weight: float = 1.0  # any interaction not in `weights`

    def validate(self) -> None:
        if self.window_s < 1 or self.max_events < 2:
            raise ConfigError(f"co-visitation needs window_s >= 1 and max_events >= 2 "
                              f"(got {self.window_s}, {self.max_events})")


BLEND_ORDERS = ("auto", "model", "rrf")  # BlendConfig.order
BLEND_REFITS = ("auto", "vectors-kept", "all")  # BlendConfig.refit
BLEND_REFIT_ALL_BELOW = 500_000  # refit "auto": every source refitted below this many TRAIN events


@dataclass(frozen=True)
class BlendConfig:
    """The learned second stage (``recs.candidates.blend``): which sources, the validation carve its
    labels come from, and the LightGBM LambdaRank model that orders the union of the sources' lists."""

    sources: tuple[str, ...] = BLEND_SOURCES
    valid_share: float = 0.1  # the last share of training sessions (by start time) labels the ranker
    valid_days: int | None = None  # or: the last N whole days (wins over valid_share when given)
    max_groups: int = 5_000  # triggers (per pair) the ranker learns from at most (a seeded sample beyond)
    # triggers whose session went on to no event of at least this grade are left out (recs.candidates.blend_labels:
    # 2 = a cart or purchase, what the hit rate counts; 1 = any later event, whose clicks then outnumber the carts)
    min_grade: int = 2
    negatives: int = 100  # per trigger, unlabelled candidates kept besides those a source ranks in its top 20
    # one ranker for every pair, the pair a feature; off: a ranker per pair (as good, measured, and 4x faster to
    # train), and a pair without labelled triggers learns from the others' pooled rows
    pool_pairs: bool = False
    # each item's union cut to its best rows by reciprocal rank fusion before the ranker sees it (0: all of it).
    # Off by default: a cut to 300 saved a third of the scoring but lost 0.05-0.06 of union recall and 0.005-0.02
    # of Cart-to-Cart, where ours' complements are listed by ours alone (BENCHMARKS.md, Blend)
    union_max: int = 0
    rounds: int = 100  # boosting rounds at most
    # rounds chosen on held-out validation triggers (a fifth of the groups, NDCG at k): the ranker stops where
    # they stop improving, then is retrained on every group for that many rounds. Scoring costs per tree.
    early_stop: int = 10  # rounds without improvement (0: always ``rounds``)
    learning_rate: float = 0.1
    num_leaves: int = 31
    min_data_in_leaf: int = 50
    block_items: int = 8192  # query items scored at once: memory is per block, not per (item, candidate)
    # scoring as a cascade: the first ``cascade_trees`` trees score every union row, each item keeps its
    # ``cascade_keep`` best rows (never fewer than k), and only those get the remaining trees. Trees add up, so a
    # kept row's score is the full model's; scoring cost is per row and tree, and the union is ~3x k rows per item.
    # 0 trees: every row gets every tree
    cascade_trees: int = 10
    # 220 (k + 10%): on the planted 200k log the same hit rates as 300 and as no cascade (0.4509 / 0.4473 / 0.4480,
    # one fitted blend, bench/blend_cascade.py), Click-to-Cart scoring 14.5 s against 16.6 s
    cascade_keep: int = 220
    # the order of each pair's lists: "auto" keeps the ranker's unless reciprocal rank fusion or one source's own
    # order keeps more validation targets in the top k on triggers the ranker did not learn from (a small log's
    # ranker can be worse than both); "model" always the ranker's; "rrf" always fusion's (nothing learnt)
    order: str = "auto"
    # what the final stage fits again on the whole of TRAIN: "vectors-kept" refits the count-based sources (and the
    # item counts) and keeps the vector sources (ours, embedding-reg, mf) as the validation stage fitted them, so the
    # ranker scores the very models it learnt on and skip-gram is trained once, not twice; "all" refits every source
    # (the vectors then also see the validation window); "auto": "all" below BLEND_REFIT_ALL_BELOW events, where the
    # second fit costs seconds, "vectors-kept" from there (BENCHMARKS.md, Blend: cost and hit rates of both)
    refit: str = "auto"
    # how the vector sources search their full lists (``IndexConfig.search``): "auto" scans exactly up to 50k
    # target rows, where building the HNSW graph costs more than the scan (17k rows: 1.6 s against 9.2 s), and
    # walks the graph beyond (75k rows: 14.3 s against the scan's 18.7 s)
    search: str = "auto"
    seed: int = 42
    workers: int = field(default_factory=default_workers)

    def validate(self) -> None:
        if not self.sources:
            raise ConfigError("sources: names no method; choose from "
                              f"{', '.join(m for m in METHOD_NAMES if m != BLEND)}")
        unknown = [m for m in self.sources if m not in METHOD_NAMES or m == BLEND]
        if unknown:
            raise ConfigError(f"sources: unknown {', '.join(unknown)}; choose from "
                              f"{', '.join(m for m in METHOD_NAMES if m != BLEND)}")
        repeated = sorted({m for m in self.sources if self.sources.count(m) > 1})
        if repeated:
            raise ConfigError(f"sources: {', '.join(repeated)} given more than once")
        if self.valid_days is None and not 0 < self.valid_share < 1:
            raise ConfigError(f"valid_share must be in (0, 1) (got {self.valid_share})")
        if self.valid_days is not None:
            check_range("valid_days", self.valid_days, 1, MAX_DAYS)
        check_range("max_groups", self.max_groups, 10, 10_000_000)
        check_range("rounds", self.rounds, 1, 100_000)
        check_range("union_max", self.union_max, 0, 100_000)
        check_range("early_stop", self.early_stop, 0, 100_000)
        check_range("negatives", self.negatives, 0, 1_000_000)
        check_range("min_grade", self.min_grade, 1, 4)
        if not 0 < self.learning_rate <= 1:
            raise ConfigError(f"learning_rate must be in (0, 1] (got {self.learning_rate})")
        check_range("num_leaves", self.num_leaves, 2, 131_072)
        check_range("min_data_in_leaf", self.min_data_in_leaf, 1, 1_000_000)
        check_range("block_items", self.block_items, 1, 10_000_000)
        check_range("cascade_trees", self.cascade_trees, 0, 100_000)
        if self.order not in BLEND_ORDERS:
            raise ConfigError(f"order must be one of {', '.join(BLEND_ORDERS)} (got {self.order!r})")
        check_choice("search", self.search, SEARCHES)
        if self.refit not in BLEND_REFITS:
            raise ConfigError(f"refit must be one of {', '.join(BLEND_REFITS)} (got {self.refit!r})")
        check_range("cascade_keep", self.cascade_keep, 1, 100_000)
        check_seed(self.seed)
        check_threads(self.workers, "workers")


@dataclass(frozen=True)
class MethodConfig:
    """The settings a candidate-generation method may read (``recs.candidates.registry``). Our model
    and both embedding baselines share ``train`` (only the tokens differ); the regularized ones use its
    cooc settings, the unregularized ones the same with k=0. Every method that searches vectors uses
    ``index``."""

    train: TrainConfig = field(default_factory=TrainConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    als: ALSConfig = field(default_factory=ALSConfig)
    covisit: CoVisitConfig = field(default_factory=CoVisitConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)

    def validate(self) -> None:
        self.train.validate()
        self.index.validate()
        self.als.validate()
        self.covisit.validate()
        self.blend.validate()


def check_methods(methods: tuple[str, ...], option: str = "--methods") -> None:
    """Raise a ConfigError naming every unknown method and every known one."""
    unknown = [m for m in methods if m not in METHOD_NAMES]
    if unknown:
        raise ConfigError(f"{option}: unknown {', '.join(unknown)}; choose from {', '.join(METHOD_NAMES)}")


@dataclass(frozen=True)
class CompareConfig:
    """Everything ``recs compare`` (``recs.eval.compare``) needs. ``seed`` and ``workers`` are applied
    to every method."""

    k: int = DEFAULT_K
    methods: tuple[str, ...] = ()  # empty = all, in Table 1 order
    seed: int = 42
    workers: int = field(default_factory=default_workers)
    # Our model and both embedding baselines share this config (only the tokens differ); the
    # regularized ones use its cooc settings, the unregularized ones the same with k=0.
    train: TrainConfig = field(default_factory=TrainConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    als: ALSConfig = field(default_factory=ALSConfig)
    covisit: CoVisitConfig = field(default_factory=CoVisitConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    category_pairs: int = 20_000  # random pairs per side of Table 2
    # a second row of our model, ``ours-tuned``, with these settings (a ``recs tune`` file's [train] and [index]):
    # the tuned model beside the defaults and the blend, each difference with its paired interval
    tuned_train: TrainConfig | None = None
    tuned_index: IndexConfig | None = None
    tuned_from: str | None = None  # the file they came from, for the row's label

    def resolved(self) -> CompareConfig:
        """The same config with seed, workers and k pushed into every nested config."""
        return replace(
            self,
            # Table 1 order whatever order they were given in; unknown names stay for validate() to report
            methods=tuple(m for m in METHOD_NAMES if m in self.methods or not self.methods)
            + tuple(dict.fromkeys(m for m in self.methods if m not in METHOD_NAMES)),
            train=replace(self.train, seed=self.seed, workers=self.workers),
            index=replace(self.index, k=self.k, threads=self.workers),
            als=replace(self.als, seed=self.seed, workers=self.workers),
            blend=replace(self.blend, seed=self.seed, workers=self.workers),
            tuned_train=None if self.tuned_train is None else replace(self.tuned_train, seed=self.seed,
                                                                       workers=self.workers),
            tuned_index=None if self.tuned_index is None else replace(self.tuned_index, k=self.k,
                                                                       threads=self.workers),
        )

    def validate(self) -> None:
        check_at_least("--k", self.k, 1)
        # checked here, not only in the nested configs: a method that never reads them (co-occurrence)
        # must not let a seed or thread count through that another run of the same command refuses
        check_seed(self.seed)
        check_threads(self.workers, "--workers")
        check_methods(self.methods)
        check_at_least("category_pairs", self.category_pairs, 1)
        self.train.validate()
        self.index.validate()
        self.eval.validate()
        self.als.validate()
        self.covisit.validate()
        if BLEND in self.methods:
            self.blend.validate()
        for tuned in (self.tuned_train, self.tuned_index):
            if tuned is not None:
                tuned.validate()

    def method_config(self) -> MethodConfig:
        """What the method builders read (call on the resolved config, which carries seed and workers)."""
        return MethodConfig(train=self.train, index=self.index, als=self.als, covisit=self.covisit, blend=self.blend)


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


# What ``recs tune`` maximises (recs.eval.tune): a candidate set's hit rate on the validation window, or
# the mean of both.
TUNE_OBJECTIVES: tuple[str, ...] = ("both", "click_to_cart", "cart_to_cart")
MAX_TUNE_TRIALS = 100_000


@dataclass(frozen=True)
class TuneConfig:
    """``recs tune`` (``recs.eval.tune``): how many trials of our model's settings, scored how, stored where.

    Every trial trains on the training sessions minus a validation window carved from their end
    (``valid_share`` of the sessions, ``recs.sessions.split.carve_validation``) and is scored on that
    window, so the test split is never looked at while settings are chosen.
    """

    trials: int = 40  # trials run by this call (a resumed study adds them to the stored ones)
    objective: str = TUNE_OBJECTIVES[0]
    timeout_s: float | None = None  # no new trial starts after this many seconds
    seed: int = 42  # of the TPE sampler and of every trial's training
    valid_share: float = 0.1
    workers: int = field(default_factory=default_workers)  # training and faiss threads of each trial
    study_name: str = "recs-tune"
    storage: str | None = None  # an Optuna RDB URL (sqlite:///tune.db) to keep and resume the study; None = memory

    def validate(self) -> None:
        check_range("--trials", self.trials, 1, MAX_TUNE_TRIALS)
        check_choice("--objective", self.objective, TUNE_OBJECTIVES)
        if self.timeout_s is not None and not self.timeout_s > 0:  # also refuses NaN
            raise ConfigError(f"--timeout must be more than 0 seconds (got {self.timeout_s})")
        check_seed(self.seed)
        if not 0 < self.valid_share < 1:
            raise ConfigError(f"--valid-share must be in (0, 1) (got {self.valid_share})")
        check_threads(self.workers, "--workers")
        if not self.study_name.strip():
            raise ConfigError("--study-name is empty")
        if self.storage is not None and not self.storage.strip():
            raise ConfigError("--storage is empty")
