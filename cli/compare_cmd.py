"""``recs compare``: the paper's baselines and tables side by side on one split."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from rich.console import RenderableType

from recs.atomic import Outputs
from recs.cli.options import (
    COMPARE_DEFAULTS,
    INDEX_DEFAULTS,
    TRAIN_DEFAULTS,
    blend_config,
    blend_options,
    bootstrap_options,
    comma_list,
    config_option,
    eval_options,
    given,
    json_option,
    quiet_option,
    score_options,
    split_options,
    time_unit_option,
    train_options,
)
from recs.cli.render import console, interval, percent, table, write_json
from recs.config import CompareConfig, EvalConfig, SplitConfig
from recs.config_file import read_config
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, ITEM_TO_ITEM, METHODS, REFERENCES, compare
from recs.eval.html_report import write_report
from recs.paths import check_paths
from recs.progress import TqdmProgress
from recs.sessions.io import read_sessions
from recs.sessions.split import split_sessions

# Families as sections and the status in the time column ("skipped", the reason in a note): fits 80 columns.
TABLE1 = ["method", ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART, "time_s"]
COVERAGE = ["set", "active_items", "covered_items", "coverage", "mean_list_length", "catalogue_reach"]
# option parameter -> the field of --config's [train] / [index] / [eval] it sets; a given option wins over the file
TRAIN_FIELDS = {"dim": "dim", "epochs": "epochs", "cooc_k": "cooc.k"}
INDEX_FIELDS = {"score": "score", "backoff": "backoff", "shrink": "shrink"}
EVAL_FIELDS = {"targets": "targets", "triggers": "triggers", "bootstrap": "bootstrap"}


@click.command("compare")
@click.argument("sessions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--k", type=int, default=COMPARE_DEFAULTS.k, show_default=True,
              help="Candidates per item, for every method.")
@click.option("--methods", default=None, callback=comma_list,
              help=f"Comma-separated subset, in this order by default: {', '.join(METHODS)}.")
@click.option("--seed", type=int, default=COMPARE_DEFAULTS.seed, show_default=True,
              help="Seed of every method (training, ALS, Table 2 sampling) and of the bootstrap intervals.")
@click.option("--workers", type=int, default=COMPARE_DEFAULTS.workers, show_default=True,
              help="Threads for gensim, ALS and faiss.")
@train_options
@score_options
@click.option("--als-factors", type=int, default=COMPARE_DEFAULTS.als.factors, show_default=True, help="ALS factors.")
@blend_options
@eval_options
@bootstrap_options(seed=False)
@split_options
@json_option(what="every number (all tables, settings, counts)")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Write a self-contained HTML page with the tables and a bar chart of hit rates.")
@config_option
@click.option("--tuned", "tuned_file", type=click.Path(path_type=Path), default=None,
              help="Also a row 'ours-tuned': our model with this file's [train] and [index] settings (as `recs tune "
                   "--out` writes them; the rest as defaults), beside ours and the blend with paired intervals.")
@time_unit_option
@quiet_option
def compare_cmd(sessions: tuple[Path, ...], k: int, methods: tuple[str, ...], seed: int, workers: int, dim: int,
                epochs: int | None, cooc_k: int, score: str, backoff: bool, shrink: float, als_factors: int,
                sources: tuple[str, ...], valid_share: float, valid_days: int | None,
                targets: tuple[str, ...], triggers: int, bootstrap: int, test_days: int, cutoff: str | None,
                json_out: Path | None, report: Path | None, config_file: Path | None, tuned_file: Path | None,
                time_unit: str, quiet: bool) -> None:
    """Train every method on the same training sessions and score all on the same test sessions.

    SESSIONS is either TRAIN TEST (two files, e.g. from recs split) or one file that is split by time
    here (--test-days, --cutoff). --dim and --epochs apply to ours and to the embedding baselines,
    --cooc-k to ours and Embedding + reg. Methods (paper 5.3.1 and the strongest public peer):

    \b
      no-interaction  embedding, embedding-reg (skip-gram on item tokens, without/with
                      co-occurrence reg.), mf (implicit ALS, user x item), co-purchase
      interaction     ours (interaction embeddings + reg.), ours-noreg, interaction-mf
                      (ALS, user x (item, interaction)), co-occurrence
      public peer     co-visitation (OTTO-style type-weighted, 24 h window)
      same group      same-shop, same-category (the other items of the item's shop or category,
                      by carts + purchases, then other events; the paper's cart-page control)

    Prints Table 1 (hit rate: Item-to-Item, Click-to-Cart, Cart-to-Cart, and time per method),
    Table 3 (our model, trigger x candidate interaction), Table 2 (cosine of our click and cart
    vectors, same vs different category; needs a 'category' column) and coverage. Item-level
    methods answer one list per item; in Click-to-Cart and Cart-to-Cart their triggers are the
    clicked or carted items like everyone's, and Item-to-Item uses any earlier event as trigger.
    The MF methods need the optional 'implicit' package (pip install 'recs[compare]'); without it
    they are listed as skipped.

    \b
    Examples:
      recs synth --events 200000 --out runs/synth.parquet
      recs compare runs/synth.parquet --k 50 --json runs/compare.json --report runs/compare.html
      recs compare runs/train.parquet runs/test.parquet --methods ours,co-visitation,mf
      recs compare runs/train.parquet runs/test.parquet --methods ours --config runs/tuned.toml
      recs compare runs/train.parquet runs/test.parquet --tuned runs/tuned.toml
    """
    if len(sessions) > 2:
        raise click.UsageError("give SESSIONS (one file, split here) or TRAIN TEST (two files)")
    # --config: compare's own --k, --seed and --workers apply to every method, so the file's [index] k and
    # [train] seed and workers stand in for them only when they are not given
    file, own = read_config(config_file), given({"k": "k", "seed": "seed", "workers": "workers"})
    cfg = CompareConfig(
        k=k if "k" in own else file.get("index", "k", k),
        methods=methods,
        seed=seed if "seed" in own else file.get("train", "seed", seed),
        workers=workers if "workers" in own else file.get("train", "workers", workers),
        train=file.train(replace(TRAIN_DEFAULTS, dim=dim, epochs=epochs, cooc=replace(TRAIN_DEFAULTS.cooc, k=cooc_k)),
                         keep=given(TRAIN_FIELDS)),
        index=file.index(replace(INDEX_DEFAULTS, score=score, backoff=backoff, shrink=shrink),
                         keep=given(INDEX_FIELDS)),
        eval=file.eval(EvalConfig(targets=targets, triggers=triggers, bootstrap=bootstrap), keep=given(EVAL_FIELDS)),
        als=replace(COMPARE_DEFAULTS.als, factors=als_factors),
        blend=blend_config(methods, sources, valid_share, valid_days, file),
    )
    if tuned_file is not None:
        tuned = read_config(tuned_file)
        cfg = replace(cfg, tuned_train=tuned.train(TRAIN_DEFAULTS), tuned_index=tuned.index(INDEX_DEFAULTS),
                      tuned_from=tuned_file.name)
    # fail on a bad option (an unknown --methods name among them) before reading or training anything
    cfg.resolved().validate()
    check_paths([(f"SESSIONS[{i + 1}]", p) for i, p in enumerate(sessions)],
                [("--json", json_out), ("--report", report)])
    if len(sessions) == 2:
        train, test = read_sessions(sessions[0], time_unit), read_sessions(sessions[1], time_unit)
    else:
        split = split_sessions(read_sessions(sessions[0], time_unit), SplitConfig(test_days=test_days, cutoff=cutoff))
        train, test = split.train, split.test
    result = compare(train, test, cfg, TqdmProgress(not quiet))
    # None (a column a method has no number for) prints as "-", like NaN
    t1 = [{**r, "time_s": r["time_s"] if r["status"] == "ok" else r["status"]} for r in result["table1"]]
    console.print(table(f"Table 1: purchase-intent hit rate, k={cfg.k}, score={cfg.index.score}, "
                        f"triggers={cfg.eval.triggers}, "
                        f"targets={','.join(cfg.eval.targets)}", t1, TABLE1, sections="group"))
    for t in interval_tables(result, cfg):
        console.print(t)
    if result["table3"]:
        console.print(table("Table 3: our model, trigger interaction (rows) x candidate interaction (columns)",
                            result["table3"]))
    if result["table2"]:
        console.print(table("Table 2: mean cosine of our vectors, random pairs of items", result["table2"],
                            ["interaction", "same_category", "different_category", "items", "pairs"]))
    console.print(table("Coverage: items with a trigger event in the test sessions that get candidates",
                        result["coverage"], COVERAGE, headers={"set": "method / set"}, sections="method"))
    for note in result["notes"]:
        console.print(f"note: {note}")
    with Outputs() as outputs:  # --json and --report appear together or not at all
        if json_out:
            write_json(json_out, result, outputs)
        if report:
            write_report(report, result, outputs=outputs)


def interval_tables(result: dict[str, Any], cfg: CompareConfig) -> list[RenderableType]:
    """Table 1's bootstrap intervals, and per reference (ours, blend) each method's difference to it with
    its paired interval and verdict; none with --bootstrap 0. Long rather than wide: fits 80 columns."""
    if not cfg.eval.bootstrap:
        return []
    level = percent(cfg.eval.confidence)
    groups = {r["method"]: r["group"] for r in result["table1"]}
    rows: dict[str, dict[str, Any]] = {}
    for r in result["intervals"]:
        row = rows.setdefault(r["method"], {"method": r["method"], "group": groups.get(r["method"]),
                                            **dict.fromkeys(TABLE1[1:-1], interval(None, None))})
        row[r["column"]] = interval(r["low"], r["high"])
    out = [table(f"{level} intervals of Table 1's hit rates: sessions resampled, {cfg.eval.bootstrap:,} replicates, "
                 f"seed {cfg.seed}", list(rows.values()), TABLE1[:-1], sections="group")]
    for ref in REFERENCES:
        diffs = [{"method": d["method"], "set": d["column"], "diff": d["diff"],
                  "interval": interval(d["low"], d["high"], signed=True), "verdict": d["verdict"]}
                 for d in result["differences"] if d["reference"] == ref]
        if diffs:
            out.append(table(f"Difference to {ref}: each method's hit rate minus that of {ref}, {level} paired "
                             "interval (the same sessions resampled for both): ahead or behind when it excludes 0",
                             diffs, ["set", "diff", "interval", "verdict"],
                             headers={"set": "method / set", "interval": f"{level} interval"},
                             formats={"diff": "+.4f"}, sections="method"))
    return out


COMMANDS = [compare_cmd]
