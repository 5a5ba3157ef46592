"""``recs tune``: search our model's training and scoring settings with Optuna, on a validation window.

The defaults (the paper's dim 200, window 5, 5 negatives, ``ns_exponent`` 0.75) were chosen for
word2vec on text; a marketplace log has other session lengths and popularity curves, and the best
window or negative-sampling exponent differs from log to log. Each trial here trains our model with
one set of settings on the training sessions minus a validation window carved from their end
(``recs.sessions.split.carve_validation``: a session belongs wholly to one side) and scores the
candidate sets with the purchase-intent hit rate (``recs.eval.hitrate``) on that window. The lists are
those ``build-index`` would write from the trial's model, cold-start roll-up included
(``recs.candidates.build.training_rollup``): with ``min_count`` above 1 the dropped items are rolled up
to their shop or category there, and a trial scored without it looked 0.06 better on the planted
log's validation window than the same settings did through build-index on its test day. The test
split is never looked at, so the tuned settings can then be scored on it honestly.

The search space (``SPACE``) is kept to ranges a trial can afford: vectors of 16..128 dimensions (below
the paper's 200: training time grows with it), 5..40 epochs on a log scale (the auto rule,
``recs.embeddings.epochs``, gives 5..40 too). ``ns_exponent`` reaches below 0,
where rare items are drawn as negatives more often than popular ones, which Caselles-Dupré et al.
(RecSys 2018) found best for recommendation data. ``shrink`` is searched only with ``score = prob``,
the only score that reads it. A setting a ``--config`` file sets is held at the file's value and not
searched.

The first trial of a new study is the defaults, moved into the space (``anchor``: dim 128 for the
paper's 200, epochs by the auto rule): a short search then ends no worse than an untuned run on the
validation window. On the 200k planted log a 12-trial search without it ended 0.04 below the defaults on
both sets, having spent most trials on in-out and cosine ranking.

Sampler and pruner: TPE (seeded; its first ``STARTUP_TRIALS`` trials are random) and the median
pruner. A trial's cost is almost all training, and the model cannot be scored before training ends,
so there is one natural intermediate value only: with ``objective = both``, the Click-to-Cart hit
rate, reported before the Cart-to-Cart set is searched. A trial whose Click-to-Cart falls below the
median of earlier trials at that step is pruned, which saves its second search and scoring (a few
seconds), not its training. With one candidate set there is nothing to report before the final value.

With an Optuna RDB storage (``sqlite:///tune.db``) the study outlives the process: the next call with
the same ``study_name`` adds its trials to the stored ones. The sampler is seeded with ``seed`` plus
the number of stored trials, so a resumed study draws new settings rather than the first ones again,
and a study is only resumed on the same objective and validation window (else a ConfigError).

Optuna is an optional extra (``pip install 'recs[tune]'``); without it ``tune`` raises a ConfigError
that says so. Nothing here prints: progress goes through ``recs.progress``, results come back as a
``TuneResult``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from recs.candidates.build import training_rollup
from recs.candidates.embedding import EmbeddingCandidates
from recs.checks import check_interactions
from recs.columns import Col, Interaction
from recs.config import SCORES, EvalConfig, IndexConfig, TrainConfig, TuneConfig
from recs.config_file import ConfigFile, section_classes
from recs.errors import ConfigError, InputError, RecsError
from recs.eval.hitrate import hit_rate, target_triggers
from recs.progress import NullProgress, Progress
from recs.sessions.split import carve_validation

EXTRA_HINT = "pip install 'recs[tune]'  (or, in a clone: pip install '.[tune]')"
STARTUP_TRIALS = 5  # random trials before TPE models the results; also the pruner's warm-up in trials
STUDY_ATTR = "recs_tune"  # the study's user attribute that records what it was tuned on (resume check)

# The candidate sets each objective scores, as (source, target) interactions.
SETS: dict[str, tuple[tuple[str, str], ...]] = {
    "click_to_cart": ((Interaction.CLICK, Interaction.CART),),
    "cart_to_cart": ((Interaction.CART, Interaction.CART),),
    "both": ((Interaction.CLICK, Interaction.CART), (Interaction.CART, Interaction.CART)),
}


def set_name(source: str, target: str) -> str:
    return f"{source}_to_{target}"


@dataclass(frozen=True)
class Param:
    """One searched setting: the Optuna parameter ``name`` sets ``key`` of config-file ``section``."""

    name: str
    section: str  # "train", "train.cooc" or "index" (recs.config_file sections)
    key: str
    kind: str  # "int", "float" or "choice"
    low: float = 0
    high: float = 0
    step: float | None = None  # a grid: readable values in the written config, and fewer near-repeats
    log: bool = False
    choices: tuple[str, ...] = ()
    only_if: tuple[str, str] | None = None  # (param, value): searched only when that param has that value

    def suggest(self, trial: Any) -> Any:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        if self.kind == "float":
            value = trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
            # a grid point as written (0.15, not 0.15000000000000002); sample (log scale) to 3 digits
            return round(value, 6) if self.step else float(f"{value:.3g}")
        return trial.suggest_categorical(self.name, list(self.choices))

    def describe(self) -> dict[str, Any]:
        """The range as JSON (``--json``'s ``space``)."""
        out: dict[str, Any] = {"name": self.name, "sets": f"[{self.section}] {self.key}", "kind": self.kind}
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, log=self.log, **({"step": self.step} if self.step else {}))
        if self.only_if:
            out["only_if"] = f"{self.only_if[0]} = {self.only_if[1]}"
        return out


