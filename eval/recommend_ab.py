"""``recs eval-recommend``: the paper's online A/B test (sec. 5.4) replayed offline.

Each arm is a module of ``recs.recommend`` (the control ``recent`` on an item-level index, the
treatments ``click``, ``cart`` and ``both`` on ours). An arm ``MODULE@control`` runs MODULE on the
control index instead: ``cart-page@control`` on a ``build-index --method same-shop`` index against
``cart-page`` on ours is the paper's cart-page experiment (sec. 5.4: "items that come from the same
shop as the last item added to the shopping cart" against the carted item's ``purchase`` candidates),
one command. The first arm on the control index (``recent`` or an ``@control`` arm) is the reference
of the paired differences. For every user with history before the cut-off
(the training file) and carts or purchases in the test window (the test file), each arm builds the
user's list from the history only; the user's targets are the multiset of items carted or purchased
in the test window, and a target is a hit when its item is in the list. Per arm:

* ``hit_rate`` = hits / targets (every evaluated user's targets, whether or not the arm had a list
  for them: an arm that cannot answer a user misses), ``user_hit_share`` = users with >= 1 hit / users;
* ``users_with_list``, ``mean_list_length`` (over users with a list), ``catalogue_reach`` (distinct
  candidates shown to anyone / items any arm could show: the history's and the indexes', so at most 1);
* the same hit rate split into **re-finding** targets (the user had an event on the item in the
  history) and **discovery** targets (new to the user): lists that only re-surface what a user has
  seen are what "recently viewed" already does; a generator earns its keep on discovery.
* ``hit_rate_low`` and ``hit_rate_high``: the hit rate's bootstrap interval, *users* resampled (a
  user's targets share the user's list); and in ``differences`` each arm's hit rate minus the
  control's, with the paired interval (the same replicate weights for every arm) and a verdict
  (``recs.eval.intervals``).

Users are taken in blocks (``RecommendConfig.block_users``): memory holds one block's lists.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from recs.candidates.registry import INTERACTION, method_spec
from recs.checks import check_interactions
from recs.columns import Col
from recs.config import (
    AB_ARMS,
    METHOD_NAMES,
    MODULES,
    EvalConfig,
    RecommendConfig,
    check_seed,
    config_dict,
)
from recs.errors import ConfigError, InputError, RecsError
from recs.eval.ids import comparison_dtype, mixed_kinds_note
from recs.eval.intervals import DEFAULT_SEED, bootstrap, unit_sums
from recs.eval.novelty import REFINDING, mark_refinding
from recs.progress import NullProgress, Progress
from recs.recommend.batch import check_key, key_blocks
from recs.recommend.recommender import Recommender
from recs.sessions.files import fingerprint_sessions
from recs.sessions.io import read_sessions
from recs.sessions.times import DEFAULT_TIME_UNIT

_ORDER = "_order"  # history events all come before the test window
CONTROL = "recent"
ON_CONTROL = "@control"  # an arm ``MODULE@control``: MODULE on the control index


def arm_module(arm: str) -> tuple[str, bool]:
    """An arm's module, and whether it reads the control index: ``recent`` (the paper's control) and
    ``MODULE@control`` do, any other module reads the treatment index. A ConfigError for a name that
    is no module."""
    module = arm.removesuffix(ON_CONTROL)
    if module not in MODULES:
        raise ConfigError(f"--arms {arm!r}: an arm is a module ({', '.join(MODULES)}), or MODULE{ON_CONTROL} to run "
                          "it on --control-index")
    return module, module == CONTROL or arm.endswith(ON_CONTROL)


def _same_data(a: str | Path, b: str | Path) -> bool:
    """Whether two sessions inputs are one: the same path, or the same content (``fingerprint_sessions``;
    two single files are hashed only when their sizes agree)."""
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists() and pa.resolve() == pb.resolve():
        return True
    if pa.is_file() and pb.is_file() and pa.stat().st_size != pb.stat().st_size:
        return False
    try:
        return fingerprint_sessions(a) == fingerprint_sessions(b)
    except RecsError:
        return False  # one cannot be read: its reader says why, with its own message


def evaluate_arms(
    index_dir: str | Path,
    history: str | Path,
    test: str | Path,
    cfg: RecommendConfig | None = None,
    arms: tuple[str, ...] = AB_ARMS,
    control_index: str | Path | None = None,
    targets: tuple[str, ...] = EvalConfig().targets,  # purchase intent, as eval-hitrate counts it
    time_unit: str = DEFAULT_TIME_UNIT,
    progress: Progress | None = None,
    replicates: int = EvalConfig().bootstrap,
    confidence: float = EvalConfig().confidence,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Score every arm on the users of ``history`` with targets in ``test``; return the report.

    ``control_index``: the index the ``recent`` arm and every ``MODULE@control`` arm read (for
    ``recent`` an item-level method's, e.g. built with ``recs build-index --method embedding-reg``; for
    ``cart-page@control`` a ``same-shop`` one); default ``index_dir``, and an ``@control`` arm needs it.
    ``replicates`` (0 = off), ``confidence`` and ``seed``: the bootstrap intervals, users resampled
    (``recs.eval.intervals``)."""
    cfg = cfg or RecommendConfig()
    cfg.validate()
    EvalConfig(bootstrap=replicates, confidence=confidence).validate()
    check_seed(seed)
    if not arms:
        raise ConfigError("--arms names no arm")
    modules = {arm: arm_module(arm) for arm in arms}
    repeated = sorted({a for a in arms if arms.count(a) > 1})
    if repeated:
        raise ConfigError(f"--arms: {', '.join(repeated)} given more than once")
    for arm in arms:
        if arm.endswith(ON_CONTROL) and control_index is None:
            raise ConfigError(f"--arms {arm} runs {modules[arm][0]} on the control index: give --control-index "
                              f"(e.g. an index of build-index --method same-shop)")
    reference = next((a for a in arms if modules[a][1]), CONTROL)  # of the paired differences
    if not targets:
        raise ConfigError("--targets names no interaction")
    if _same_data(history, test):
        raise ConfigError(f"--history {history} and --sessions {test} are the same data: every target would be in "
                          "its user's history, so the test scores re-finding only (a hit rate near 0.7 that means "
                          "nothing); give the train and test files of recs split")
    progress = progress or NullProgress()
    t0 = time.perf_counter()
    hist = read_sessions(history, time_unit=time_unit)
    tst = read_sessions(test, time_unit=time_unit)
    check_interactions("--targets", targets, tst[Col.INTERACTION].unique(), f"the test window {test}")
    for path, frame in ((history, hist), (test, tst)):
        if Col.USER not in frame.columns:
            raise InputError(f"{path}: has no {Col.USER!r} column; eval-recommend follows users from their "
                             "history into the test window, and a session never spans the cut-off")
    notes = []
    check_key(hist, Col.USER, history)
    check_key(tst, Col.USER, test)
    kind = comparison_dtype(hist.schema[Col.USER], tst.schema[Col.USER], where="user ids")
    if kind is not None:
        hist, tst = (f.with_columns(pl.col(Col.USER).cast(kind)) for f in (hist, tst))
    item_kind = comparison_dtype(tst.schema[Col.ITEM], hist.schema[Col.ITEM], where=f"{test}")
    note = mixed_kinds_note(tst.schema[Col.ITEM], hist.schema[Col.ITEM], what="the history")
    if note:
        notes.append(note)
    tgt = user_targets(hist, tst, targets, item_kind)
    users = tgt.select(Col.USER).unique().sort(Col.USER)[Col.USER]
    history_items = hist[Col.ITEM].unique()  # every item of the history, not only the evaluated users'
    hist = hist.filter(pl.col(Col.USER).is_in(users.implode())).sort(Col.USER, maintain_order=True)
    recs_by_index: dict[str, Recommender] = {}

    def recommender(path: str | Path) -> Recommender:
        if str(path) not in recs_by_index:
            recs_by_index[str(path)] = Recommender.open(path, cfg)
        return recs_by_index[str(path)]

    def arm_index(arm: str) -> str | Path:
        return control_index if (modules[arm][1] and control_index is not None) else index_dir

    for arm in arms:  # every arm's sets exist, before any arm is scored
        recommender(arm_index(arm))._rules(replace(cfg, module=modules[arm][0]))
    control = recommender(control_index if control_index is not None else index_dir)
    method = control.store.manifest.get("method", {}).get("name")
    if CONTROL in arms and method in METHOD_NAMES and method_spec(method).group == INTERACTION:
        notes.append(f"the recent arm (the paper's control) reads {method!r}, an interaction-aware method; the "
                     "paper's control is item-level: give --control-index an index of build-index "
                     "--method embedding-reg")
    # catalogue reach's denominator: every item an arm could show, the history's (recent shows their lists'
    # items) and every item of the indexes read, compared as text (ids of a CSV history may be text); so a share
    catalogue = pl.concat([history_items.cast(pl.String).rename("x"),
                           *[pl.Series("x", r.store.ids.astype(str)) for r in recs_by_index.values()]]).n_unique()
    rows = []
    sums: dict[str, pl.DataFrame] = {}  # arm -> per-user hits and targets, for the intervals
    for arm in arms:
        path = arm_index(arm)
        rec = recommender(path)
        with progress.stage(f"arm {arm}", total=len(users), unit="user") as bar:
            counts, sums[arm] = _score_arm(rec, replace(cfg, module=modules[arm][0]), hist, tgt, users, catalogue,
                                           bar)
            rows.append({"arm": arm, "index": str(path), **counts})
    # every arm is scored on the same users and targets: one set of replicate weights pairs them
    result = bootstrap(sums, (reference,), replicates, confidence, seed, unit=Col.USER)
    rows = [_with_interval(row, result["rates"][row["arm"]]) for row in rows]
    differences = [{"arm": d["method"], **{k: v for k, v in d.items() if k != "method"}}
                   for d in result["differences"]]
    return {
        "history": str(history), "test": str(test), "index": str(index_dir),
        "control_index": str(control_index) if control_index is not None else None,
        "targets": list(targets), "config": config_dict(cfg), "users": len(users),
        "target_events": tgt.height, "catalogue_items": catalogue, "arms": rows, "differences": differences,
        "bootstrap": {"replicates": replicates, "confidence": confidence, "seed": seed, "unit": Col.USER},
        "notes": notes, "seconds": time.perf_counter() - t0,
    }


