"""``recs tune`` (recs.eval.tune): trials on a validation window carved from TRAIN, the best settings
written as a config file that --config reads, a study resumed from sqlite, and one Error line on bad input."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import polars as pl
import pytest

from recs.config import SynthConfig, TrainConfig, TuneConfig
from recs.config_file import parse_config, read_config
from recs.errors import ConfigError, InputError
from recs.eval.tune import SPACE, tune
from recs.sessions.synth import generate

from helpers import one_line_error, run_cli, tree

pytest.importorskip("optuna", reason="optuna is not installed (recs tune): pip install -e '.[tune]'")

# every trial trains 8-dimensional vectors for 3 epochs: about a second on the tiny log
FIXED = "[train]\ndim = 8\nepochs = 3\n"
FAST = ["--workers", 1, "--quiet"]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tune")
    frame, _ = generate(SynthConfig(events=20_000, seed=0))
    frame.write_parquet(d / "train.parquet")
    (d / "fixed.toml").write_text(FIXED)
    return d


def _no_nan(text: str) -> dict:
    def refuse(name: str) -> float:
        raise AssertionError(f"{name} in the JSON")

    return json.loads(text, parse_constant=refuse)


def test_three_trials_write_a_config_that_train_embeddings_reads(log, tmp_path):
    r = run_cli("tune", log / "train.parquet", "--trials", 3, "--config", log / "fixed.toml", "--out",
                tmp_path / "tuned.toml", "--json", tmp_path / "trials.json", *FAST)
    assert r.exit_code == 0, r.output
    assert "best: trial" in r.output and "Click-to-Cart" in r.output and "state" in r.output
    report = _no_nan((tmp_path / "trials.json").read_text())
    assert [t["number"] for t in report["trials"]] == [0, 1, 2] and report["trials_run"] == 3
    assert all(t["state"] == "complete" for t in report["trials"])  # the pruner waits for 5 finished trials
    for t in report["trials"]:
        rates = t["hit_rates"]
        assert set(rates) == {"click_to_cart", "cart_to_cart"}
        assert t["value"] == pytest.approx((rates["click_to_cart"] + rates["cart_to_cart"]) / 2)
        assert ("shrink" in t["params"]) == (t["params"]["score"] == "prob")  # shrink is read by prob only
        assert "dim" not in t["params"] and "epochs" not in t["params"]  # held by --config
    # trial 0 is the defaults (moved into the space): the search cannot end below an untuned run
    assert report["trials"][0]["params"] == {"window": 5, "negative": 5, "ns_exponent": 0.75, "min_count": 1,
                                             "sample": 0.001, "cooc_k": 3, "cooc_horizon": 20, "score": "prob",
                                             "shrink": 1.0}
    best = max(report["trials"], key=lambda t: t["value"])
    assert report["best"]["number"] == best["number"]
    # the written config: the fixed settings, the best trial's and the seed it trained with
    conf = read_config(tmp_path / "tuned.toml")
    params = best["params"]
    train = conf.train()
    assert (train.dim, train.epochs, train.seed) == (8, 3, 42)
    assert (train.window, train.negative, train.ns_exponent, train.sample, train.min_count) == (
        params["window"], params["negative"], params["ns_exponent"], params["sample"], params["min_count"])
    assert (train.cooc.k, train.cooc.horizon, conf.index().score) == (
        params["cooc_k"], params["cooc_horizon"], params["score"])
    # ... which train-embeddings takes as its settings
    r = run_cli("train-embeddings", log / "train.parquet", "--config", tmp_path / "tuned.toml", "--out",
                tmp_path / "model", *FAST)
    assert r.exit_code == 0, r.output
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())["config"]
    assert (manifest["dim"], manifest["window"], manifest["sample"], manifest["cooc"]["horizon"]) == (
        8, params["window"], params["sample"], params["cooc_horizon"])


def test_a_stored_study_is_resumed_and_grows(log, tmp_path):
    db = f"sqlite:///{tmp_path / 'tune.db'}"
    study = ["tune", log / "train.parquet", "--config", log / "fixed.toml", "--storage", db, "--study-name", "s", *FAST]
    args = [*study, "--objective", "click_to_cart"]
    assert run_cli(*args, "--trials", 2, "--out", tmp_path / "a.toml").exit_code == 0
    r = run_cli(*args, "--trials", 2, "--out", tmp_path / "b.toml", "--json", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    report = _no_nan((tmp_path / "b.json").read_text())
    assert [t["number"] for t in report["trials"]] == [0, 1, 2, 3] and report["trials_run"] == 2
    assert all(set(t["hit_rates"]) == {"click_to_cart"} for t in report["trials"])
    first, resumed = report["trials"][:2], report["trials"][2:]
    assert all(t["params"] != f["params"] for t in resumed for f in first)  # the sampler does not start over
    # another objective on the same study is refused before a trial runs
    msg = one_line_error(run_cli(*study, "--objective", "both", "--out", tmp_path / "c.toml"))
    assert "study 's' was tuned with objective = 'click_to_cart'" in msg and not (tmp_path / "c.toml").exists()


def test_same_seed_and_one_worker_give_the_same_best(log):
    frame = pl.read_parquet(log / "train.parquet")
    base = parse_config(FIXED)
    cfg = TuneConfig(trials=3, workers=1, seed=7)
    a, b = tune(frame, cfg, base), tune(frame, cfg, base)
    assert a.best.params == b.best.params and a.best.value == b.best.value
    assert [(t.params, t.value) for t in a.trials] == [(t.params, t.value) for t in b.trials]
    c = tune(frame, TuneConfig(trials=2, workers=1, seed=8), base)
    assert c.trials[0].params == a.trials[0].params  # the defaults, whatever the seed
    assert c.trials[1].params != a.trials[1].params
    # the result's configs are the best trial's, over the fixed settings
    assert a.train.dim == 8 and a.train.window == a.best.params["window"] and a.train.workers == 1
    assert json.dumps(a.to_dict(), allow_nan=False)


def test_pruned_trials_have_no_value_and_json_has_no_nan(log):
    frame = pl.read_parquet(log / "train.parquet")
    result = tune(frame, TuneConfig(trials=8, workers=1, seed=0), parse_config(FIXED))
    states = {t.state for t in result.trials}
    assert states == {"complete", "pruned"}  # seed 0: the median pruner stops trials 5 and 7 after Click-to-Cart
    for t in result.trials:
        if t.state == "pruned":  # stopped after the first set: its Click-to-Cart only, no objective value
            assert t.value is None and set(t.hit_rates) == {"click_to_cart"}
    text = json.dumps(result.to_dict(), allow_nan=False)
    assert "NaN" not in text and result.best.state == "complete"
    assert [p["name"] for p in result.to_dict()["space"]] == [p.name for p in SPACE]


def _only_clicks(log: Path, d: Path) -> Path:
    pl.read_parquet(log / "train.parquet").with_columns(pl.lit("click").alias("interaction")).write_parquet(
        d / "clicks.parquet")
    return d / "clicks.parquet"


@pytest.mark.parametrize("args, message", [
    (["--trials", 0], "--trials must be in 1..100,000 (got 0)"),
    (["--objective", "clicks"], "--objective 'clicks': choose one of both, click_to_cart, cart_to_cart"),
    (["--timeout", 0], "--timeout must be more than 0 seconds"),
    (["--valid-share", 1.5], "--valid-share must be in (0, 1)"),
    (["--workers", 0], "--workers"),
])
def test_bad_options_are_one_error_line_and_nothing_written(log, tmp_path, args, message):
    msg = one_line_error(run_cli("tune", log / "train.parquet", "--out", tmp_path / "t.toml", "--storage",
                                 f"sqlite:///{tmp_path / 'tune.db'}", *args, "--quiet"))
    assert message in msg
    assert tree(tmp_path) == set()


def test_a_validation_window_without_targets_is_refused_before_any_trial(log, tmp_path):
    clicks = _only_clicks(log, tmp_path)
    msg = one_line_error(run_cli("tune", clicks, "--out", tmp_path / "t.toml", "--storage",
                                 f"sqlite:///{tmp_path / 'tune.db'}", "--quiet"))
    assert "the validation window" in msg and "has no cart or purchase event" in msg
    assert tree(tmp_path) == {"clicks.parquet"}


def test_a_set_without_triggers_names_the_set(log):
    # carts that never follow a cart in a session: Click-to-Cart can be scored, Cart-to-Cart cannot
    frame = pl.read_parquet(log / "train.parquet")
    first_cart = (pl.col("interaction") == "cart").cum_sum().over("session_id") <= 1
    frame = frame.filter((pl.col("interaction") != "cart") | first_cart)
    frame = frame.filter(pl.col("interaction") != "purchase")
    with pytest.raises(InputError, match="nothing to score cart_to_cart on"):
        tune(frame, TuneConfig(trials=1, workers=1), parse_config(FIXED))


def test_fixing_every_searched_setting_leaves_nothing_to_tune(log, tmp_path):
    values = {"dim": 8, "window": 3, "negative": 5, "ns_exponent": 0.5, "epochs": 2, "min_count": 1, "sample": 0.001}
    text = "[train]\n" + "\n".join(f"{k} = {v}" for k, v in values.items())
    text += "\n[train.cooc]\nk = 1\nhorizon = 5\n[index]\nscore = 'prob'\nshrink = 1.0\n"
    (tmp_path / "all.toml").write_text(text)
    msg = one_line_error(run_cli("tune", log / "train.parquet", "--config", tmp_path / "all.toml", "--out",
                                 tmp_path / "t.toml", "--quiet"))
    assert "nothing is left to tune" in msg and not (tmp_path / "t.toml").exists()


def test_without_optuna_one_line_says_how_to_install(log, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna raises ImportError
    msg = one_line_error(run_cli("tune", log / "train.parquet", "--out", tmp_path / "t.toml", "--quiet"))
    assert msg == ("Error: recs tune needs optuna (the [tune] extra): pip install 'recs[tune]'  "
                   "(or, in a clone: pip install '.[tune]')")
    assert tree(tmp_path) == set()


def test_search_space_is_affordable_and_valid():
    # every corner of the space is a valid config: no trial can fail on its own settings
    for corner in ("low", "high"):
        params = {p.name: (getattr(p, corner) if p.kind != "choice" else p.choices[0]) for p in SPACE}
        train = TrainConfig(dim=int(params["dim"]), window=int(params["window"]), negative=int(params["negative"]),
                            ns_exponent=params["ns_exponent"], epochs=int(params["epochs"]),
                            min_count=int(params["min_count"]), sample=params["sample"])
        train.validate()
    by = {p.name: p for p in SPACE}
    assert by["dim"].high <= 128 and by["epochs"].high <= 40 and not math.isnan(by["sample"].low)


class _FailingSecond:
    """EmbeddingCandidates whose second fit fails as settings that cannot be trained would."""

    calls = 0

    def __init__(self, *args, **kwargs):
        from recs.candidates.embedding import EmbeddingCandidates

        self.inner = EmbeddingCandidates(*args, **kwargs)

    def fit(self, frame):
        type(self).calls += 1
        if type(self).calls == 2:
            raise ConfigError("min_count 3 leaves no cart token")
        self.inner.fit(frame)
        return self.inner


def test_a_trial_that_cannot_train_fails_and_the_study_goes_on(log, tmp_path, monkeypatch):
    import recs.eval.tune as tune_module

    monkeypatch.setattr(tune_module, "EmbeddingCandidates", _FailingSecond)
    r = run_cli("tune", log / "train.parquet", "--trials", 3, "--config", log / "fixed.toml", "--out",
                tmp_path / "t.toml", "--json", tmp_path / "t.json", *FAST)
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    trials = _no_nan((tmp_path / "t.json").read_text())["trials"]
    assert [t["state"] for t in trials] == ["complete", "fail", "complete"]
    assert trials[1]["error"] == "min_count 3 leaves no cart token" and trials[1]["value"] is None


def test_no_finished_trial_is_one_error_line(log, tmp_path, monkeypatch):
    import recs.eval.tune as tune_module

    class Failing(_FailingSecond):
        def fit(self, frame):
            raise ConfigError("cannot train")

    monkeypatch.setattr(tune_module, "EmbeddingCandidates", Failing)
    msg = one_line_error(run_cli("tune", log / "train.parquet", "--trials", 2, "--config", log / "fixed.toml",
                                 "--out", tmp_path / "t.toml", *FAST))
    assert msg == "Error: no trial of study 'recs-tune' finished (2 failed); the first failed with: cannot train"
    assert not (tmp_path / "t.toml").exists()