SPACE: tuple[Param, ...] = (
    Param("dim", "train", "dim", "int", 16, 128, step=16),
    Param("window", "train", "window", "int", 2, 10),
    Param("negative", "train", "negative", "int", 2, 15),
    Param("ns_exponent", "train", "ns_exponent", "float", -0.5, 1.0, step=0.05),
    Param("epochs", "train", "epochs", "int", 5, 40, log=True),
    Param("min_count", "train", "min_count", "int", 1, 3),
    Param("sample", "train", "sample", "float", 1e-5, 1e-2, log=True),
    Param("cooc_k", "train.cooc", "k", "int", 0, 10),
    Param("cooc_horizon", "train.cooc", "horizon", "int", 5, 40),
    Param("score", "index", "score", "choice", choices=SCORES),
    Param("shrink", "index", "shrink", "float", 0.0, 10.0, step=0.25, only_if=("score", "prob")),
)


def require_optuna() -> Any:
    """The optuna module, or one ConfigError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"recs tune needs optuna (the [tune] extra): {EXTRA_HINT}") from None
    return optuna


def _finite(value: Any) -> Any:
    """NaN and infinities as None, so the JSON of a study has none."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class TrialResult:
    """One trial of the study, as stored: its settings, state and scores."""

    number: int
    state: str  # complete, pruned, fail, running (another process, or one that was killed) or waiting
    value: float | None  # the objective; None unless complete
    params: dict[str, Any]
    hit_rates: dict[str, float | None]  # per candidate set scored (a pruned trial has the first only)
    seconds: float | None
    error: str | None = None  # why a failed trial failed

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "state": self.state, "value": _finite(self.value), "params": self.params,
                "hit_rates": {k: _finite(v) for k, v in self.hit_rates.items()}, "seconds": self.seconds,
                "error": self.error}


