"""Click options shared by more than one command, as decorators (the way sqlite-utils bundles them),
so the name, help and default of each option are written once.

Defaults and allowed values come from the configs and choice tuples of ``recs.config``; the
``*_DEFAULTS`` below are the default configs the commands read them from.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from recs.config import (
    BLEND,
    DEFAULT_TIME_UNIT,
    NS_EXPONENT,
    PREPARE_TIME_UNITS,
    SCORES,
    TIME_UNITS,
    BlendConfig,
    CompareConfig,
    CoocConfig,
    EvalConfig,
    IndexConfig,
    PrepareConfig,
    SplitConfig,
    SynthConfig,
    TrainConfig,
)
from recs.config_file import ConfigFile
from recs.embeddings import epochs
from recs.errors import ConfigError

COMPARE_DEFAULTS = CompareConfig()
COOC_DEFAULTS = CoocConfig()
EVAL_DEFAULTS = EvalConfig()
INDEX_DEFAULTS = IndexConfig()
PREPARE_DEFAULTS = PrepareConfig()
SPLIT_DEFAULTS = SplitConfig()
SYNTH_DEFAULTS = SynthConfig()
TRAIN_DEFAULTS = TrainConfig()

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _stack(f: Callable[..., Any], *options: Decorator) -> Callable[..., Any]:
    """Apply ``options`` so that they are listed in ``--help`` in the order given."""
    for option in reversed(options):
        f = option(f)
    return f


def comma_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    """Click callback: ``"a, b,,a"`` -> ``("a", "b")`` (blanks and repeats dropped; None -> ())."""
    return tuple(dict.fromkeys(v.strip() for v in (value or "").split(",") if v.strip()))


def json_option(f: Callable[..., Any] | None = None, *, what: str = "every number") -> Any:
    """--json FILE (parameter ``json_out``): also write ``what`` as JSON.

    Usable bare (``@json_option``) or called (``@json_option(what="the summary")``).
    """
    option = click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
                          help=f"Also write {what} as JSON.")
    return option if f is None else option(f)


def quiet_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--quiet: no progress bars (and no plain progress lines off a terminal)."""
    return click.option("--quiet", is_flag=True, help="No progress bars or progress lines.")(f)


# the libraries whose log messages --verbose shows (the CLI keeps them quiet otherwise: recs reports its
# own progress); recs itself logs nothing, it reports through Progress and raises RecsError
VERBOSE_LOGGERS = ("gensim", "optuna", "py4j", "uvicorn", "faiss", "lightgbm", "implicit")


def _verbose(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value:
        return
    import logging
    import sys

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for name in VERBOSE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def verbose_option() -> click.Option:
    """--verbose: the libraries' own log messages (gensim's training, optuna's trials, Spark's gateway) at
    INFO on stderr, beside recs' progress lines; for a run that misbehaves. Every command takes it
    (``recs.cli.main`` adds it), as every command that reports progress takes --quiet."""
    return click.Option(["--verbose"], is_flag=True, expose_value=False, callback=_verbose,
                        help="Also show the libraries' log messages (gensim, optuna, Spark) on stderr.")


CONFIG_HELP = ("Settings from a TOML file with sections [train], [train.cooc], [index], [eval], [blend] (as recs tune "
               "writes); options given here win over the file, the file over the defaults.")


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """--config FILE (parameter ``config_file``): settings from a TOML file (``recs.config_file``)."""
    return click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
                        help=CONFIG_HELP)(f)


def given(fields: dict[str, str]) -> set[str]:
    """The config keys (values of ``fields``, option parameter -> dotted field) whose options were
    typed on the command line, so they win over ``--config``; a default does not count."""
    ctx = click.get_current_context()
    defaults = (ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)
    return {key for name, key in fields.items() if ctx.get_parameter_source(name) not in (None, *defaults)}


CUTOFF_HELP = ("Cut-off time T (ISO-8601; UTC unless it has an offset such as +08:00) [default: start of the last "
               "--test-days days in the data].")


