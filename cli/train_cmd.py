"""``recs train-embeddings``: sessions in, MODEL_DIR out."""

from __future__ import annotations

from pathlib import Path

import click

from recs.cli.options import (
    COOC_DEFAULTS,
    TRAIN_DEFAULTS,
    config_option,
    given,
    quiet_option,
    spark_conf_option,
    spark_remote_option,
    time_unit_option,
    train_options,
    work_dir_option,
)
from recs.cli.render import SECONDS, console, key_values
from recs.config import CORPUS_MODES, ENGINES, ENTITIES, CoocConfig, TrainConfig, TrainEngineConfig
from recs.config_file import read_config
from recs.embeddings.train import train_to_dir
from recs.progress import TqdmProgress
from recs.spark.uri import is_uri

ENGINE_DEFAULTS = TrainEngineConfig()
# option parameter -> TrainConfig field it sets (dotted below [train]); these win over --config when given
TRAIN_FIELDS = {"dim": "dim", "epochs": "epochs", "cooc_k": "cooc.k", "window": "window", "negative": "negative",
                "min_count": "min_count", "sample": "sample", "workers": "workers", "seed": "seed",
                "cooc_horizon": "cooc.horizon", "cooc_same_item": "cooc.same_item", "corpus_mode": "corpus_mode",
                "entities": "entities"}


@click.command("train-embeddings")
@click.argument("sessions", type=click.Path(path_type=str))
@click.option("--out", type=click.Path(path_type=Path), default=Path("model"), show_default=True,
              help="Model directory to write (replaced atomically if it is a recs model).")
@train_options
@click.option("--window", type=int, default=TRAIN_DEFAULTS.window, show_default=True,
              help="Skip-gram window (paper: 5).")
@click.option("--negative", type=int, default=TRAIN_DEFAULTS.negative, show_default=True,
              help="Negative samples (paper: 5).")
@click.option("--min-count", type=int, default=TRAIN_DEFAULTS.min_count, show_default=True,
              help="Drop tokens seen fewer times (1 keeps one-of-a-kind items).")
@click.option("--sample", type=float, default=TRAIN_DEFAULTS.sample, show_default=True,
              help="Frequency subsampling of session tokens; regularization pairs are never subsampled.")
@click.option("--workers", type=int, default=TRAIN_DEFAULTS.workers, show_default=True,
              help="Training threads (floats differ run to run when > 1).")
@click.option("--seed", type=int, default=TRAIN_DEFAULTS.seed, show_default=True, help="Random seed.")
@click.option("--cooc-horizon", type=int, default=COOC_DEFAULTS.horizon, show_default=True,
              help="Only the next N events after a token count as its successors (bounds memory).")
@click.option("--cooc-same-item/--no-cooc-same-item", default=COOC_DEFAULTS.same_item, show_default=True,
              help="Keep pairs of two interactions with one item (42:click -> 42:cart).")
@click.option("--corpus-mode", type=click.Choice(CORPUS_MODES), default=TRAIN_DEFAULTS.corpus_mode,
              show_default=True, help="gensim input: a corpus file read by C threads (faster) or a Python iterable.")
@click.option("--engine", type=click.Choice(list(ENGINES)), default=ENGINE_DEFAULTS.engine, show_default=True,
              help="Where tokens, co-occurrence pairs and the corpus are made: this process, or Spark (needs the "
                   "[spark] extra and Java 17+; SESSIONS must be parquet; on a cluster --out must be on storage "
                   "every node sees, or give --work-dir). Training is gensim on this machine either way.")
@click.option("--spark-master", default=None,
              help="With --engine spark: Spark master URL (local[4], spark://host:7077, yarn) [default: the "
                   "active session, else $RECS_SPARK_MASTER, else local[*]].")