@dataclass(frozen=True)
class TuneResult:
    """What ``tune`` found: every trial of the study (earlier runs' too), the best one, its configs, and
    ``sections``, the config-file sections (``recs.config_file.to_toml``) that reproduce it."""

    study_name: str
    storage: str | None
    objective: str
    trials: list[TrialResult]
    trials_run: int  # by this call
    best: TrialResult
    train: TrainConfig  # the best trial's
    index: IndexConfig
    sections: dict[str, dict[str, Any]]
    validation: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)  # settings held at --config's values, by param name

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without NaN."""
        return {
            "study_name": self.study_name, "storage": self.storage, "objective": self.objective,
            "trials_run": self.trials_run, "best": self.best.to_dict(), "settings": self.sections,
            "validation": self.validation, "fixed": self.fixed, "space": [p.describe() for p in SPACE],
            "trials": [t.to_dict() for t in self.trials],
        }


def _validation_summary(split: Any, sets: tuple[tuple[str, str], ...], cfg: EvalConfig) -> dict[str, Any]:
    """The carve's sides and, per candidate set, the targets it can score; an InputError when a set
    has none (every trial would score NaN)."""
    summary = split.summary()
    valid = split.test
    targets = int(valid[Col.INTERACTION].is_in(list(cfg.targets)).sum())
    where = (f"the validation window (sessions starting at or after {split.cutoff.isoformat()}: "
             f"{valid.height:,} events)")
    if targets == 0:
        raise InputError(f"{where} has no {' or '.join(cfg.targets)} event: there is nothing to score trials on; "
                         "give a longer log or a larger --valid-share")
    summary["targets"] = targets
    for source, target in sets:
        _, triggers = target_triggers(valid, source, cfg)
        with_trigger = int(triggers.select(pl.col("_target").n_unique()).item()) if triggers.height else 0
        if with_trigger == 0:
            raise InputError(f"{where} has no {' or '.join(cfg.targets)} event after a {source} in the same "
                             f"session: there is nothing to score {set_name(source, target)} on; give a longer "
                             "log, a larger --valid-share or another --objective")
        summary[f"{set_name(source, target)}_targets_with_trigger"] = with_trigger
    return summary


def _free_space(base: ConfigFile) -> tuple[tuple[Param, ...], dict[str, Any]]:
    """The params to search and those a config file holds fixed (by name)."""
    fixed = {p.name: base.get(p.section, p.key) for p in SPACE if base.get(p.section, p.key) is not None}
    free = tuple(p for p in SPACE if p.name not in fixed)
    if not free:
        raise ConfigError(f"{base.path}: sets every searched setting ({', '.join(p.name for p in SPACE)}): "
                          "nothing is left to tune")
    return free, fixed


def _snap(p: Param, value: Any) -> Any:
    """``value`` moved onto ``p``'s range (and grid): the nearest setting the search can draw."""
    if p.kind == "choice":
        return value if value in p.choices else p.choices[0]
    value = min(max(value, p.low), p.high)
    if p.step:
        value = p.low + round((value - p.low) / p.step) * p.step
    return int(value) if p.kind == "int" else round(float(value), 6)


def anchor(free: tuple[Param, ...], train: TrainConfig, index: IndexConfig, fit_events: int) -> dict[str, Any]:
    """The first trial of a new study: the settings a run without tuning uses, moved into the search space
    (dim 200 -> 128; epochs by the auto rule, ``recs.embeddings.epochs``, on the fit part's events). TPE
    then starts from the defaults rather than from random draws alone, and with 12 trials, 5 of them random,
    a search that never comes near the defaults (in-out and cosine ranking rank far below prob) cannot
    end with settings worse than them on the validation window."""
    from recs.embeddings.epochs import auto_epochs

    values: dict[str, Any] = {}
    for p in free:
        config: Any = {"train": train, "train.cooc": train.cooc, "index": index}[p.section]
        value = getattr(config, p.key)
        if p.name == "epochs" and value is None:
            value = auto_epochs(fit_events)
        if p.only_if is None or values.get(p.only_if[0], getattr(index, p.only_if[0], None)) == p.only_if[1]:
            values[p.name] = _snap(p, value)
    return values


