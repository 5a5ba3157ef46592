"""``recs synth`` and ``recs split``: make a planted log, cut a log into train and test by time."""

from __future__ import annotations

from pathlib import Path

import click

from recs.atomic import Outputs
from recs.cli.options import SYNTH_DEFAULTS, json_option, quiet_option, split_options, time_unit_option
from recs.cli.render import console, key_values, transposed, write_json
from recs.config import SplitConfig
from recs.paths import check_paths
from recs.progress import TqdmProgress
from recs.sessions.io import read_sessions, sessions_output_kind, write_sessions
from recs.sessions.split import split_sessions
from recs.sessions.synth import SynthConfig, generate


@click.command("synth")
@click.option("--events", type=int, default=SYNTH_DEFAULTS.events, show_default=True,
              help="Number of events to generate.")
@click.option("--seed", type=int, default=SYNTH_DEFAULTS.seed, show_default=True,
              help="Random seed; same seed, same log.")
@click.option("--items", type=int, default=None, help="Catalogue size [default: events / 8, a sparse catalogue].")
@click.option("--days", type=int, default=SYNTH_DEFAULTS.days, show_default=True,
              help="Days the sessions are spread over.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Output sessions file (.parquet or .csv).")
@click.option("--world", type=click.Path(path_type=Path), default=None,
              help="Also write the planted truth (item -> category, shop), as parquet or CSV by its suffix.")
@click.option("--new-items", type=float, default=SYNTH_DEFAULTS.new_items, show_default=True,
              help="Share of items listed on the last day (cold start): their earlier events are dropped.")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="Also write the catalogue: every item with shop_id, category and listed_at, as parquet or "
                   "CSV by its suffix.")
@click.option("--variant", default=SYNTH_DEFAULTS.variant, show_default=True,
              help=f"Which world: {' or '.join(SynthConfig.VARIANTS)} (every cart follows a click on the same "
                   "item and sessions click items of one co-view cluster, so item-level methods are strong).")
@quiet_option
def synth_cmd(events: int, seed: int, items: int | None, days: int, out: Path, world: Path | None,
              new_items: float, catalog: Path | None, variant: str, quiet: bool) -> None:
    """Generate a marketplace log with planted structure.

    Items sit in a two-level category taxonomy and in shops, with Zipf popularity; each category has
    complementary categories. A session clicks substitutes in one category, may favorite, carts one
    or two, may go on to a complementary category, and buys some carted items. About 90% clicks, 5%
    carts, 3% favorites, 2% purchases; heavy-tailed session lengths; several sessions per user.

    With --new-items 0.2 a fifth of the items are listed on the last day: none of their events falls
    before it, so a split at the last day meets them in test only (cold start).

    With --variant view-before-cart every cart and purchase is of an item the session clicked before,
    and sessions click items that are viewed together (one small co-view cluster of a category): what
    is viewed together predicts what is carted, so on Click-to-Cart item-level methods do as well as ours.

    \b
    Examples:
      recs synth --events 1000000 --seed 7 --out runs/synth.parquet
      recs synth --new-items 0.2 --out runs/synth.parquet --catalog runs/catalog.parquet
      recs synth --variant view-before-cart --out runs/vbc.parquet
    """
    cfg = SynthConfig(events=events, seed=seed, items=items, days=days, new_items=new_items, variant=variant)
    cfg.validate()
    check_paths([], [("--out", out), ("--world", world), ("--catalog", catalog)])
    sessions_output_kind(out, "--out")
    for path, option in ((world, "--world"), (catalog, "--catalog")):
        if path is not None:
            sessions_output_kind(path, option)
    # one stage: a failure prints its Error line alone, never after a line for a stage that went well
    with TqdmProgress(not quiet).stage("generating", total=cfg.events, unit="event") as bar:
        frame, w = generate(cfg)
        with Outputs() as outputs:  # every file appears, or none
            write_sessions(frame, out, outputs)
            if world is not None:
                write_sessions(w.frame(), world, outputs)
            if catalog is not None:
                write_sessions(w.catalog(), catalog, outputs)
        bar.update(frame.height)
    mix = frame["interaction"].value_counts(normalize=True).sort("proportion", descending=True)
    console.print(key_values(f"wrote {out}", {
        "events": frame.height, "sessions": frame["session_id"].n_unique(), "users": frame["user_id"].n_unique(),
        "items": frame["item_id"].n_unique(),
        **({"new items (listed on the last day)": int(w.item_new.sum())} if new_items else {}),
        **{f"share {i}": p for i, p in mix.iter_rows()},
    }))


@click.command("split")
@click.argument("sessions", type=click.Path(path_type=Path))
@split_options
@click.option("--train", "train_out", type=click.Path(path_type=Path), required=True,
              help="Output file for training sessions (.parquet or .csv).")
@click.option("--test", "test_out", type=click.Path(path_type=Path), required=True,
              help="Output file for test sessions.")
@json_option(what="the summary")
@time_unit_option
@quiet_option
def split_cmd(sessions: Path, test_days: int, cutoff: str | None, train_out: Path, test_out: Path,
              json_out: Path | None, time_unit: str, quiet: bool) -> None:
    """Split SESSIONS by time: train = sessions starting before T, test = those starting in the
    --test-days after T (the paper's offline set-up). A session goes wholly to one side.

    \b
    Example:
      recs split runs/synth.parquet --train runs/train.parquet --test runs/test.parquet
    """
    check_paths([("SESSIONS", sessions)], [("--train", train_out), ("--test", test_out), ("--json", json_out)])
    sessions_output_kind(train_out, "--train")
    sessions_output_kind(test_out, "--test")
    # one stage: a failure prints its Error line alone, never after a line for a stage that went well
    with TqdmProgress(not quiet).stage("splitting", unit="event") as bar:
        events = read_sessions(sessions, time_unit)
        result = split_sessions(events, SplitConfig(test_days=test_days, cutoff=cutoff))
        summary = result.summary()
        with Outputs() as outputs:  # all three files appear, or none
            write_sessions(result.train, train_out, outputs)
            write_sessions(result.test, test_out, outputs)
            if json_out:
                write_json(json_out, summary, outputs)
        bar.update(events.height)
    rows = [{"side": side, "file": str(path), **{k: v for k, v in summary[side].items()}}
            for side, path in (("train", train_out), ("test", test_out))]
    # train and test side by side, one line per number: a path and two times do not fit 80 columns in one row
    console.print(transposed(f"split at {summary['cutoff']} (test until {summary['test_end']})", rows, "side",
                             ["file", "events", "sessions", "items", "first", "last"], headers={"side": ""}))


COMMANDS = [synth_cmd, split_cmd]
