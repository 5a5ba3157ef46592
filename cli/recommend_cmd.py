"""``recs recommend`` (per-user lists to parquet) and ``recs eval-recommend`` (the offline A/B test)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from recs.atomic import Outputs
from recs.cli.options import (
    bootstrap_options,
    comma_list,
    json_option,
    local_index,
    quiet_option,
    time_unit_option,
)
from recs.cli.render import console, interval, key_values, percent, table, transposed, write_json
from recs.config import AB_ARMS, MERGE_RULES, MODULES, EvalConfig, RecommendConfig
from recs.paths import check_paths
from recs.progress import TqdmProgress
from recs.sessions.times import parse_instant

DEFAULTS = RecommendConfig()


def recommend_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The list-building options both commands share, defaults from RecommendConfig."""
    for option in reversed((
        click.option("--k", type=int, default=DEFAULTS.k, show_default=True,
                     help="Candidates per list after the merge (paper: 4 triggers x 200 = 800)."),
        click.option("--triggers", type=int, default=DEFAULTS.triggers, show_default=True,
                     help="Last N distinct clicked (click) or carted (cart) items that trigger a list."),
        click.option("--recent", type=int, default=DEFAULTS.recent, show_default=True,
                     help="Last N distinct items of any interaction for the recent module (the control)."),
        click.option("--merge", type=click.Choice(MERGE_RULES), default=DEFAULTS.merge, show_default=True,
                     help="How the lists of several triggers merge: by score (best score of a candidate wins), "
                          "or round-robin (rank 1 of every trigger, newest first, then rank 2 ...)."),
        click.option("--drop-bought", is_flag=True, help="Leave out candidates the history already purchased."),
        click.option("--block-users", type=int, default=DEFAULTS.block_users, show_default=True,
                     help="Users per block: memory holds one block's lists."),
    )):
        f = option(f)
    return f


def _config(module: str, k: int, triggers: int, recent: int, merge: str, drop_bought: bool,
            block_users: int) -> RecommendConfig:
    return RecommendConfig(module=module, k=k, triggers=triggers, recent=recent, merge=merge,
                           drop_bought=drop_bought, block_users=block_users)


@click.command("recommend")
@click.option("--index", "index_dir", type=click.Path(path_type=str), callback=local_index, required=True,
              help="Index directory written by build-index (any --method).")
@click.option("--history", type=click.Path(path_type=Path), required=True,
              help="Events (canonical sessions) whose users get lists; keyed by user_id, else session_id.")
@click.option("--module", type=click.Choice(MODULES), default=DEFAULTS.module, show_default=True,
              help="click: last clicked items -> Click-to-Cart; cart: last carted -> Cart-to-Cart; both; "
                   "recent: last 100 items -> an item-level index's list; cart-page: last carted item -> "
                   "cart_to_purchase (click_to_purchase when it has none).")
@recommend_options
@click.option("--at", default=None, help="Use only events before this time (ISO-8601, UTC unless an offset is given).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output lists (.parquet).")
@json_option(what="the summary")
@time_unit_option
@quiet_option
def recommend_cmd(index_dir: Path, history: Path, module: str, k: int, triggers: int, recent: int, merge: str,
                  drop_bought: bool, block_users: int, at: str | None, out: Path, json_out: Path | None,
                  time_unit: str, quiet: bool) -> None:
    """Write every user's list: the paper's user-to-item and cart-page modules.

    Each row: user_id (or session_id), rank, candidate_item_id, score, and the trigger_item_id,
    trigger_interaction and candidate_set that produced it.

    \b
    Example:
      recs recommend --index runs/index --history runs/train.parquet --module both --out runs/recs.parquet
    """
    from recs.recommend.batch import recommend_file

    cfg = _config(module, k, triggers, recent, merge, drop_bought, block_users)
    cfg.validate()
    when = parse_instant(at, "--at") if at is not None else None
    check_paths([("--index", index_dir), ("--history", history)], [("--out", out), ("--json", json_out)])
    with Outputs() as outputs:  # --out and --json appear together or not at all
        summary = recommend_file(index_dir, history, out, cfg, when, time_unit, TqdmProgress(not quiet), outputs)
        if json_out:
            write_json(json_out, summary, outputs)
    console.print(key_values(f"recs recommend --module {module}", {
        "key": summary["key"], "users": summary["keys"], "with a list": summary["keys_with_list"],
        "without a list": summary["keys_without_list"], "rows": summary["rows"],
        "mean list length": summary["mean_list_length"], "out": str(out), "time (s)": summary["seconds"],
    }, formats={"mean list length": ".1f", "time (s)": ".1f"}))


AB_FIELDS = ["users", "users_with_list", "targets", "hits", "hit_rate", "user_hit_share",
             "refinding_targets", "refinding_hit_rate", "discovery_targets", "discovery_hit_rate",
             "mean_list_length", "catalogue_reach"]