def configs(params: dict[str, Any], train: TrainConfig, index: IndexConfig) -> tuple[TrainConfig, IndexConfig]:
    """``train`` and ``index`` with a trial's params set."""
    by = {p.name: p for p in SPACE}
    changes: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        changes.setdefault(by[name].section, {})[by[name].key] = value
    train = replace(train, **changes.get("train", {}), cooc=replace(train.cooc, **changes.get("train.cooc", {})))
    return train, replace(index, **changes.get("index", {}))


def _sections(base: ConfigFile, params: dict[str, Any], seed: int) -> dict[str, dict[str, Any]]:
    """The config file of the best trial: --config's sections, the trial's params and the seed it trained
    with, sections in the order ``recs.config_file`` knows them."""
    out = {name: dict(base.sections.get(name, {})) for name in section_classes()}
    by = {p.name: p for p in SPACE}
    for name, value in params.items():
        out[by[name].section][by[name].key] = value
    out["train"]["seed"] = seed
    return {name: values for name, values in out.items() if values}


def _study(optuna: Any, cfg: TuneConfig, existing_check: dict[str, Any]) -> Any:
    """Create or load the study; refuse to resume one tuned on something else."""
    try:
        pruner = optuna.pruners.MedianPruner(n_startup_trials=STARTUP_TRIALS, n_warmup_steps=0)
        study = optuna.create_study(study_name=cfg.study_name, storage=cfg.storage, pruner=pruner,
                                    direction="maximize", load_if_exists=True)
    except Exception as e:  # a bad URL, a file that is not a study database, a read-only directory ...
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"--storage {cfg.storage}: cannot open the study {cfg.study_name!r} ({first})") from None
    recorded = study.user_attrs.get(STUDY_ATTR)
    if recorded is None and study.trials:
        raise ConfigError(f"--storage {cfg.storage}: study {cfg.study_name!r} was not made by recs tune; "
                          "give another --study-name")
    if recorded is not None:
        for key, value in existing_check.items():
            if recorded.get(key) != value:
                raise ConfigError(
                    f"--storage {cfg.storage}: study {cfg.study_name!r} was tuned with {key} = {recorded.get(key)!r}, "
                    f"this run has {value!r}: its trials are not comparable; give another --study-name")
    else:
        study.set_user_attr(STUDY_ATTR, existing_check)
    # seeded past the stored trials: a resumed study must not draw its first (random) settings again
    study.sampler = optuna.samplers.TPESampler(seed=(cfg.seed + len(study.trials)) % 2**32,
                                               n_startup_trials=STARTUP_TRIALS)
    return study


def _trial_result(t: Any, sets: tuple[tuple[str, str], ...]) -> TrialResult:
    names = [set_name(s, tg) for s, tg in sets]
    return TrialResult(
        # a pruned trial's value in Optuna is its last intermediate one: not the objective, so not shown as it
        number=t.number, state=t.state.name.lower(),
        value=_finite(t.value) if t.value is not None and t.state.name == "COMPLETE" else None,
        params=dict(t.user_attrs.get("settings", t.params)),
        hit_rates={n: t.user_attrs[n] for n in names if n in t.user_attrs},
        seconds=round(t.duration.total_seconds(), 3) if t.duration is not None else None,
        error=t.user_attrs.get("error"),
    )