def _with_interval(row: dict[str, Any], rate: dict[str, float | None]) -> dict[str, Any]:
    """``row`` with ``hit_rate_low`` and ``hit_rate_high`` right after its ``hit_rate``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value
        if key == "hit_rate":
            out["hit_rate_low"], out["hit_rate_high"] = rate["low"], rate["high"]
    return out


def user_targets(hist: pl.DataFrame, test: pl.DataFrame, targets: tuple[str, ...],
                 item_kind: pl.DataType | None = None) -> pl.DataFrame:
    """The targets of users who have history: one row per carted/purchased test event (a multiset),
    ``user_id, item_id, refinding``. Re-finding is ``recs.eval.novelty``'s rule (the one of
    ``eval-hitrate``) with the whole history earlier than every target: the user had any event on
    the item before the cut-off."""
    tgt = test.filter(pl.col(Col.INTERACTION).is_in(list(targets))).select(Col.USER, Col.ITEM)
    if item_kind is not None:
        tgt = tgt.with_columns(pl.col(Col.ITEM).cast(item_kind))
    tgt = tgt.join(hist.select(Col.USER).unique(), on=Col.USER, how="semi", maintain_order="left")
    events = hist.select(Col.USER, Col.ITEM, pl.lit(0).alias(_ORDER))
    marked = mark_refinding(events, tgt.with_columns(pl.lit(1).alias(_ORDER)), Col.USER, order=_ORDER)
    return marked.select(Col.USER, Col.ITEM, REFINDING)


def _score_arm(rec: Recommender, cfg: RecommendConfig, hist: pl.DataFrame, tgt: pl.DataFrame, users: pl.Series,
               catalogue: int, bar: Any) -> tuple[dict[str, Any], pl.DataFrame]:
    """The arm's counts, and its hits and targets per user (``intervals.unit_sums``)."""
    per_user: list[pl.DataFrame] = []
    counts = {"users": len(users), "users_with_list": 0, "users_with_hit": 0, "list_rows": 0}
    parts = {REFINDING: [0, 0], "discovery": [0, 0]}  # targets, hits
    reached: list[pl.Series] = []
    for keys, block in key_blocks(hist, Col.USER, cfg.block_users):  # hist holds exactly ``users``
        lists = rec.recommend_batch(block, key=Col.USER, module=cfg.module)
        block_tgt = tgt.filter(pl.col(Col.USER).is_in(keys.implode()))
        shown = lists.select(Col.USER, pl.col(Col.CANDIDATE).alias(Col.ITEM))
        kind = comparison_dtype(block_tgt.schema[Col.ITEM], shown.schema[Col.ITEM], where="candidate ids")
        if kind is not None:
            shown = shown.with_columns(pl.col(Col.ITEM).cast(kind))
            block_tgt = block_tgt.with_columns(pl.col(Col.ITEM).cast(kind))
        scored = block_tgt.join(shown.with_columns(pl.lit(True).alias("hit")), on=[Col.USER, Col.ITEM], how="left")
        scored = scored.with_columns(pl.col("hit").fill_null(False))
        per_user.append(unit_sums(scored, Col.USER))
        for name, part in ((REFINDING, scored.filter(pl.col(REFINDING))),
                           ("discovery", scored.filter(~pl.col(REFINDING)))):
            parts[name][0] += part.height
            parts[name][1] += int(part["hit"].sum())
        counts["users_with_hit"] += scored.filter(pl.col("hit"))[Col.USER].n_unique()
        counts["users_with_list"] += lists[Col.USER].n_unique()
        counts["list_rows"] += lists.height
        reached.append(lists[Col.CANDIDATE].unique())
        bar.update(len(keys))
    n_targets = parts[REFINDING][0] + parts["discovery"][0]
    n_hits = parts[REFINDING][1] + parts["discovery"][1]
    distinct = pl.concat(reached).n_unique() if reached else 0
    out = {
        "targets": n_targets, "hits": n_hits, "hit_rate": _rate(n_hits, n_targets),
        "users_with_hit": counts["users_with_hit"], "user_hit_share": _rate(counts["users_with_hit"], len(users)),
        "users": len(users), "users_with_list": counts["users_with_list"],
        "mean_list_length": _rate(counts["list_rows"], counts["users_with_list"]),
        "catalogue_reach": _rate(distinct, catalogue),
    }
    for name, (t, h) in parts.items():
        out.update({f"{name}_targets": t, f"{name}_hits": h, f"{name}_hit_rate": _rate(h, t)})
    empty = tgt.clear().with_columns(pl.lit(None, pl.Boolean).alias("hit"))  # no users: no blocks
    return out, pl.concat(per_user) if per_user else unit_sums(empty, Col.USER)


def _rate(num: int, den: int) -> float:
    return num / den if den else float("nan")
