"""``recs eval-hitrate``: purchase-intent hit rate and coverage of an index's candidate sets."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import click

from recs.cli.options import (
    bootstrap_options,
    eval_options,
    index_uri_conf_option,
    json_option,
    quiet_option,
    time_unit_option,
)
from recs.cli.render import console, header, interval, percent, transposed, write_json
from recs.config import EvalConfig, check_seed, parse_spark_conf
from recs.errors import ConfigError
from recs.eval.cold import COLD_SPLITS
from recs.eval.hitrate import SPLITS
from recs.eval.report import evaluate_index
from recs.paths import check_paths
from recs.progress import TqdmProgress

# One column per candidate set, one line per number: sixteen numbers per set do not fit 80 columns side
# by side. Groups, each under a rule: all targets, re-finding, discovery (recs.eval.novelty), coverage.
_SPLIT = ("targets", "targets_with_trigger", "hits", "hit_rate")
_SHOWN = {"refinding": "re-finding", "discovery": "discovery"}
FIELDS = ["targets", "targets_with_trigger", "hits", "hit_rate", "targets_without_trigger",
          *(f"{s}_{f}" for s in SPLITS for f in _SPLIT), "coverage", "mean_list_length", "catalogue_reach"]
HEADERS = {f"{s}_{f}": f"{_SHOWN[s]} {header(f)}" for s in SPLITS for f in _SPLIT}
RULES = ["targets_without_trigger", *(f"{s}_hit_rate" for s in SPLITS)]
# with --train: the cold-start split (recs.eval.cold), hits / targets with a trigger per line
_COLD_SHOWN = {"new_target": "new target", "new_trigger": "new trigger", "new_either": "either new",
               "known_both": "both known"}
COLD_FIELDS = [*(f"{s}_{f}" for s in COLD_SPLITS for f in ("targets_with_trigger", "hits", "hit_rate")),
               "new_active_items", "new_coverage"]
_COLD_COUNTS = {"targets_with_trigger": "scored targets", "hits": "hits", "hit_rate": "hit rate"}
HEADERS |= {f"{s}_{f}": f"{_COLD_SHOWN[s]}: {shown}" for s in COLD_SPLITS for f, shown in _COLD_COUNTS.items()}
HEADERS |= {"new_active_items": "new active items", "new_coverage": "new items' coverage"}
COLD_RULES = ["catalogue_reach", *(f"{s}_hit_rate" for s in COLD_SPLITS)]
INTERVAL = "hit_rate_interval"  # a display line only: the JSON has hit_rate_low and hit_rate_high


@click.command("eval-hitrate")
@click.option("--index", "index_dir", type=click.Path(path_type=str), default="index", show_default=True,
              help="Index directory written by build-index, or the URI of one build-index --engine spark --out URI "
                   "committed (copied down to a temporary directory through Spark's Hadoop client).")
@click.option("--sessions", type=click.Path(path_type=Path), required=True,
              help="Test sessions (those after the training period, e.g. from recs split).")
@eval_options
@bootstrap_options
@click.option("--set", "names", multiple=True,
              help="Evaluate only this candidate set (e.g. click_to_cart); repeatable.")
@click.option("--any-trigger", is_flag=True,
              help="Triggers are the last N distinct items with any earlier event, not with the set's source "
                   "interaction (how an item-level list is served; recs compare's Item-to-Item column).")
@click.option("--train", "train_path", type=click.Path(path_type=Path), default=None,
              help="Training sessions: also count targets whose item or a trigger never occurs in them "
                   "(cold start) apart, and the coverage of the new items.")
@json_option(what="the numbers")
@index_uri_conf_option
@time_unit_option
@quiet_option
def eval_cmd(index_dir: str, sessions: Path, targets: tuple[str, ...], triggers: int, bootstrap: int, seed: int,
             names: tuple[str, ...], any_trigger: bool, train_path: Path | None, json_out: Path | None,
             spark_conf: tuple[str, ...], time_unit: str, quiet: bool) -> None:
    """Score candidate sets on test sessions.

    A target is each cart or purchase event; its triggers are the last N distinct items with a
    source-interaction event earlier in the session, and it is a hit when its item is in the union of
    their candidate lists. Hit rate = hits / targets with a trigger. Every count is split into
    re-finding targets (the item already occurred earlier in the session, or for the same user_id)
    and discovery targets (new to the user). Coverage: share of items with a source event in the
    test sessions that have candidates, and the mean list length. Catalogue reach: share of the
    catalogue the index can list (the training items plus the new listings of a build-index --catalog)
    that is a candidate in some list. Each hit rate has a 95% bootstrap
    interval (--bootstrap replicates, whole sessions resampled: a session's targets share triggers).

    \b
    Example:
      recs eval-hitrate --index runs/index --sessions runs/test.parquet --json runs/eval.json
      recs eval-hitrate --index s3a://shop-indexes/ours/ --sessions runs/test.parquet
    """
    from recs.spark.uri import is_uri

    cfg = EvalConfig(targets=targets, triggers=triggers, bootstrap=bootstrap)
    cfg.validate()
    check_seed(seed)
    conf = parse_spark_conf(spark_conf)
    at_uri = is_uri(index_dir)
    if conf and not at_uri:
        raise ConfigError("--spark-conf is for an --index given as a URI (read through Spark's Hadoop client)")
    inputs = ([] if at_uri else [("--index", index_dir)]) + [("--sessions", sessions)] + (
        [("--train", train_path)] if train_path else [])
    check_paths(inputs, [("--json", json_out)])
    with ExitStack() as stack:
        local: str | Path = index_dir
        if at_uri:
            from recs.spark.fetch import local_index

            with TqdmProgress(not quiet).stage("copying the index down"):
                local = stack.enter_context(local_index(index_dir, conf))
        with TqdmProgress(not quiet).stage("scoring", unit="candidate set") as bar:
            report = evaluate_index(local, sessions, cfg, list(names) or None, time_unit=time_unit,
                                    any_trigger=any_trigger, train_path=train_path, seed=seed)
            bar.update(len(report["results"]))
    report["index"] = index_dir  # the URI, not the temporary copy
    which = " (any event)" if any_trigger else ""
    score = f"score={report['score']}, " if report["score"] is not None else ""  # a baseline has none
    title = (f"purchase-intent hit rate, k={report['k']}, {score}triggers={triggers}{which}, "
             f"targets={','.join(cfg.targets)}")
    fields, rules = (FIELDS, RULES) if train_path is None else (FIELDS + COLD_FIELDS, RULES + COLD_RULES)
    rows, headers = report["results"], HEADERS
    if cfg.bootstrap:  # the interval on its own line under the hit rate, e.g. 0.4210–0.4440
        at = fields.index("hit_rate") + 1
        fields = [*fields[:at], INTERVAL, *fields[at:]]
        rows = [{**r, INTERVAL: interval(r["hit_rate_low"], r["hit_rate_high"])} for r in rows]
        headers = {**HEADERS, INTERVAL: f"{percent(cfg.confidence)} interval"}
    console.print(transposed(title, rows, "candidate_set", fields, headers=headers, rule_after=rules))
    for note in report.get("notes", []):
        console.print(f"note: {note}")
    if json_out:
        write_json(json_out, report)


COMMANDS = [eval_cmd]
