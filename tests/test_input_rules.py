"""Input rules: ids that look like numbers, integer times and their unit, out-of-range options.

Each test here failed before the rule it checks existed: ``007`` and ``7`` were one item, integer
milliseconds were read as seconds (year ~55,000) or crashed ``split``/``compare`` with a traceback,
and seeds, thread counts and day counts out of range crashed numpy/gensim/datetime or passed silently.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from recs.cli.main import cli
from recs.config import IndexConfig, SplitConfig, TrainConfig
from recs.errors import ConfigError, InputError
from recs.eval.compare import CompareConfig
from recs.sessions.ids import is_canonical_int
from recs.sessions.io import read_sessions, validate_sessions
from recs.sessions.prepare import PrepareConfig, prepare
from recs.sessions.sessionize import parse_duration
from recs.sessions.synth import SynthConfig, generate

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T0_S = int(T0.timestamp())
# 52 distinct ids; 007 / 7 and 031 / 31 would collapse if read as numbers
IDS = ["007", "7", "031", "31", *(str(100 + i) for i in range(48))]
SMALL_TRAIN = ["--dim", "8", "--epochs", "1", "--workers", "1", "--quiet"]


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_error_line(result, *needles: str) -> str:
    """Exit 2, no traceback, exactly one line starting with ``Error:`` that holds every needle."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, (OverflowError, ValueError))
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def events(ids: list[str], unit_scale: int = 1, sessions: int = 40, per: int = 6) -> pl.DataFrame:
    """Sessions over two days, cycling through ``ids``; every id occurs; times in seconds x ``unit_scale``."""
    rows = []
    for s in range(sessions):
        for j in range(per):
            rows.append({
                "session_id": s,
                "item_id": ids[(s * per + j) % len(ids)],
                "interaction": "cart" if j % 3 == 0 else "click",
                "timestamp": (T0_S + s * 3_600 + j * 60) * unit_scale,
            })
    return pl.DataFrame(rows)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("rules")
    out = {"dir": d}
    events(IDS).write_csv(out.setdefault("ids", d / "ids.csv"))
    events(IDS, 1_000).write_csv(out.setdefault("ms_csv", d / "ms.csv"))
    events(IDS, 1_000).write_parquet(out.setdefault("ms_parquet", d / "ms.parquet"))
    events(IDS).with_columns(pl.lit(2**62).alias("timestamp")).write_csv(out.setdefault("huge", d / "huge.csv"))
    frame, _ = generate(SynthConfig(events=3_000, seed=1))
    frame.write_parquet(out.setdefault("synth", d / "synth.parquet"))
    assert run("train-embeddings", out["synth"], "--out", d / "model", *SMALL_TRAIN).exit_code == 0
    r = run("build-index", "--model", d / "model", "--out", d / "index", "--k", 5, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    out["model"], out["index"] = d / "model", d / "index"
    return out


# -- 1. ids that look like numbers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("0", True), ("7", True), ("9223372036854775807", True), ("007", False), ("031", False), ("-5", False),
     ("+5", False), (" 7", False), ("7 ", False), ("9223372036854775808", False), ("12345678901234567890", False),
     ("", False), ("7a", False), ("1e3", False)],
)
def test_canonical_integer_rule(text, canonical):
    assert pl.select(is_canonical_int(pl.lit(text))).item() is canonical


def test_read_sessions_keeps_numeric_looking_ids_apart(files):
    df = read_sessions(files["ids"])
    assert df.schema["item_id"] == pl.String
    assert df["item_id"].n_unique() == 52
    assert {"007", "7", "031", "31"} <= set(df["item_id"].to_list())
    assert df.schema["session_id"] == pl.Int64  # 0..39: canonical integers stay integers


def test_train_embeddings_has_52_items(files):
    out = files["dir"] / "ids_model"
    r = run("train-embeddings", files["ids"], "--out", out, *SMALL_TRAIN)
    assert r.exit_code == 0, r.output
    tokens = pl.read_parquet(out / "tokens.parquet")
    assert tokens.schema["item_id"] == pl.String and tokens["item_id"].n_unique() == 52