AB_HEADERS = {"users_with_list": "users with a list", "user_hit_share": "users with a hit",
              "refinding_targets": "re-finding targets", "refinding_hit_rate": "re-finding hit rate",
              "discovery_targets": "discovery targets", "discovery_hit_rate": "discovery hit rate"}
AB_RULES = ["user_hit_share", "discovery_hit_rate"]


@click.command("eval-recommend")
@click.option("--index", "index_dir", type=click.Path(path_type=str), callback=local_index, required=True,
              help="Index of the treatment arms (ours, from build-index --model).")
@click.option("--control-index", type=click.Path(path_type=str), callback=local_index, default=None,
              help="Index the recent arm and every MODULE@control arm read (an item-level method's: build-index "
                   "--method embedding-reg for recent, --method same-shop for cart-page@control) [default: --index].")
@click.option("--history", type=click.Path(path_type=Path), required=True,
              help="Events before the cut-off (e.g. the train file of recs split); needs user_id.")
@click.option("--sessions", type=click.Path(path_type=Path), required=True,
              help="Test window (e.g. the test file of recs split); needs user_id.")
@click.option("--arms", default=",".join(AB_ARMS), show_default=True, callback=comma_list,
              help=f"Modules to compare (comma-separated; any of {', '.join(MODULES)}); MODULE@control runs "
                   "MODULE on --control-index. The first arm on the control index (recent or an @control arm) "
                   "is the reference of the differences.")
@click.option("--targets", default=",".join(EvalConfig().targets), show_default=True, callback=comma_list,
              help="Interactions of the test window that count as purchase intent.")
@recommend_options
@bootstrap_options(unit="users")
@json_option(what="the numbers")
@time_unit_option
@quiet_option
def eval_recommend_cmd(index_dir: Path, control_index: Path | None, history: Path, sessions: Path,
                       arms: tuple[str, ...], targets: tuple[str, ...], k: int, triggers: int, recent: int, merge: str,
                       drop_bought: bool, block_users: int, bootstrap: int, seed: int, json_out: Path | None,
                       time_unit: str, quiet: bool) -> None:
    """Replay the paper's A/B test offline: one list per user and arm from the history only.

    For each user with history and carts or purchases in the test window: hit rate over those targets
    (a multiset), share of users with a hit, the split into re-finding targets (the user had an event
    on the item before) and discovery targets (new to the user), list length and catalogue reach.
    Each hit rate has a 95% bootstrap interval (--bootstrap replicates, users resampled), and each
    arm's difference to the control (recent, or the first MODULE@control arm) a paired one, with a
    verdict: ahead, behind or within noise.

    \b
    Examples:
      recs eval-recommend --index runs/index --control-index runs/index-item \\
        --history runs/train.parquet --sessions runs/test.parquet
      # the paper's cart-page experiment: the same-shop control against ours, one module on each index
      recs eval-recommend --index runs/index --control-index runs/index-shop --arms cart-page@control,cart-page \\
        --history runs/train.parquet --sessions runs/test.parquet
    """
    from recs.eval.recommend_ab import evaluate_arms

    cfg = _config(AB_ARMS[0], k, triggers, recent, merge, drop_bought, block_users)
    check_paths([("--index", index_dir), ("--control-index", control_index), ("--history", history),
                 ("--sessions", sessions)], [("--json", json_out)])
    report = evaluate_arms(index_dir, history, sessions, cfg, arms, control_index, targets, time_unit,
                           TqdmProgress(not quiet), replicates=bootstrap, seed=seed)
    title = (f"offline A/B, k={k}, merge={merge}, {report['users']:,} users, "
             f"targets={','.join(targets)}")
    rows, fields, headers = report["arms"], AB_FIELDS, AB_HEADERS
    level = percent(report["bootstrap"]["confidence"])
    if bootstrap:  # the interval on its own line under the hit rate, e.g. 0.4210–0.4440
        at = fields.index("hit_rate") + 1
        fields = [*fields[:at], "hit_rate_interval", *fields[at:]]
        rows = [{**r, "hit_rate_interval": interval(r["hit_rate_low"], r["hit_rate_high"])} for r in rows]
        headers = {**AB_HEADERS, "hit_rate_interval": f"{level} interval"}
    console.print(transposed(title, rows, "arm", fields, headers=headers, rule_after=AB_RULES))
    if bootstrap and report["differences"]:
        diffs = [{**d, "interval": interval(d["low"], d["high"], signed=True)} for d in report["differences"]]
        console.print(table(f"Difference to the control: each arm's hit rate minus that of {diffs[0]['reference']}, "
                            f"{level} paired interval (users resampled, {bootstrap:,} replicates, seed {seed}): "
                            "ahead or behind when it excludes 0", diffs,
                            ["arm", "diff", "interval", "verdict"], headers={"interval": f"{level} interval"},
                            formats={"diff": "+.4f"}))
    for note in report["notes"]:
        console.print(f"note: {note}")
    if json_out:
        write_json(json_out, report)


COMMANDS = [recommend_cmd, eval_recommend_cmd]
