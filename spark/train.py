"""``recs train-embeddings --engine spark``: tokens, pairs and corpus on Spark; gensim on this machine.

Stages, each a ``progress`` stage and a manifest timing:

1. ``spark session``: the active session, or a quiet one (``recs.spark.session``; Java checked first),
   after the input's listing and footers were checked here (a CSV is refused before a JVM starts);
2. ``read sessions``: values checked on Spark, events and sessions counted (``recs.spark.read``);
3. ``tokens``: (item, interaction) counted on Spark, ranked here by the shared rule (``recs.spark.tokens``);
4. ``corpus``: events joined to token ids, range-partitioned by session, sorted, one text part per
   partition (``recs.spark.corpus``); the sorted sequences are persisted for the next stage;
5. ``co-occurrence``: per-task counting, one shuffle by p, per-task top-k, pairs as parquet (``recs.spark.cooc``);
6. ``corpus file``: the parts streamed into the one file gensim reads (or read in place, ``iterable``);
7. ``training``: ``recs.embeddings.train.fit_vectors``, the polars engine's own trainer.

Same input, same TrainConfig: the same vocabulary, pairs and corpus lines as the polars engine, so
with ``workers=1`` the same vectors (``tests/spark/test_spark_parity.py``).
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from recs.columns import Col
from recs.config import CORPUS_MODES, TrainConfig, TrainEngineConfig, config_dict, mask_secrets, parse_spark_conf
from recs.embeddings.epochs import auto_epochs
from recs.embeddings.model import EmbeddingModel
from recs.embeddings.train import fit_vectors, model_counts
from recs.errors import InputError
from recs.progress import NullProgress, Progress
from recs.sessions.times import DEFAULT_TIME_UNIT
from recs.spark.chunks import CHUNK_EVENTS
from recs.spark.cooc import write_pairs
from recs.spark.corpus import LinesIterable, concatenate, part_files, write_pair_lines, write_session_lines
from recs.spark.failures import spark_failures
from recs.spark.read import ReadPlan, plan_read, plan_read_uri, read_spark_sessions
from recs.spark.session import (
    default_parallelism,
    effective_settings,
    job_group,
    master_of,
    session_settings,
    setting_given,
    spark_session,
)
from recs.spark.tokens import count_tokens, spark_sequences
from recs.spark.uri import is_uri
from recs.spark.work import SparkWork, check_reach, needs_check, work_uri

WORK_HINT = ("on a cluster the work directory must be storage every node reads and writes: give --work-dir URI "
             "(hdfs://..., s3a://..., or a shared mount), or put --out on a shared mount")
READ_HINT = ("this machine listed it, so Spark's executors do not reach the input as it does: on a cluster give a "
             "path every node mounts, or a URI with its connector and credentials on every node")
INPUT_LISTING = "input_listing"  # manifest key train_to_dir moves into "input" (a URI input's fingerprint)
EVENTS_PER_PARTITION = 500_000  # about two per-task chunks (recs.spark.chunks); see docs/scaling.md


def session_partitions(spark: Any, n_events: int) -> int:
    """Session partitions: ``spark.sql.shuffle.partitions`` when it was set for the session (spark-submit
    ``--conf``, the builder), else one per ``EVENTS_PER_PARTITION`` events and at least one per core.
    Spark's own default (200) is not used: 200 tasks of a few thousand events each cost more in task
    overhead than they count."""
    key = "spark.sql.shuffle.partitions"
    if setting_given(spark, key):
        return int(spark.conf.get(key))
    return max(default_parallelism(spark), -(-n_events // EVENTS_PER_PARTITION))


@dataclass(frozen=True)
class SparkCorpus:
    """What the Spark stages leave in the work directory, and the counts the manifest records."""

    vocab: pl.DataFrame
    n_events: int
    n_sessions: int
    n_items: int
    corpus_words: int
    lines_dir: Path  # text parts of the session corpus, in session order
    pairs_dir: Path | None  # parquet parts of the kept pairs, in (p, q) order; None when k is 0
    partitions: int


def spark_corpus(
    spark: Any,
    sessions_path: str | Path | ReadPlan,
    cfg: TrainConfig,
    work: Path | SparkWork,
    progress: Progress,
    timings: dict[str, float],
    time_unit: str = DEFAULT_TIME_UNIT,
    partitions: int | None = None,
    chunk_events: int = CHUNK_EVENTS,
) -> SparkCorpus:
    """Stages 2-5 of the module doc: read and check, count tokens, write corpus parts and pairs under ``work``.

    A failed Spark job is one RecsError naming the stage (the input, for the read), the executor and the
    cause (``recs.spark.failures``): a part the executors cannot open, a Python worker without recs."""
    from pyspark import StorageLevel

    given = sessions_path.source.given if isinstance(sessions_path, ReadPlan) else str(sessions_path)
    t = time.perf_counter()
    with progress.stage("read sessions", unit="event") as bar, job_group(spark, "read sessions"), \
            spark_failures(f"reading {given}", unreachable_hint=READ_HINT):
        events = read_spark_sessions(spark, sessions_path, time_unit)
        bar.update(events.n_events)
    timings["read_s"] = time.perf_counter() - t

    t = time.perf_counter()
    with progress.stage("tokens", unit="token") as bar, job_group(spark, "tokens"), \
            spark_failures(f"counting the tokens of {given}"):
        tokens = count_tokens(events, cfg.min_count, work)
        bar.update(tokens.vocab.height)
    vocab = tokens.vocab
    if vocab.height < 2:
        raise InputError(
            f"only {vocab.height} token(s) occur at least --min-count {cfg.min_count} times; nothing to learn"
        )
    timings["tokenize_s"] = time.perf_counter() - t

    partitions = partitions or session_partitions(spark, events.n_events)
    corpus_words = int(vocab[Col.COUNT].sum())  # every in-vocabulary event is one word of the corpus
    with spark_failures("handing the token table to Spark"):
        sequences = spark_sequences(events, vocab, work, partitions).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        t = time.perf_counter()
        with progress.stage("corpus", unit="word") as bar, job_group(spark, "corpus"), \
                spark_failures("writing the session corpus"):
            lines_dir = write_session_lines(sequences, work, chunk_events)
            bar.update(corpus_words)
        timings["corpus_s"] = time.perf_counter() - t

        t = time.perf_counter()
        with progress.stage("co-occurrence", unit="event") as bar, job_group(spark, "co-occurrence"), \
                spark_failures("counting co-occurrence pairs"):
            pairs_dir = write_pairs(sequences, cfg.cooc, vocab.height, work, partitions, chunk_events)
            bar.update(corpus_words)
        timings["cooccurrence_s"] = time.perf_counter() - t
    finally:
        sequences.unpersist()
    return SparkCorpus(vocab, events.n_events, events.n_sessions, tokens.n_items, corpus_words, lines_dir, pairs_dir,
                       partitions)


def train_spark(
    sessions_path: str | Path,
    cfg: TrainConfig,
    engine: TrainEngineConfig,
    progress: Progress | None = None,
    work: Path | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
    work_dir: str | None = None,
) -> EmbeddingModel:
    """Train on the sessions at ``sessions_path`` with the counting on Spark (module doc).

    ``sessions_path`` may be a Hadoop URI (``file://``, ``s3a://``, ``hdfs://``): it is then listed and its
    footers checked through the session's Hadoop client (``recs.spark.uri``), and the manifest gets its
    fingerprint from that listing (``INPUT_LISTING``).

    ``work`` holds Spark's outputs and the corpus file (``train_to_dir`` puts it beside the output).
    Spark's executors write their outputs there, so on a cluster it must be on storage they and this
    machine share, unless ``work_dir`` (``--work-dir``) names a URI every node reads and writes: then
    they write there and this machine copies their outputs down into ``work`` (``recs.spark.work``).
    Either way, off a local master the location is proved with two tiny jobs before the input is read.
    """
    cfg.validate()
    engine.validate()
    progress = progress or NullProgress()
    if work is None:
        raise InputError("train_spark needs a work directory that Spark's executors can write")
    timings: dict[str, float] = {}

    conf = parse_spark_conf(engine.spark_conf)
    with ExitStack() as stack:
        t = time.perf_counter()
        plan = None if is_uri(sessions_path) else plan_read(sessions_path, time_unit)  # a CSV: refused before a JVM
        with progress.stage("spark session"):
            spark = spark_session(engine.spark_master, conf, engine.spark_remote)
            stack.enter_context(session_settings(spark, conf))
        if plan is None:  # a URI: listed and checked through the JVM's Hadoop client, so after the session
            plan = plan_read_uri(spark, str(sessions_path), time_unit)
        timings["spark_session_s"] = time.perf_counter() - t
        shared = stack.enter_context(SparkWork(spark, work, work_dir, kind="train"))
        if needs_check(spark):  # executors that may be elsewhere: prove they share the work location
            t = time.perf_counter()
            with progress.stage("work directory check"):
                check_reach(shared, shared.where("the work directory beside --out"), WORK_HINT)
            timings["work_check_s"] = time.perf_counter() - t
        sc = spark_corpus(spark, plan, cfg, shared, progress, timings, time_unit, engine.partitions)
        settings = effective_settings(spark, conf)

    t = time.perf_counter()
    with progress.stage("corpus file"):
        pair_path = work / "pairs.txt"
        n_pair_words = write_pair_lines(sc.pairs_dir, pair_path)
        parts = part_files(sc.lines_dir, ".txt")
        if cfg.corpus_mode == CORPUS_MODES[0]:  # "file": one file for gensim's C reader
            sess_path = work / "sessions.txt"
            concatenate(parts, sess_path)
            sess_args: dict[str, Any] = {"corpus_file": str(sess_path), "total_words": sc.corpus_words}
            pair_args: dict[str, Any] = {"corpus_file": str(pair_path), "total_words": n_pair_words}
        else:
            corpus = LinesIterable(parts)
            sess_args = {"corpus_iterable": corpus, "total_examples": len(corpus)}
            pair_args = {"corpus_iterable": LinesIterable([pair_path]), "total_examples": n_pair_words // 2}
    timings["corpus_file_s"] = time.perf_counter() - t

    n_pairs = n_pair_words // 2
    resolved = replace(cfg, epochs=cfg.epochs or auto_epochs(sc.corpus_words))
    vin, vout = fit_vectors(sc.vocab, sc.n_sessions, sess_args, pair_args, n_pairs, resolved, progress, timings)
    counts = model_counts(sc.vocab, sc.n_events, sc.n_sessions, sc.n_items, sc.corpus_words, n_pairs)
    described = {"name": engine.engine, "master": master_of(spark), "spark_version": spark.version,
                 "partitions": sc.partitions,
                 "config": {**config_dict(engine), "spark_conf": mask_secrets(conf)},  # never a secret as given
                 "spark_conf": settings, **({"work_dir": work_uri(work_dir)} if work_dir else {})}
    manifest = {"config": config_dict(resolved), "counts": counts, "timings": timings, "engine": described}
    if (listed := plan.fingerprint()) is not None:
        manifest[INPUT_LISTING] = listed  # train_to_dir records it with the input (it cannot hash a URI itself)
    return EmbeddingModel(sc.vocab, vin, vout, manifest)