def split_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--test-days and --cutoff, defaults from SplitConfig (recs split, recs compare with one file)."""
    return _stack(
        f,
        click.option("--test-days", type=int, default=SPLIT_DEFAULTS.test_days, show_default=True,
                     help="Days after the cut-off that form the test set."),
        click.option("--cutoff", default=SPLIT_DEFAULTS.cutoff, help=CUTOFF_HELP),
    )


def eval_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--targets (a tuple of interactions) and --triggers, defaults from EvalConfig."""
    return _stack(
        f,
        click.option("--targets", default=",".join(EVAL_DEFAULTS.targets), show_default=True, callback=comma_list,
                     help="Interactions that count as purchase intent (comma-separated)."),
        click.option("--triggers", type=int, default=EVAL_DEFAULTS.triggers, show_default=True,
                     help="Last N distinct source items before a target whose candidates are pooled."),
    )


def bootstrap_options(f: Callable[..., Any] | None = None, *, unit: str = "sessions", seed: bool = True) -> Any:
    """--bootstrap N (default from EvalConfig; 0 = off) and, with ``seed``, --seed (default: compare's,
    so eval-hitrate and compare draw the same replicates): the interval of each hit rate
    (``recs.eval.intervals``), ``unit`` resampled. Usable bare or called, like ``json_option``."""
    def decorate(g: Callable[..., Any]) -> Callable[..., Any]:
        options = [click.option(
            "--bootstrap", type=int, default=EVAL_DEFAULTS.bootstrap, show_default=True,
            help=f"Bootstrap replicates of each hit rate's {EVAL_DEFAULTS.confidence:.0%} interval ({unit} "
                 "resampled; 0 = off).")]
        if seed:
            options.append(click.option("--seed", type=int, default=COMPARE_DEFAULTS.seed, show_default=True,
                                        help="Seed of the bootstrap replicates."))
        return _stack(g, *options)

    return decorate if f is None else decorate(f)


EPOCHS_HELP = (f"Passes over the sessions [default: from corpus size, {epochs.MIN_EPOCHS} for large logs up to "
               f"{epochs.MAX_EPOCHS} for small].")


def train_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--dim, --epochs and --cooc-k, defaults from TrainConfig (recs train-embeddings, recs compare)."""
    return _stack(
        f,
        click.option("--dim", type=int, default=TRAIN_DEFAULTS.dim, show_default=True,
                     help="Vector size (paper: 200)."),
        click.option("--epochs", type=int, default=TRAIN_DEFAULTS.epochs, help=EPOCHS_HELP),
        click.option("--cooc-k", type=int, default=COOC_DEFAULTS.k, show_default=True,
                     help="Co-occurrence regularization: successors kept per token and interaction type; 0 = off."),
    )


SCORE_HELP = (
    "How target vectors are ranked: prob = the model's estimate of P(target | source), "
    f"u.v + {NS_EXPONENT} log count(target); in-out = u.v alone (favours rare targets); "
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


def spark_conf_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--spark-conf KEY=VALUE``, repeatable: Spark settings of the commands that run on Spark (parsed and
    checked by ``recs.config.parse_spark_conf``, so a bad one is one ``Error:`` line like every setting)."""
    return click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
                        help="With --engine spark: a Spark setting (spark.executor.memory=4g, "
                             "spark.hadoop.fs.s3a.endpoint=...); repeatable. Recorded in the manifest, values "
                             "of keys naming a secret, password, token or key masked.")(f)


def index_uri_conf_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--spark-conf KEY=VALUE`` of a command that reads an index at a URI through Spark's Hadoop client
    (``recs.spark.fetch``): the store's settings (endpoint, credentials), nothing about tasks."""
    return click.option("--spark-conf", "spark_conf", multiple=True, metavar="KEY=VALUE",
                        help="With an index given as a URI: a setting of the Spark session whose Hadoop client "
                             "reads it (spark.hadoop.fs.s3a.endpoint=...); repeatable.")(f)


def spark_remote_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--spark-remote sc://host:15002``: run the Spark stages through a Spark Connect server."""
    return click.option("--spark-remote", default=None, metavar="URL",
                        help="With --engine spark: a Spark Connect server (sc://host:15002) to run the Spark "
                             "stages on, instead of a master [default: $SPARK_REMOTE, else none].")(f)