def test_prepare_has_52_items(files, tmp_path):
    out = tmp_path / "p.parquet"
    report = prepare([files["ids"]], out, PrepareConfig(dedupe=False))
    df = pl.read_parquet(out)
    assert df.schema["item_id"] == pl.String and df["item_id"].n_unique() == 52 == report["items"]
    assert report["id_types"]["item_id"] == "string" and report["id_types"]["session_id"] == "integer"


def test_canonical_integers_stay_int64(tmp_path):
    ids = ["0", "7", "31", "9223372036854775807"]
    path = tmp_path / "ints.csv"
    events(ids).with_columns(pl.col("session_id").cast(pl.String), user_id=pl.lit("42"), shop_id=pl.lit("3")) \
        .write_csv(path)
    df = read_sessions(path)
    assert {c: df.schema[c] for c in ("session_id", "item_id", "user_id", "shop_id")} == dict.fromkeys(
        ("session_id", "item_id", "user_id", "shop_id"), pl.Int64)
    assert sorted(df["item_id"].unique().to_list()) == [0, 7, 31, 2**63 - 1]
    prepare([path], tmp_path / "p.parquet", PrepareConfig(dedupe=False))
    assert pl.read_parquet(tmp_path / "p.parquet").schema["item_id"] == pl.Int64


@pytest.mark.parametrize("odd", ["-5", " 7", "9223372036854775808", "01"])
def test_one_non_canonical_value_makes_the_column_text(tmp_path, odd):
    path = tmp_path / "odd.csv"
    events(["1", "2", odd]).write_csv(path)
    df = read_sessions(path)
    assert df.schema["item_id"] == pl.String and odd in df["item_id"].to_list()
    assert df["item_id"].n_unique() == 3  # " 7" is not stripped into "7", "01" is not "1"
    prepare([path], tmp_path / "p.parquet", PrepareConfig(dedupe=False))
    out = pl.read_parquet(tmp_path / "p.parquet")
    assert out.schema["item_id"] == pl.String and out["item_id"].n_unique() == 3


def test_session_and_user_ids_follow_the_rule(tmp_path):
    path = tmp_path / "s.csv"
    frame = events(["1", "2"], sessions=4)
    frame.with_columns(session_id=pl.col("session_id").replace_strict({0: "01", 1: "1", 2: "2", 3: "02"}),
                       user_id=pl.lit("007")).write_csv(path)
    df = read_sessions(path)
    assert df.schema["session_id"] == pl.String and df["session_id"].n_unique() == 4
    assert df["user_id"].unique().to_list() == ["007"]


def test_parquet_types_are_kept(tmp_path):
    path = tmp_path / "typed.parquet"
    events(["1", "2", "3"]).write_parquet(path)  # a String column of canonical integers
    assert read_sessions(path).schema["item_id"] == pl.String
    prepare([path], tmp_path / "p.parquet", PrepareConfig(dedupe=False))
    assert pl.read_parquet(tmp_path / "p.parquet").schema["item_id"] == pl.String


# -- 2. integer times and their unit -----------------------------------------------------------------


@pytest.mark.parametrize("key", ["ms_csv", "ms_parquet"])
def test_train_embeddings_refuses_ms_read_as_seconds(files, key):
    r = run("train-embeddings", files[key], "--out", files["dir"] / f"m_{key}", *SMALL_TRAIN)
    assert_one_error_line(r, str(files[key]), "row 1", "--time-unit ms")
    assert not (files["dir"] / f"m_{key}").exists()


@pytest.mark.parametrize("key", ["ms_csv", "ms_parquet"])
def test_time_unit_ms_reads_the_right_times(files, key):
    r = run("train-embeddings", files[key], "--out", files["dir"] / f"ok_{key}", *SMALL_TRAIN, "--time-unit", "ms")
    assert r.exit_code == 0, r.output
    df = read_sessions(files[key], time_unit="ms")
    assert df["timestamp"].min() == T0 and df["timestamp"].max() == T0 + timedelta(hours=39, minutes=5)
    stats = files["dir"] / f"stats_{key}.json"
    assert run("stats", files[key], "--time-unit", "ms", "--json", stats).exit_code == 0
    assert json.loads(stats.read_text())["first_event"].startswith("2026-01-01")


