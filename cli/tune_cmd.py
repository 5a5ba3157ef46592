"""``recs tune``: TRAIN sessions in, the best settings of our model out as a config file (``--config``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from recs.atomic import Outputs, writing
from recs.cli.options import json_option, quiet_option, time_unit_option
from recs.cli.render import SECONDS, console, key_values, set_name, transposed, write_json
from recs.config import TUNE_OBJECTIVES, TuneConfig
from recs.config_file import read_config, to_toml
from recs.paths import check_paths
from recs.progress import TqdmProgress
from recs.sessions.io import read_sessions

TUNE_DEFAULTS = TuneConfig()
SHOWN = ".3g"  # a searched float in the tables (the written config keeps it whole)


class _NoTraceback(logging.Filter):
    """Optuna logs a failed trial's exception with its traceback; a trial fails on a RecsError (settings
    that cannot be trained), whose one line says it all, so the warning keeps the line only."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text = None, None
        return True


def _quiet_optuna(optuna: Any) -> None:
    """Optuna's INFO line per trial off (the table and progress lines say it once), warnings without tracebacks."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for handler in logging.getLogger("optuna").handlers:
        if not any(isinstance(f, _NoTraceback) for f in handler.filters):
            handler.addFilter(_NoTraceback())


def _trial_table(result: Any) -> Any:
    """One column per trial (its settings are a dozen lines, too many for a row in 80 columns), its
    state, value and hit rates above a rule, the settings it drew below; more trials than fit go on in
    another table below."""
    from recs.eval.tune import SETS, SPACE

    scores = [f"{s}_to_{t}" for s, t in SETS[result.objective]]
    params = [p.name for p in SPACE if p.name not in result.fixed]
    rows = [{"trial": t.number, "state": t.state, "value": t.value, **t.hit_rates, "seconds": t.seconds, **t.params}
            for t in result.trials]
    done = sum(t.state == "complete" for t in result.trials)
    return transposed(
        f"study {result.study_name!r}: {len(result.trials)} trials ({result.trials_run} now, {done} finished), "
        f"objective {result.objective}, validation: {result.validation['test']['events']:,} events from "
        f"{result.validation['cutoff']}", rows, "trial", ["state", "value", *scores, "seconds", *params],
        formats={"seconds": SECONDS, **{p.name: SHOWN for p in SPACE if p.kind == "float"}}, rule_after=["seconds"])


def _comments(result: Any) -> list[str]:
    best = result.best
    rates = ", ".join(f"{k} {v:.4f}" for k, v in best.hit_rates.items() if v is not None)
    done = sum(t.state == "complete" for t in result.trials)
    return [
        f"recs tune: the best of {done} finished trials of study {result.study_name!r} "
        f"(objective {result.objective} = {best.value:.4f}: {rates}; trial {best.number})",
        f"validation window: {result.validation['test']['events']:,} events from {result.validation['cutoff']}",
        "read by --config of: recs train-embeddings, recs build-index, recs compare, recs tune",
    ]


@click.command("tune")
@click.argument("train", type=click.Path(path_type=Path))
@click.option("--trials", type=int, default=TUNE_DEFAULTS.trials, show_default=True,
              help="Trials to run now (with --storage they are added to the study's stored ones).")
@click.option("--objective", default=TUNE_DEFAULTS.objective, show_default=True,
              help=f"What a trial maximises on the validation window: {', '.join(TUNE_OBJECTIVES)} (both = the "
                   "mean of the Click-to-Cart and Cart-to-Cart hit rates).")
@click.option("--timeout", "timeout_s", type=float, default=None,
              help="Start no new trial after this many seconds (the running one finishes).")
@click.option("--storage", default=None,
              help="Optuna storage URL that keeps the study, e.g. sqlite:///tune.db: a later call with the same "
                   "--study-name resumes it [default: in memory].")
@click.option("--study-name", default=TUNE_DEFAULTS.study_name, show_default=True, help="Study name in --storage.")
@click.option("--seed", type=int, default=TUNE_DEFAULTS.seed, show_default=True,
              help="Seed of the TPE sampler and of every trial's training.")
@click.option("--valid-share", type=float, default=TUNE_DEFAULTS.valid_share, show_default=True,
              help="Share of TRAIN's sessions, the latest, that score the trials (the rest trains them).")
@click.option("--workers", type=int, default=TUNE_DEFAULTS.workers, show_default=True,
              help="Training and faiss threads of each trial (1: the same seed gives the same trials).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("tuned.toml"), show_default=True,
              help="Write the best settings here, a TOML config that --config of train-embeddings, build-index and "
                   "compare reads.")
@json_option(what="every trial (settings, state, hit rates), the best and the search space")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Settings every trial starts from (TOML, as --config of train-embeddings); a searched setting "
                   "that it sets is held at its value, not searched.")
@time_unit_option
@quiet_option
def tune_cmd(train: Path, trials: int, objective: str, timeout_s: float | None, storage: str | None, study_name: str,
             seed: int, valid_share: float, workers: int, out: Path, json_out: Path | None, config_file: Path | None,
             time_unit: str, quiet: bool) -> None:
    """Search our model's training and scoring settings with Optuna and write the best as a config file.

    Each trial trains our model on TRAIN minus its latest sessions (--valid-share) with one set of
    settings, and scores its candidate sets with the purchase-intent hit rate on those sessions (so a
    test split is never looked at). Searched, each within a range a trial can afford: dim (16..128),
    window, negative, ns_exponent (-0.5..1), epochs (5..40), min_count, sample, cooc k and horizon,
    score and shrink (README, "Tuning"). TPE sampler (seeded), median pruner. Needs optuna (pip install
    'recs[tune]'). With --storage the study is kept and resumed; --trials more are added each call.

    \b
    Examples:
      recs tune runs/train.parquet --trials 40 --out runs/tuned.toml --json runs/trials.json
      recs tune runs/train.parquet --trials 10 --storage sqlite:///runs/tune.db --study-name synth
      recs train-embeddings runs/train.parquet --config runs/tuned.toml --out runs/model-tuned
    """
    from recs.eval.tune import require_optuna, tune

    cfg = TuneConfig(trials=trials, objective=objective, timeout_s=timeout_s, seed=seed, valid_share=valid_share,
                     workers=workers, study_name=study_name, storage=storage)
    cfg.validate()
    base = read_config(config_file)
    check_paths([("TRAIN", train), ("--config", config_file)], [("--out", out), ("--json", json_out)])
    optuna = require_optuna()  # before minutes of reading: one line that says how to install it
    _quiet_optuna(optuna)
    result = tune(read_sessions(train, time_unit), cfg, base, TqdmProgress(not quiet))
    console.print(_trial_table(result))
    best = result.best
    shown = {k: f"{v:{SHOWN}}" if isinstance(v, float) else v for k, v in {**best.params, **result.fixed}.items()}
    console.print(key_values(f"best: trial {best.number}, {result.objective} = {best.value:.4f}",
                             {**{set_name(k): v for k, v in best.hit_rates.items()},
                              **{k + (" (fixed)" if k in result.fixed else ""): v for k, v in shown.items()}}))
    if best.number == 0:  # a study's trial 0 is the defaults (recs.eval.tune.anchor)
        console.print("note: the best is trial 0, the defaults moved into the search space: no trial beat them on "
                      "the validation window (more --trials, or a study resumed with --storage, search further)")
    with Outputs() as outputs:  # the config and --json appear together or not at all
        with writing(out, outputs) as tmp:
            tmp.write_text(to_toml(result.sections, _comments(result)), encoding="utf-8")
        if json_out:
            write_json(json_out, result.to_dict(), outputs)
    console.print(f"wrote {out}" + (f" and {json_out}" if json_out else ""))


COMMANDS = [tune_cmd]
