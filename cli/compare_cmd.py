"""``recs compare``: the paper's baselines and tables side by side on one split."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from recs.atomic import Outputs, check_paths
from recs.cli.options import score_options, time_unit_option
from recs.cli.render import console, table, write_json
from recs.config import CoocConfig, EvalConfig, IndexConfig, SplitConfig, TrainConfig, default_workers
from recs.errors import ConfigError
from recs.eval.compare import CART_TO_CART, CLICK_TO_CART, ITEM_TO_ITEM, METHODS, CompareConfig, compare
from recs.eval.html_report import write_report
from recs.progress import TqdmProgress
from recs.sessions.io import read_sessions
from recs.sessions.split import split_sessions

_T, _C, _E, _I = TrainConfig(), CoocConfig(), EvalConfig(), IndexConfig()
_CMP = CompareConfig()

# Families as sections and the status in the time column ("skipped", the reason in a note): fits 80 columns.
TABLE1 = ["method", ITEM_TO_ITEM, CLICK_TO_CART, CART_TO_CART, "time_s"]
COVERAGE = ["set", "active_items", "covered_items", "coverage", "mean_list_length", "catalogue_reach"]


def _methods(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ConfigError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return names


@click.command("compare")
@click.argument("sessions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--k", type=int, default=_CMP.k, show_default=True, help="Candidates per item, for every method.")
@click.option("--methods", default=None,
              help=f"Comma-separated subset, in this order by default: {', '.join(METHODS)}.")
@click.option("--seed", type=int, default=_CMP.seed, show_default=True,
              help="Seed of every method (training, ALS, Table 2 sampling).")
@click.option("--workers", type=int, default=default_workers(), show_default=True,
              help="Threads for gensim, ALS and faiss.")
@click.option("--dim", type=int, default=_T.dim, show_default=True,
              help="Vector size of our model and of the embedding baselines.")
@click.option("--epochs", type=int, default=None, help="Epochs of every embedding model [default: from corpus size].")
@click.option("--cooc-k", type=int, default=_C.k, show_default=True,
              help="Regularization pairs per token and interaction, for ours and Embedding + reg.")
@score_options
@click.option("--als-factors", type=int, default=_CMP.als.factors, show_default=True, help="ALS factors.")
@click.option("--targets", default=",".join(_E.targets), show_default=True,
              help="Interactions that count as purchase intent (comma-separated).")
@click.option("--triggers", type=int, default=_E.triggers, show_default=True,
              help="Last N distinct trigger items whose candidates are pooled.")
@click.option("--test-days", type=int, default=SplitConfig().test_days, show_default=True,
              help="With one SESSIONS file: days after the cut-off that form the test set.")
@click.option("--cutoff", default=None,
              help="With one SESSIONS file: cut-off time T (ISO-8601; UTC unless it has an offset such as +08:00).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Write every number (all tables, settings, counts) as JSON.")
@click.option("--report", type=click.Path(path_type=Path), default=None,
              help="Write a self-contained HTML page with the tables and a bar chart of hit rates.")
@time_unit_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def compare_cmd(sessions: tuple[Path, ...], k: int, methods: str | None, seed: int, workers: int, dim: int,
                epochs: int | None, cooc_k: int, score: str, backoff: bool, shrink: float, als_factors: int,
                targets: str, triggers: int, test_days: int, cutoff: str | None, json_out: Path | None,
                report: Path | None, time_unit: str, quiet: bool) -> None:
    """Train every method on the same training sessions and score all on the same test sessions.

    SESSIONS is either TRAIN TEST (two files, e.g. from recs split) or one file that is split by time
    here (--test-days, --cutoff). Methods (paper 5.3.1 and the strongest public peer):

    \b
      no-interaction  embedding, embedding-reg (skip-gram on item tokens, without/with
                      co-occurrence reg.), mf (implicit ALS, user x item), co-purchase
      interaction     ours (interaction embeddings + reg.), ours-noreg, interaction-mf
                      (ALS, user x (item, interaction)), co-occurrence
      public peer     co-visitation (OTTO-style type-weighted, 24 h window)

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
    """
    if len(sessions) > 2:
        raise click.UsageError("give SESSIONS (one file, split here) or TRAIN TEST (two files)")
    cfg = CompareConfig(
        k=k,
        methods=_methods(methods),
        seed=seed,
        workers=workers,
        train=replace(_T, dim=dim, epochs=epochs, cooc=replace(_C, k=cooc_k)),
        index=replace(_I, score=score, backoff=backoff, shrink=shrink),
        eval=EvalConfig(targets=tuple(t.strip() for t in targets.split(",") if t.strip()), triggers=triggers),
        als=replace(_CMP.als, factors=als_factors),
    )
    cfg.resolved().validate()  # fail on a bad option before reading or training anything
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
    console.print(table(f"Table 1: purchase-intent hit rate, k={k}, score={score}, triggers={triggers}, "
                        f"targets={','.join(cfg.eval.targets)}", t1, TABLE1, sections="group"))
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


COMMANDS = [compare_cmd]