def test_split_and_compare_on_ms_exit_2_without_traceback(files, tmp_path):
    r = run("split", files["ms_csv"], "--train", tmp_path / "a.parquet", "--test", tmp_path / "b.parquet")
    assert_one_error_line(r, "ms.csv", "row 1", "--time-unit ms")
    r = run("compare", files["ms_csv"], "--methods", "co-occurrence", "--quiet")
    assert_one_error_line(r, "ms.csv", "row 1", "--time-unit ms")
    r = run("split", files["ms_csv"], "--train", tmp_path / "a.parquet", "--test", tmp_path / "b.parquet",
            "--time-unit", "ms")
    assert r.exit_code == 0, r.output


def test_bad_row_is_named(tmp_path):
    frame = events(["1", "2"], sessions=2)
    path = tmp_path / "one_bad.csv"
    frame.with_columns(timestamp=pl.when(pl.int_range(pl.len()) == 2).then(pl.col("timestamp") * 1_000)
                       .otherwise(pl.col("timestamp"))).write_csv(path)
    with pytest.raises(InputError, match=r"one_bad\.csv: column 'timestamp' row 3: .*use --time-unit ms"):
        read_sessions(path)


def _huge_commands(files: dict[str, Path], tmp: Path) -> dict[str, list[object]]:
    h = files["huge"]
    return {
        "train-embeddings": ["train-embeddings", h, "--out", tmp / "m", *SMALL_TRAIN],
        "split": ["split", h, "--train", tmp / "a.parquet", "--test", tmp / "b.parquet"],
        "stats": ["stats", h],
        "compare": ["compare", h, "--methods", "co-occurrence", "--quiet"],
        "eval-hitrate": ["eval-hitrate", "--index", files["index"], "--sessions", h],
        "prepare": ["prepare", h, "--out", tmp / "p.parquet", "--quiet"],
    }


@pytest.mark.parametrize("command", ["train-embeddings", "split", "stats", "compare", "eval-hitrate", "prepare"])
@pytest.mark.parametrize("unit", [None, "s", "ms", "us", "ns"])
def test_2_to_the_62_is_refused_by_every_command(files, tmp_path, command, unit):
    args = _huge_commands(files, tmp_path)[command] + ([] if unit is None else ["--time-unit", unit])
    line = assert_one_error_line(run(*args), "huge.csv", str(2**62), "no unit")
    assert ("line 2" if command == "prepare" else "row 1") in line


def test_prepare_out_of_range_is_a_bad_row_with_a_hint(files, tmp_path):
    r = run("prepare", files["ms_csv"], "--out", tmp_path / "p.parquet", "--time-unit", "s", "--quiet")
    assert_one_error_line(r, "ms.csv: line 2", "time out of range", "--time-unit ms", "--on-error skip")
    assert not (tmp_path / "p.parquet").exists()
    mixed = tmp_path / "mixed.csv"
    frame = events(["1", "2"], sessions=4)
    frame.with_columns(timestamp=pl.when(pl.col("session_id") == 3).then(pl.col("timestamp") * 1_000)
                       .otherwise(pl.col("timestamp"))).write_csv(mixed)
    report = prepare([mixed], tmp_path / "q.parquet", PrepareConfig(time_unit="s", on_error="skip", dedupe=False))
    assert report["dropped"]["time out of range"]["rows"] == 6 and report["events"] == 18
    assert report["dropped"]["time out of range"]["first"] == f"{mixed}: line 20"


@pytest.mark.parametrize(("unit", "scale"), [("auto", 1_000), ("ms", 1_000), ("us", 10**6), ("ns", 10**9)])
def test_prepare_reads_every_unit(tmp_path, unit, scale):
    path = tmp_path / "t.csv"
    events(["1", "2"], unit_scale=scale, sessions=2).write_csv(path)
    prepare([path], tmp_path / "p.parquet", PrepareConfig(time_unit=unit, dedupe=False))
    assert pl.read_parquet(tmp_path / "p.parquet")["timestamp"].min() == T0


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1_000), ("us", 10**6), ("ns", 10**9)])
def test_validate_sessions_time_unit(unit, scale):
    df = events(["1", "2"], unit_scale=scale, sessions=2)
    assert validate_sessions(df, time_unit=unit)["timestamp"].min() == T0