def tune(train: pl.DataFrame, cfg: TuneConfig | None = None, base: ConfigFile | None = None,
         progress: Progress | None = None) -> TuneResult:
    """Search our model's settings on ``train`` (see module docstring) and return every trial and the best.

    ``base``: a config file whose sections are the settings every trial starts from; a searched setting
    it sets is held at its value. Every trial trains with ``cfg.seed`` and ``cfg.workers``; with
    ``workers=1`` the same call gives the same trials and the same best settings.
    """
    cfg = cfg or TuneConfig()
    cfg.validate()
    base = base or ConfigFile()
    progress = progress or NullProgress()
    optuna = require_optuna()
    free, fixed = _free_space(base)
    train_base = base.train(TrainConfig(seed=cfg.seed, workers=cfg.workers), keep=("seed", "workers"))
    index_base = base.index(IndexConfig(threads=cfg.workers), keep=("threads",))
    eval_cfg = base.eval()
    # a typo in the file's [eval] targets would score no target in every trial: refused, as --targets is
    check_interactions("--config [eval] targets", eval_cfg.targets, train[Col.INTERACTION].unique(), "the sessions")
    sets = SETS[cfg.objective]
    split = carve_validation(train, share=cfg.valid_share)
    validation = _validation_summary(split, sets, eval_cfg)
    check = {"objective": cfg.objective, "valid_share": cfg.valid_share, "fit_events": split.train.height,
             "valid_events": split.test.height, "cutoff": split.cutoff.isoformat(), "k": index_base.k,
             "targets": list(eval_cfg.targets), "triggers": eval_cfg.triggers, "fixed": fixed}

    def objective(trial: Any) -> float:
        params: dict[str, Any] = {}
        for p in free:
            if p.only_if is None or {**fixed, **params}.get(p.only_if[0]) == p.only_if[1]:
                params[p.name] = p.suggest(trial)
        trial.set_user_attr("settings", params)  # as trained: rounded, where Optuna keeps its raw draw
        train_cfg, index_cfg = configs(params, train_base, index_base)
        rates: list[float] = []
        pruned = False
        try:
            with progress.stage(f"trial {trial.number}", total=1 + len(sets), unit="step") as bar:
                t0 = time.perf_counter()
                gen = EmbeddingCandidates(train_config=train_cfg, index_config=index_cfg).fit(split.train)
                gen.rollup = training_rollup(gen.model, index_cfg)  # as build-index would
                trial.set_user_attr("train_s", round(time.perf_counter() - t0, 3))
                bar.update()
                for step, (source, target) in enumerate(sets):
                    counts = hit_rate(split.test, gen.candidates(source, target, index_cfg.k), source, eval_cfg)
                    rates.append(counts["hit_rate"])
                    trial.set_user_attr(set_name(source, target), counts["hit_rate"])
                    trial.set_user_attr(f"{set_name(source, target)}_hits", counts["hits"])
                    bar.update()
                    if step + 1 < len(sets):
                        trial.report(counts["hit_rate"], step)
                        if trial.should_prune():
                            pruned = True
                            break
        except RecsError as e:  # these settings cannot be trained or scored: the trial fails, the study goes on
            trial.set_user_attr("error", str(e))
            raise
        if pruned:
            raise optuna.TrialPruned()
        return sum(rates) / len(rates)

    study = _study(optuna, cfg, check)
    before = len(study.trials)
    if not before:  # a new study starts from the defaults: no trial worse than them can come out best
        study.enqueue_trial(anchor(free, train_base, index_base, split.train.height))
    with progress.stage("tuning", total=cfg.trials, unit="trial") as bar:
        study.optimize(objective, n_trials=cfg.trials, timeout=cfg.timeout_s, catch=(RecsError,),
                       callbacks=[lambda _study, _trial: bar.update()], gc_after_trial=True)
        trials = [_trial_result(t, sets) for t in study.trials]
    done = [t for t in trials if t.state == "complete"]
    if not done:
        failed = [t for t in trials if t.state == "fail"]
        why = f"; the first failed with: {failed[0].error}" if failed and failed[0].error else ""
        raise ConfigError(f"no trial of study {cfg.study_name!r} finished ({len(failed)} failed){why}")
    best = next(t for t in trials if t.number == study.best_trial.number)
    best_train, best_index = configs(best.params, train_base, index_base)
    return TuneResult(
        study_name=cfg.study_name, storage=cfg.storage, objective=cfg.objective, trials=trials,
        trials_run=len(trials) - before, best=best, train=best_train, index=best_index,
        sections=_sections(base, best.params, cfg.seed), validation=validation, fixed=fixed,
    )
