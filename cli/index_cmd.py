"""``recs build-index``: MODEL_DIR (ours) or TRAIN sessions (any method) in, INDEX_DIR with candidate sets out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.console import RenderableType

from recs.candidates.build import build_index, build_method_index
from recs.candidates.registry import METHODS, OURS, MethodConfig, method_spec
from recs.cli.options import (
    COMPARE_DEFAULTS,
    INDEX_DEFAULTS,
    blend_config,
    blend_options,
    config_option,
    given,
    index_uri_conf_option,
    quiet_option,
    score_options,
    spark_conf_option,
    spark_remote_option,
    time_unit_option,
    train_options,
    work_dir_option,
)
from recs.cli.render import console, table
from recs.config import (
    ENGINES,
    ROLLUPS,
    BlendConfig,
    CompareConfig,
    IndexConfig,
    IndexEngineConfig,
    TrainConfig,
    parse_pairs,
    parse_spark_conf,
)
from recs.config_file import read_config
from recs.errors import ConfigError
from recs.progress import TqdmProgress
from recs.spark.uri import is_uri

DEFAULT_MODEL = Path("model")
ENGINE_DEFAULTS = IndexEngineConfig()
# option parameter -> the config field it sets; an option given wins over --config's [index] / [train]
INDEX_FIELDS = {name: name for name in ("pairs", "k", "m", "ef_construction", "ef_search", "score", "backoff",
                                        "shrink", "rollup", "rollup_per_group", "threads")}
METHOD_TRAIN_FIELDS = {"dim": "dim", "epochs": "epochs", "cooc_k": "cooc.k", "seed": "seed", "threads": "workers"}


def _method_config(train: TrainConfig, als_factors: int, blend: BlendConfig | None = None) -> MethodConfig:
    """The method settings ``recs compare`` gives a method with the same options (through the same
    ``CompareConfig.resolved``, --threads as compare's --workers), so an index built here scores
    exactly as compare scored that method."""
    cfg = CompareConfig(
        seed=train.seed, workers=train.workers, train=train,
        als=replace(COMPARE_DEFAULTS.als, factors=als_factors), blend=blend or COMPARE_DEFAULTS.blend,
    )
    return cfg.resolved().method_config()  # build_method_index sets `index` from the command's own options


@click.command("build-index")
@click.option("--method", default=OURS, show_default=True,
              help=f"Method whose candidates are written, any of recs compare: {', '.join(METHODS)}.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help=f"With --method {OURS}: model directory written by train-embeddings [default: {DEFAULT_MODEL}].")
@click.option("--sessions", type=click.Path(path_type=Path), default=None,
              help=f"Training sessions to fit --method on (needed by every method but {OURS}, which "
                   "trains on them instead of reading --model).")
@click.option("--out", type=click.Path(file_okay=False, path_type=str), default="index", show_default=True,
              help="Index directory to write (replaced atomically if it is a recs index); with --engine spark "
                   "also a Hadoop URI (s3a://, hdfs://, file://), committed by its manifest.")
@click.option("--pairs", default=",".join(f"{s}:{t}" for s, t in INDEX_DEFAULTS.pairs), show_default=True,
              help="Candidate sets as SOURCE:TARGET interactions, comma-separated (any pair in the model or TRAIN).")
@click.option("--k", type=int, default=INDEX_DEFAULTS.k, show_default=True, help="Candidates per item.")
@click.option("--m", type=int, default=INDEX_DEFAULTS.m, show_default=True, help="HNSW M (graph degree).")
@click.option("--ef-construction", type=int, default=INDEX_DEFAULTS.ef_construction, show_default=True,
              help="HNSW efConstruction.")
@click.option("--ef-search", type=int, default=INDEX_DEFAULTS.ef_search, show_default=True,
              help="HNSW efSearch (raised to k if lower; doubled for --score prob and in-out, whose index "
                   "is searched through the MIPS-to-L2 transform).")
@score_options
@click.option("--threads", type=int, default=INDEX_DEFAULTS.threads, show_default=True,
              help="Faiss threads (with --sessions also training and ALS threads).")
@click.option("--seed", type=int, default=COMPARE_DEFAULTS.seed, show_default=True,
              help="With --sessions: seed of the method's training or ALS (as recs compare --seed).")
@train_options
@blend_options
@click.option("--als-factors", type=int, default=COMPARE_DEFAULTS.als.factors, show_default=True,
              help="With --sessions and --method mf or interaction-mf: ALS factors.")
@click.option("--engine", type=click.Choice(list(ENGINES)), default=ENGINE_DEFAULTS.engine, show_default=True,
              help=f"Where the HNSW search of --method {OURS} runs: this process, or Spark tasks over "
                   "partitions of the query items (needs the [spark] extra and Java 17+; on a cluster --out "
                   "must be on storage every node sees, or a URI, or give --work-dir).")
@click.option("--spark-master", default=None,
              help="With --engine spark: Spark master URL (local[4], spark://host:7077, yarn) [default: the "
                   "active session, else $RECS_SPARK_MASTER, else local[*]].")
@spark_conf_option
@spark_remote_option
@work_dir_option
@click.option("--shards", type=int, default=ENGINE_DEFAULTS.shards, show_default=True,
              help="With --engine spark: split each target's index into N shards (for an index larger than "
                   "one executor's memory); every shard is searched and the per-shard top-k merged.")
@click.option("--catalog", type=click.Path(path_type=Path), default=None,
              help="Catalogue (.parquet or .csv: item_id, shop_id and/or category, optional listed_at): every "
                   "item in it gets candidates and can be one; an item without a vector takes its shop's, "
                   "else its category's, else (as a query) the most frequent targets. Without it the "
                   "training sessions' own shop_id / category serve, if they had them. With --sessions, "
                   "for same-shop / same-category: the items' groups (new listings get their group's list).")
@click.option("--rollup", type=click.Choice(list(ROLLUPS)), default=INDEX_DEFAULTS.rollup, show_default=True,
              help="How a shop or category gets its vector: mean = count-weighted mean of its known items', "
                   "trained = its own tokens (train-embeddings --entity shop_id), auto = trained when the "
                   "model has them, else mean; off = no roll-up.")
@click.option("--rollup-per-group", type=int, default=INDEX_DEFAULTS.rollup_per_group, show_default=True,
              help="At most this many rolled-up items of one group per list: they share one vector, so "
                   "their scores tie (order: newest listed_at first, then item id).")
@config_option
@time_unit_option
@quiet_option
def index_cmd(method: str, model_dir: Path | None, sessions: Path | None, out: str | Path, pairs: str, k: int, m: int,
              ef_construction: int, ef_search: int, score: str, backoff: bool, shrink: float, threads: int,
              seed: int, dim: int, epochs: int | None, cooc_k: int, sources: tuple[str, ...],
              valid_share: float, valid_days: int | None, als_factors: int, engine: str,
              spark_master: str | None, spark_conf: tuple[str, ...], spark_remote: str | None, work_dir: str | None,
              shards: int,
              catalog: Path | None, rollup: str, rollup_per_group: int,
              config_file: Path | None, time_unit: str, quiet: bool) -> None:
    """Write a method's candidate sets: ours from a model (Faiss HNSW per target), any other method fitted on TRAIN.

    For every item with a SOURCE vector (with --backoff: every item in the model), its k best
    TARGET candidates by --score (the item itself left out), written to
    INDEX_DIR/candidates/<source>_to_<target>.parquet with columns item_id, candidate_item_id,
    rank, score. With --method NAME --sessions TRAIN any method of recs compare is fitted on TRAIN
    (with compare's defaults) and writes the same files and manifest, so eval-hitrate scores it as it
    scores ours; an item-level method writes its one list for every pair.

    \b
    Examples:
      recs build-index --model runs/model --out runs/index --pairs click:cart,cart:cart,click:click
      recs build-index --method co-visitation --sessions runs/train.parquet --out runs/covisit_index
      recs build-index --method same-shop --sessions runs/train.parquet --out runs/shop_index \\
        --pairs cart:purchase,click:purchase
      recs build-index --model runs/model --out runs/index --engine spark --spark-master 'local[4]' --shards 4
      recs build-index --model runs/model --out runs/index --config runs/tuned.toml
    """
    spec = method_spec(method)  # an unknown name fails before anything is read
    # a Hadoop URI (s3a://..., file:///...) stays text: Path() would fold its '//' (recs.spark.store)
    out = out if is_uri(out) else Path(out)
    if work_dir is not None and sessions is not None:
        raise ConfigError(f"--work-dir {work_dir} is for --engine spark, which searches our model from --model")
    if isinstance(out, str) and sessions is not None:
        raise ConfigError(f"--out {out}: an index at a URI is our model's, from --model, searched with --engine spark")
    if model_dir is not None and spec.name != OURS:
        raise ConfigError(f"--model is a trained model of {OURS}; --method {spec.name} is fitted on --sessions TRAIN")
    if model_dir is not None and sessions is not None:
        raise ConfigError("give --model MODEL_DIR (a trained model) or --sessions TRAIN (train here), not both")
    if sessions is None and spec.name != OURS:
        raise ConfigError(f"--method {spec.name} is fitted on training sessions: give --sessions TRAIN")
    if sessions is not None and catalog is not None and not spec.takes_catalog:
        raise ConfigError("--catalog rolls up the vectors of a trained model: give --model MODEL_DIR, not --sessions "
                          "(with --sessions only same-shop and same-category read a catalogue)")
    cfg = IndexConfig(pairs=parse_pairs(pairs), k=k, m=m, ef_construction=ef_construction, ef_search=ef_search,
                      score=score, backoff=backoff, shrink=shrink, rollup=rollup, rollup_per_group=rollup_per_group,
                      threads=threads)
    file = read_config(config_file)
    cfg = file.index(cfg, keep=given(INDEX_FIELDS))
    where = IndexEngineConfig(engine=engine, spark_master=spark_master, shards=shards, spark_conf=spark_conf,
                              spark_remote=spark_remote)
    progress = TqdmProgress(not quiet)
    if sessions is None:
        manifest = build_index(model_dir or DEFAULT_MODEL, out, cfg, progress, where, catalog, work_dir)
    else:
        train = replace(COMPARE_DEFAULTS.train, dim=dim, epochs=epochs, seed=seed, workers=threads,
                        cooc=replace(COMPARE_DEFAULTS.train.cooc, k=cooc_k))
        train = file.train(train, keep=given(METHOD_TRAIN_FIELDS))
        manifest = build_method_index(spec.name, sessions, out, cfg, _method_config(train, als_factors, blend_config(
            (spec.name,), sources, valid_share, valid_days, file)), progress,
                                      time_unit, where, catalog)
    rows = [{"candidate_set": name, "items": s["items"], "rows": s["rows"], "mean_list_length": s["mean_list_length"]}
            for name, s in manifest["candidate_sets"].items()]
    how = f", score: {cfg.score}, backoff: {'on' if cfg.backoff else 'off'}" if spec.searches_vectors else ""
    if engine != ENGINE_DEFAULTS.engine:
        how += f", engine: {engine} on {manifest['engine']['master']}" + (f", {shards} shards" if shards > 1 else "")
    console.print(table(f"wrote {out} (method: {spec.name}{how}, k={cfg.k})", rows))
    if "rollup" in manifest.get("catalog", {}):
        console.print(rollup_table(manifest))
    elif "catalog" in manifest:
        console.print(f"catalogue: {manifest['catalog']['path']} ({manifest['catalog']['items']:,} items)")


def rollup_table(manifest: dict) -> RenderableType:
    """How many items asked through each level of the cold-start chain, one row per set: a table, so
    a count never wraps away from its level (a line of text put a lone ``0`` under ``popular``)."""
    cat = manifest["catalog"]
    rows = [{"candidate_set": name, **entry.get("rollup", {}).get("queries", {})}
            for name, entry in manifest["candidate_sets"].items()]
    title = (f"cold start ({cat['rollup']['representation']} vectors, catalogue from {cat['from']}, "
             f"{cat['items']:,} items): queries by level")
    levels = list(dict.fromkeys(level for r in rows for level in r if level != "candidate_set"))
    return table(title, rows, ["candidate_set", *levels])


@click.command("fetch-index")
@click.argument("uri")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Local index directory to write (replaced atomically if it is a recs index).")
@index_uri_conf_option
@quiet_option
def fetch_cmd(uri: str, out: Path, spark_conf: tuple[str, ...], quiet: bool) -> None:
    """Copy the index build-index --engine spark --out URI committed at URI into a local index directory.

    Exactly the files the index's manifest names are copied (not a dead run's beside them), through
    Spark's Hadoop client (the [spark] extra, Java 17+; s3a:// needs its connector, docs/scaling.md),
    each checked against the size and hash recorded there, into the layout every command reads:
    recommend, eval-recommend and serve take the directory (eval-hitrate and check also read a URI).

    \b
    Example:
      recs fetch-index s3a://shop-indexes/ours/ --out runs/index-ours
    """
    from recs.spark.fetch import fetch_to_dir

    with TqdmProgress(not quiet).stage("copying the index down"):
        manifest = fetch_to_dir(uri, out, parse_spark_conf(spark_conf))
    rows = [{"candidate_set": name, "items": s["items"], "rows": s["rows"], "mean_list_length": s["mean_list_length"]}
            for name, s in manifest["candidate_sets"].items()]
    console.print(table(f"wrote {out} (from {uri}, run {manifest['fetched']['run']}, k={manifest['config']['k']})",
                        rows))


COMMANDS = [index_cmd, fetch_cmd]