def work_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--work-dir URI``: where Spark's executors write what the driver reads back (``recs.spark.work``)."""
    return click.option("--work-dir", default=None, metavar="URI",
                        help="With --engine spark on a cluster: a directory every node reads and writes "
                             "(hdfs://..., s3a://..., or a shared mount) for what the executors write; the "
                             "driver copies it down and removes it [default: beside --out, which must then be "
                             "on a shared mount].")(f)


def local_index(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | None:
    """An ``--index`` a command reads as a local directory: its Path, or one Error line for a URI (an index
    ``build-index --out URI`` committed), saying how to copy it down once (``recs fetch-index``).
    Read as text first: ``click.Path(path_type=Path)`` would fold ``s3a://b/x`` into ``s3a:/b/x``."""
    from recs.spark.uri import is_uri

    if value is None:
        return None
    if is_uri(value):
        raise ConfigError(f"{param.opts[0]} {value}: recs {ctx.command.name} "
                          f"reads a local index directory; copy the index down once with recs fetch-index {value} "
                          "--out DIR (eval-hitrate and check read a URI themselves)")
    return Path(value)


def time_unit_option(f: Callable[..., Any] | None = None, *, auto: bool = False) -> Any:
    """--time-unit, for every command that reads integer times; ``auto=True`` adds ``auto`` (recs prepare).

    Usable bare (``@time_unit_option``) or called (``@time_unit_option(auto=True)``).
    """
    def decorate(g: Callable[..., Any]) -> Callable[..., Any]:
        choices = list(PREPARE_TIME_UNITS) if auto else list(TIME_UNITS)
        default = PREPARE_DEFAULTS.time_unit if auto else DEFAULT_TIME_UNIT
        return click.option("--time-unit", type=click.Choice(choices), default=default, show_default=True,
                            help=TIME_UNIT_HELP + (AUTO_HELP if auto else ""))(g)

    return decorate if f is None else decorate(f)


def score_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--score, --backoff/--no-backoff and --shrink, defaults from IndexConfig."""
    return _stack(
        f,
        click.option("--score", type=click.Choice(list(SCORES)), default=INDEX_DEFAULTS.score, show_default=True,
                     help=SCORE_HELP),
        click.option("--backoff/--no-backoff", default=INDEX_DEFAULTS.backoff, show_default=True, help=BACKOFF_HELP),
        click.option("--shrink", type=float, default=INDEX_DEFAULTS.shrink, show_default=True, help=SHRINK_HELP),
    )


BLEND_DEFAULTS = BlendConfig()


def blend_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """--sources, --valid-share and --valid-days of the learned second stage (``--method blend``),
    defaults from BlendConfig."""
    return _stack(
        f,
        click.option("--sources", default=",".join(BLEND_DEFAULTS.sources), show_default=True, callback=comma_list,
                     help="With the blend method: the methods whose top-k lists it unites and re-ranks."),
        click.option("--valid-share", type=float, default=BLEND_DEFAULTS.valid_share, show_default=True,
                     help="With the blend method: the last share of training sessions (by start time) whose "
                          "later events label the ranker; the sources are fitted on the sessions before it first."),
        click.option("--valid-days", type=int, default=None,
                     help="With the blend method: the last N whole days as the validation window instead."),
    )


# option parameter -> BlendConfig field: these typed on the command line win over a config file's [blend]
BLEND_FIELDS = {"sources": "sources", "valid_share": "valid_share", "valid_days": "valid_days"}


def blend_config(methods: tuple[str, ...], sources: tuple[str, ...], valid_share: float, valid_days: int | None,
                 file: ConfigFile | None = None, **kw: Any) -> BlendConfig:
    """The blend settings of the options over a config file's ``[blend]`` (an option typed on the command
    line wins), checked now when ``methods`` include the blend (so an unknown source fails before anything
    is read); ``methods`` empty means every method, the blend included."""
    cfg = BlendConfig(sources=sources, valid_share=valid_share, valid_days=valid_days, **kw)
    if file is not None:
        cfg = file.blend(cfg, keep=given(BLEND_FIELDS))
    if BLEND in methods or not methods:
        cfg.validate()
    return cfg
