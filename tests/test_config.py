"""recs.config is the one home of the configs, their checks and the choices the CLI offers: checks that
once lived only in a command hold for Python callers, and every default the CLI shows is the config's."""

from __future__ import annotations

import click
import polars as pl
import pytest

import recs.config as config
from recs.candidates.registry import METHODS
from recs.cli.main import cli
from recs.config import CompareConfig, PrepareConfig, TrainConfig
from recs.errors import ConfigError
from recs.sessions.stats import session_stats

from helpers import sessions_frame


def test_every_config_is_defined_in_recs_config():
    names = ["SplitConfig", "CoocConfig", "TrainConfig", "IndexConfig", "EvalConfig", "SynthConfig", "PrepareConfig",
             "ALSConfig", "CoVisitConfig", "MethodConfig", "CompareConfig"]
    for name in names:
        cls = getattr(config, name)
        assert cls.__module__ == "recs.config" and callable(cls.validate), name
        cls().validate()  # the defaults pass their own check


def test_method_names_are_the_registry():
    assert tuple(METHODS) == config.METHOD_NAMES


def test_keep_sessions_with_a_gap_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="--gap has no effect with --keep-sessions"):
        PrepareConfig(sessionize=False, gap="1h").validate()
    PrepareConfig(sessionize=False, gap="1800").validate()  # the default gap, written in seconds
    PrepareConfig(sessionize=True, gap="1h").validate()


@pytest.mark.parametrize("field, value", [("on_error", "ignore"), ("time_unit", "days"), ("gap", "soon")])
def test_prepare_choices_are_checked(field, value):
    with pytest.raises(ConfigError):
        PrepareConfig(**{field: value}).validate()


def test_unknown_time_zone_is_refused_by_the_library():
    df = sessions_frame({1: [(1, "click"), (2, "cart")]})
    with pytest.raises(ConfigError, match="unknown time zone"):
        session_stats(df, tz="Mars/Olympus")
    assert session_stats(df, tz="Asia/Shanghai")["time_zone"] == "Asia/Shanghai"


def test_unknown_methods_are_refused_by_the_config_in_table_1_order():
    cfg = CompareConfig(methods=("co-visitation", "nope", "ours", "nope")).resolved()
    assert cfg.methods == ("ours", "co-visitation", "nope")
    with pytest.raises(ConfigError, match="--methods: unknown nope; choose from embedding,"):
        cfg.validate()


def test_corpus_mode_choice():
    with pytest.raises(ConfigError, match="--corpus-mode 'disk': choose one of file, iterable"):
        TrainConfig(corpus_mode="disk").validate()


def _option(command: str, name: str) -> click.Option:
    return next(p for p in cli.commands[command].params if isinstance(p, click.Option) and name in p.opts)


def test_cli_choices_and_defaults_come_from_the_configs():
    assert tuple(_option("prepare", "--on-error").type.choices) == config.ON_ERRORS
    assert tuple(_option("prepare", "--time-unit").type.choices) == config.PREPARE_TIME_UNITS
    assert tuple(_option("train-embeddings", "--corpus-mode").type.choices) == config.CORPUS_MODES
    assert _option("compare", "--k").default == _option("build-index", "--k").default == config.DEFAULT_K
    assert _option("compare", "--workers").default == CompareConfig().workers
    assert _option("prepare", "--gap").default == config.DEFAULT_GAP
    assert f"{config.NS_EXPONENT} log count" in _option("compare", "--score").help


def test_epochs_help_states_the_auto_epochs_bounds():
    from recs.embeddings.epochs import MAX_EPOCHS, MIN_EPOCHS

    for command in ("train-embeddings", "compare"):
        assert f"{MIN_EPOCHS} for large logs up to {MAX_EPOCHS}" in _option(command, "--epochs").help


def test_shared_options_are_one_declaration():
    # the bundles give every command the same option: same help, same default
    for name, commands in {"--json": ("prepare", "stats", "split", "eval-hitrate", "compare"),
                           "--quiet": ("prepare", "train-embeddings", "build-index", "compare"),
                           "--targets": ("eval-hitrate", "compare"), "--cutoff": ("split", "compare"),
                           "--dim": ("train-embeddings", "compare")}.items():
        options = [_option(c, name) for c in commands]
        assert len({(o.default, o.type.name) for o in options}) == 1, name
    assert _option("compare", "--targets").process_value(click.Context(cli), "cart, purchase,,cart") == \
        ("cart", "purchase")


def test_stats_of_an_empty_frame_still_checks_the_zone():
    empty = pl.DataFrame(schema={"session_id": pl.Int64, "item_id": pl.Int64, "interaction": pl.String,
                                 "timestamp": pl.Datetime("us", "UTC")})
    with pytest.raises(ConfigError):
        session_stats(empty, tz="Nowhere/Else")