@spark_conf_option
@spark_remote_option
@work_dir_option
@click.option("--entity", "entities", type=click.Choice(list(ENTITIES)), multiple=True,
              help="Also train a model of this column's tokens (shop_id:click, ...) with the same settings, "
                   "stored in MODEL/groups/<column>/ for cold-start roll-up; repeatable. Polars engine only.")
@config_option
@time_unit_option
@quiet_option
def train_cmd(sessions: str, out: Path, dim: int, epochs: int | None, cooc_k: int, window: int, negative: int,
              min_count: int, sample: float, workers: int, seed: int, cooc_horizon: int, cooc_same_item: bool,
              corpus_mode: str, engine: str, spark_master: str | None, spark_conf: tuple[str, ...],
              spark_remote: str | None, work_dir: str | None, entities: tuple[str, ...],
              config_file: Path | None, time_unit: str, quiet: bool) -> None:
    """Learn one vector per (item, interaction) token from SESSIONS.

    Each session becomes a sequence of tokens such as 42:click 42:cart in time order; skip-gram
    with negative sampling (gensim) learns from them, plus co-occurrence regularization pairs: for
    each token, its most frequent successors per interaction type (paper sec. 4.1). With --entity
    shop_id the same is learnt once more on shop tokens, so a listing without events can take its
    shop's vectors; when SESSIONS have shop_id or category, MODEL/items.parquet keeps each item's.

    \b
    Examples:
      recs train-embeddings runs/train.parquet --out runs/model
      recs train-embeddings runs/train.parquet --out runs/model --entity shop_id --entity category
      recs train-embeddings 'logs/dt=*/' --out runs/model --engine spark --spark-master 'local[4]'
      recs train-embeddings s3a://bucket/logs/ --out runs/model --engine spark --spark-master yarn \
        --work-dir hdfs:///tmp/recs
      recs train-embeddings runs/train.parquet --out runs/model --config runs/tuned.toml
    """
    cfg = TrainConfig(dim=dim, window=window, negative=negative, epochs=epochs, min_count=min_count, sample=sample,
                      workers=workers, seed=seed, corpus_mode=corpus_mode,
                      cooc=CoocConfig(k=cooc_k, horizon=cooc_horizon, same_item=cooc_same_item), entities=entities)
    cfg = read_config(config_file).train(cfg, keep=given(TRAIN_FIELDS))
    where = TrainEngineConfig(engine=engine, spark_master=spark_master, spark_conf=spark_conf,
                              spark_remote=spark_remote)
    # a Hadoop URI (file:///..., s3a://...) stays text: Path() would fold its '//' (recs.spark.uri)
    source = sessions if is_uri(sessions) else Path(sessions)
    manifest = train_to_dir(source, out, cfg, TqdmProgress(not quiet), time_unit=time_unit, engine=where,
                            work_dir=work_dir)
    counts, timings = manifest["counts"], manifest["timings"]
    console.print(key_values(f"wrote {out}", {
        "events": counts["events"], "sessions": counts["sessions"], "tokens": counts["tokens"],
        **{f"  {k} tokens": v for k, v in counts["tokens_per_interaction"].items()},
        "regularization pairs": counts["regularization_pairs"], "epochs": manifest["config"]["epochs"],
        "train seconds": timings["train_s"], "total seconds": timings["total_s"],
        **({"engine": f"spark on {manifest['engine']['master']}"} if "engine" in manifest else {}),
        **({"item table rows": manifest["item_table"]["rows"]} if "item_table" in manifest else {}),
        **{f"{e} tokens": g["counts"]["tokens"] for e, g in manifest.get("groups", {}).items()},
        **{f"{e} train seconds": g["timings"]["train_s"] for e, g in manifest.get("groups", {}).items()},
    }, formats={"train seconds": SECONDS, "total seconds": SECONDS,
                **{f"{e} train seconds": SECONDS for e in manifest.get("groups", {})}}))
    for w in manifest.get("warnings", []):
        console.print(f"[yellow]warning:[/yellow] {w}")


COMMANDS = [train_cmd]