def test_unknown_time_unit_is_a_config_error(files):
    with pytest.raises(ConfigError, match="--time-unit 'h'"):
        read_sessions(files["ids"], time_unit="h")
    with pytest.raises(ConfigError, match="--time-unit 'auto'"):
        validate_sessions(events(["1"]), time_unit="auto")


# -- 8. out-of-range options -------------------------------------------------------------------------


def _option_cases() -> list[tuple[str, str, str]]:
    return [
        ("synth", "--seed", "-1"), ("synth", "--seed", "4294967296"), ("synth", "--days", "100000000"),
        ("synth", "--events", "100000000000000"), ("synth", "--items", "100000000000"),
        ("train-embeddings", "--seed", "-1"), ("train-embeddings", "--seed", "4294967296"),
        ("train-embeddings", "--workers", "0"), ("train-embeddings", "--workers", "1000000"),
        ("train-embeddings", "--window", "10000000000"), ("train-embeddings", "--negative", "10000000000"),
        ("split", "--test-days", "100000000"), ("split", "--test-days", "0"), ("split", "--cutoff", "9999-12-31"),
        ("build-index", "--threads", "0"), ("build-index", "--threads", "-1"), ("build-index", "--m", "100000000"),
        ("build-index", "--ef-search", "10000000000"), ("build-index", "--ef-construction", "10000000000"),
        ("compare", "--seed", "-1"), ("compare", "--seed", "4294967296"), ("compare", "--workers", "0"),
        ("compare", "--workers", "-1"), ("compare", "--test-days", "100000000"),
        ("prepare", "--gap", "100000000000d"),
    ]


def _base_args(command: str, files: dict[str, Path], tmp: Path) -> list[object]:
    s = files["synth"]
    return {
        "synth": ["synth", "--events", 3_000, "--out", tmp / "x.parquet"],
        "train-embeddings": ["train-embeddings", s, "--out", tmp / "m", "--quiet"],
        "split": ["split", s, "--train", tmp / "a.parquet", "--test", tmp / "b.parquet"],
        "build-index": ["build-index", "--model", files["model"], "--out", tmp / "i", "--quiet"],
        "compare": ["compare", s, "--methods", "co-occurrence", "--quiet"],
        "prepare": ["prepare", s, "--out", tmp / "p.parquet", "--quiet"],
    }[command]


@pytest.mark.parametrize(("command", "option", "value"), _option_cases())
def test_out_of_range_option_is_one_error_line(files, tmp_path, command, option, value):
    r = run(*_base_args(command, files, tmp_path), option, value)
    assert_one_error_line(r, option)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize(
    "make",
    [
        lambda: TrainConfig(seed=-1).validate(),
        lambda: TrainConfig(seed=2**32).validate(),
        lambda: TrainConfig(workers=0).validate(),
        lambda: TrainConfig(negative=10**10).validate(),
        lambda: IndexConfig(threads=0).validate(),
        lambda: IndexConfig(threads=-1).validate(),
        lambda: IndexConfig(ef_search=10**10).validate(),
        lambda: SplitConfig(test_days=10**8).validate(),
        lambda: SynthConfig(seed=-1).validate(),
        lambda: generate(SynthConfig(seed=2**32)),
        lambda: generate(SynthConfig(days=10**8)),
        lambda: generate(SynthConfig(events=10**14)),
        lambda: CompareConfig(seed=-1).validate(),
        lambda: CompareConfig(seed=2**32).resolved().validate(),
        lambda: CompareConfig(workers=0).resolved().validate(),
        lambda: parse_duration("100000000000d"),
    ],
)
def test_config_validate_raises_config_error(make):
    with pytest.raises(ConfigError):
        make()


def test_seed_bounds_are_inclusive():
    TrainConfig(seed=0).validate()
    TrainConfig(seed=2**32 - 1).validate()
    SplitConfig(test_days=36_500).validate()
