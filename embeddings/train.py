"""Train interaction-specific embeddings: skip-gram with negative sampling + co-occurrence pairs.

Data flow: sessions -> ``tokenize`` -> ``regularization_pairs`` -> corpus files -> gensim -> vectors.

Two gensim details matter for the method and are handled here rather than worked around:

* The vocabulary (and so the negative-sampling table and the subsampling rates) is built with
  ``build_vocab_from_freq`` from the *session* token counts, so the added pairs never inflate counts.
* Frequency subsampling would drop a frequent p or q out of a two-word pair sentence and silently
  lose the pair. So each epoch is two ``train`` calls on one decaying learning-rate schedule: the
  sessions with subsampling, then the pairs with ``model.sample = 0`` (gensim reads it per call).
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from types import MethodType
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from recs.artifacts import preflight_artifact
from recs.atomic import no_space_error, out_of_space, scratch_dir
from recs.columns import Col, Interaction
from recs.config import CORPUS_MODES, ENGINES, TrainConfig, TrainEngineConfig, config_dict
from recs.embeddings.cooc import regularization_pairs
from recs.embeddings.corpus import PairIterable, SessionIterable, write_pair_corpus, write_session_corpus
from recs.embeddings.epochs import auto_epochs
from recs.embeddings.groups import check_entity_columns, train_groups
from recs.embeddings.items import item_table
from recs.embeddings.model import MODEL_FORMAT, EmbeddingModel
from recs.embeddings.tokens import tokenize
from recs.errors import ConfigError, InputError
from recs.progress import NullProgress, Progress
from recs.sessions.files import fingerprint_sessions
from recs.sessions.io import read_sessions
from recs.sessions.times import DEFAULT_TIME_UNIT, check_unit
from recs.spark.uri import is_uri

if TYPE_CHECKING:
    from gensim.models import Word2Vec

# gensim (and the scipy it imports) takes about a second to import: it is imported in a thread while
# the sessions are read and tokenized (``_gensim_ahead``), and not at all by commands that only load a
# model (``recs build-index``), which imported it at start-up through the CLI before issue 23.
_GENSIM = "gensim.models"


def __getattr__(name: str) -> Any:
    """``Word2Vec``, imported on first use (PEP 562), so that ``train_mod.Word2Vec`` still names the class
    (a test replaces it with a spy: ``new_model`` uses a module-level one when set)."""
    if name == "Word2Vec":
        from gensim.models import Word2Vec

        return Word2Vec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _gensim_ahead() -> None:
    """Start importing gensim in a background thread, once; the first ``from gensim.models import``
    that needs it waits there for the import to finish (Python's per-module import lock)."""
    if _GENSIM not in sys.modules:
        threading.Thread(target=importlib.import_module, args=(_GENSIM,), name="recs-import-gensim",
                         daemon=True).start()


def _alpha_at(cfg: TrainConfig, progress: float) -> float:
    return cfg.alpha - (cfg.alpha - cfg.min_alpha) * progress


def train(
    sessions: pl.DataFrame,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
) -> EmbeddingModel:
    """Train on validated canonical sessions and return the model (vectors + vocabulary + manifest).

    ``workdir`` holds the temporary corpus files (default: a temporary directory, removed after).
    With ``workers=1`` the result is bit-for-bit reproducible for a given ``seed``; with more threads
    the vocabulary is still identical but floats differ run to run (gensim's threads race on updates).

    The item model is trained first, exactly as without ``cfg.entities``; each entity then gets a
    model of its own (``model.groups``, ``recs.embeddings.groups``) with the item model's resolved
    config, so a group model is trained for as many epochs as the item model it stands in for. When
    the sessions have shop_id and/or category, ``model.items`` is their item table
    (``recs.embeddings.items``).
    """
    cfg = cfg or TrainConfig()
    cfg.validate()
    check_entity_columns(sessions, cfg.entities)
    progress = progress or NullProgress()
    _gensim_ahead()
    model = _pipeline(sessions, cfg, progress, workdir)
    timings = model.manifest["timings"]
    t = time.perf_counter()
    model.items = item_table(sessions)
    timings["item_table_s"] = time.perf_counter() - t
    if cfg.entities:
        t = time.perf_counter()
        resolved = replace(cfg, epochs=model.manifest["config"]["epochs"])
        model.groups = train_groups(sessions, cfg.entities,
                                    lambda s, p: _pipeline(s, resolved, p, workdir), progress)
        timings["groups_s"] = time.perf_counter() - t
    return model


def _pipeline(sessions: pl.DataFrame, cfg: TrainConfig, progress: Progress, workdir: str | Path | None
              ) -> EmbeddingModel:
    """tokenize -> co-occurrence pairs -> corpus -> gensim, on sessions whose tokens are of ``item_id``."""
    timings: dict[str, float] = {}

    t = time.perf_counter()
    tok = tokenize(sessions, cfg.min_count)
    if tok.vocab.height < 2:
        raise InputError(
            f"only {tok.vocab.height} token(s) occur at least --min-count {cfg.min_count} times; nothing to learn"
        )
    timings["tokenize_s"] = time.perf_counter() - t

    resolved = replace(cfg, epochs=cfg.epochs or auto_epochs(tok.sequences.height))
    # gensim's vocabulary (Python, holding the GIL) is built in a thread while polars counts the pairs
    # and writes the corpus (native, not holding it); the model it makes is the one fit_vectors would
    # make, so the vectors are the same (tests/test_train_overlap.py)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="recs-vocab") as pool:
        vocab_model = pool.submit(new_model, tok.vocab, tok.n_sessions, resolved, timings)
        t = time.perf_counter()
        pairs = regularization_pairs(tok.sequences, tok.vocab, cfg.cooc, progress=progress)
        timings["cooccurrence_s"] = time.perf_counter() - t
        with tempfile.TemporaryDirectory(prefix="recs-corpus-", dir=workdir) as tmp:
            sess_args, pair_args = _corpus(tok.sequences, pairs, Path(tmp), cfg, timings)
            vin, vout = fit_vectors(tok.vocab, tok.n_sessions, sess_args, pair_args, pairs.height, resolved,
                                    progress, timings, model=vocab_model.result())
    counts = model_counts(tok.vocab, tok.n_events, tok.n_sessions, tok.n_items, tok.sequences.height, pairs.height)
    manifest = {"config": config_dict(resolved), "counts": counts, "timings": timings}
    return EmbeddingModel(tok.vocab, vin, vout, manifest)


def _corpus(sequences: pl.DataFrame, pairs: pl.DataFrame, tmp: Path, cfg: TrainConfig,
            timings: dict[str, float]) -> tuple[dict[str, Any], dict[str, Any]]:
    """gensim's corpus arguments for the sessions and the pairs: files in ``tmp`` (``corpus_file``
    mode, read by gensim's C threads) or iterables."""
    t = time.perf_counter()
    if cfg.corpus_mode == CORPUS_MODES[0]:  # "file": gensim reads the corpus from C threads
        sess_path, pair_path = tmp / "sessions.txt", tmp / "pairs.txt"
        n_words = write_session_corpus(sequences, sess_path)
        n_pair_words = write_pair_corpus(pairs, pair_path)
        sess_args: dict[str, Any] = {"corpus_file": str(sess_path), "total_words": n_words}
        pair_args: dict[str, Any] = {"corpus_file": str(pair_path), "total_words": n_pair_words}
    else:
        corpus = SessionIterable(sequences)
        sess_args = {"corpus_iterable": corpus, "total_examples": len(corpus)}
        pair_args = {"corpus_iterable": PairIterable(pairs, corpus.words), "total_examples": pairs.height}
    timings["corpus_s"] = time.perf_counter() - t
    return sess_args, pair_args


def new_model(vocab: pl.DataFrame, n_sessions: int, cfg: TrainConfig, timings: dict[str, float]) -> Word2Vec:
    """A gensim Word2Vec with ``cfg``'s settings and its vocabulary built from the session token counts
    (``build_vocab_from_freq``: gensim's word i is our token i), ready to train; ``timings["vocab_s"]``.

    The same model ``fit_vectors`` makes when given none; a caller may make it in a thread while it
    writes the corpus. gensim's negative-sampling table (a Python loop over the vocabulary, seconds at
    10M events) is made by ``_cum_table`` instead, with the same values."""
    word2vec = globals().get("Word2Vec") or __getattr__("Word2Vec")
    epochs = cfg.epochs or auto_epochs(int(vocab[Col.COUNT].sum()))  # the corpus words: in-vocabulary events
    model = word2vec(
        vector_size=cfg.dim,
        window=cfg.window,
        negative=cfg.negative,
        ns_exponent=cfg.ns_exponent,
        sg=1,
        hs=0,
        min_count=1,  # already applied by tokenize
        sample=cfg.sample,
        alpha=cfg.alpha,
        min_alpha=cfg.min_alpha,
        workers=cfg.workers,
        seed=cfg.seed,
        epochs=epochs,
    )
    t = time.perf_counter()
    words = [str(i) for i in range(vocab.height)]
    _fast_vocab(model)
    model.build_vocab_from_freq(dict(zip(words, vocab[Col.COUNT].to_list(), strict=True)), corpus_count=n_sessions)
    timings["vocab_s"] = time.perf_counter() - t  # gensim's vocabulary, sampling tables, initial vectors
    return model


def _fast_vocab(model: Word2Vec) -> None:
    """Give ``model`` the vectorised ``prepare_vocab`` and ``make_cum_table`` below in place of gensim's
    per-word Python loops (seconds at 10M events' 916k tokens), for its ``build_vocab_from_freq``."""
    model.prepare_vocab = MethodType(_prepare_vocab, model)  # type: ignore[method-assign]
    model.make_cum_table = MethodType(_make_cum_table, model)  # type: ignore[method-assign]


def _prepare_vocab(model: Word2Vec, update: bool = False, keep_raw_vocab: bool = False, trim_rule: Any = None,
                   min_count: int | None = None, sample: float | None = None, dry_run: bool = False) -> dict[str, Any]:
    """``Word2Vec.prepare_vocab`` (gensim 4) for the one case ``new_model`` asks for, with numpy arrays
    where gensim calls ``set_vecattr`` twice per word; any other case is gensim's own.

    The same vocabulary, word order, counts and subsampling thresholds: gensim's per-word float
    expressions (count / threshold, sqrt, the probability times 2**32 - 1 truncated to uint32) are
    single IEEE operations, done elementwise here; then gensim's own sort and the table of
    ``_make_cum_table`` (tests/test_train_overlap.py compares every attribute with gensim's)."""
    from gensim.models import Word2Vec

    if (update or dry_run or trim_rule is not None or model.max_final_vocab is not None or model.null_word
            or model.hs or model.wv.expandos or len(model.wv.index_to_key)):
        return Word2Vec.prepare_vocab(model, update=update, keep_raw_vocab=keep_raw_vocab, trim_rule=trim_rule,
                                      min_count=min_count, sample=sample, dry_run=dry_run)
    min_count = min_count or model.min_count
    sample = sample or model.sample
    words = list(model.raw_vocab)
    counts = np.fromiter(model.raw_vocab.values(), dtype=np.int64, count=len(words))
    keep = counts >= min_count  # gensim's keep_vocab_item without a trim rule
    kept = words if keep.all() else [w for w, k in zip(words, keep.tolist(), strict=True) if k]
    counts = counts[keep]
    model.effective_min_count = min_count
    model.min_count, model.sample = min_count, sample
    model.wv.index_to_key = kept
    model.wv.key_to_index = {w: i for i, w in enumerate(kept)}
    model.wv.expandos["count"] = counts
    retain_total = int(counts.sum())
    if not sample:
        threshold: float = retain_total
    elif sample < 1.0:
        threshold = sample * retain_total
    else:
        threshold = int(sample * (3 + np.sqrt(5)) / 2)
    probability = (np.sqrt(counts / threshold) + 1) * (threshold / counts)
    downsampled = probability < 1.0
    probability = np.where(downsampled, probability, 1.0)
    model.wv.expandos["sample_int"] = (probability * (2**32 - 1)).astype(np.uint32)
    if not keep_raw_vocab:
        model.raw_vocab = defaultdict(int)
    report = {"drop_unique": len(words) - len(kept), "retain_total": retain_total,
              "downsample_unique": int(downsampled.sum()),
              "downsample_total": int((probability * counts).sum()), "num_retained_words": len(kept)}
    if model.sorted_vocab:
        model.wv.sort_by_descending_frequency()
    if model.negative:
        model.make_cum_table()
    return report


def _make_cum_table(model: Word2Vec, domain: int = 2**31 - 1) -> None:
    """``Word2Vec.make_cum_table`` without its two Python loops over the vocabulary, bound to a model.

    Equal to gensim's table value for value, not just close: each count's power is gensim's own
    expression (a numpy int64 count ** a Python float), taken once per distinct count; the running sum
    is ``np.cumsum``, which adds in order as gensim's loop does (its total is the last element); and
    division, product and round-half-even are exact IEEE operations either way
    (tests/test_train_overlap.py compares the two tables)."""
    counts = np.asarray(model.wv.expandos["count"][: len(model.wv.index_to_key)], dtype=np.int64)
    model.cum_table = _cum_table(counts, float(model.ns_exponent), domain)


def _cum_table(counts: np.ndarray, ns_exponent: float, domain: int) -> np.ndarray:
    """The negative-sampling table of ``counts`` (gensim row order); see ``_make_cum_table``."""
    if counts.size == 0:
        return np.zeros(0, dtype=np.uint32)
    distinct, where = np.unique(counts, return_inverse=True)
    powers = np.array([c ** ns_exponent for c in distinct], dtype=np.float64)[where]
    cumulative = np.cumsum(powers)
    table = np.rint(cumulative / cumulative[-1] * domain).astype(np.uint32)
    assert table[-1] == domain
    return table


def fit_vectors(
    vocab: pl.DataFrame,
    n_sessions: int,
    sess_args: dict[str, Any],
    pair_args: dict[str, Any],
    n_pairs: int,
    cfg: TrainConfig,
    progress: Progress,
    timings: dict[str, float],
    model: Word2Vec | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """gensim on a ready corpus: (input, output) vectors in token_id order; ``cfg.epochs`` is resolved.

    ``sess_args`` / ``pair_args`` are gensim's corpus arguments (``corpus_file`` + ``total_words``,
    or ``corpus_iterable`` + ``total_examples``). Shared by both engines: ``--engine spark`` writes the
    corpus on Spark and trains here, on the same vocabulary and the same lines. ``model``: the one
    ``new_model`` made for ``vocab`` and ``cfg`` (default: made here).
    """
    if model is None:
        model = new_model(vocab, n_sessions, cfg, timings)
    epochs = model.epochs
    t = time.perf_counter()
    with progress.stage("training", total=epochs, unit="epoch") as bar:
        for e in range(epochs):
            a0, a1 = _alpha_at(cfg, e / epochs), _alpha_at(cfg, (e + 1) / epochs)
            if n_pairs:
                mid = (a0 + a1) / 2
                model.train(**sess_args, epochs=1, start_alpha=a0, end_alpha=mid)
                sample, model.sample = model.sample, 0
                try:
                    model.train(**pair_args, epochs=1, start_alpha=mid, end_alpha=a1)
                finally:
                    model.sample = sample
            else:
                model.train(**sess_args, epochs=1, start_alpha=a0, end_alpha=a1)
            bar.update(1)
    timings["train_s"] = time.perf_counter() - t

    # gensim's own index order may differ from our token ids: reorder rows to token_id.
    t = time.perf_counter()
    order = gensim_rows(model)
    vin = model.wv.vectors[order]
    vout = model.syn1neg[order]
    timings["export_s"] = time.perf_counter() - t
    return vin, vout


def gensim_rows(model: Word2Vec) -> np.ndarray:
    """gensim's row of each of our token ids (``model.wv.key_to_index[str(token)]`` for every token, in
    order), without a dict lookup per token: gensim row g holds token ``int(index_to_key[g])``, so the
    array is that permutation inverted."""
    tokens = np.fromiter(map(int, model.wv.index_to_key), dtype=np.int64, count=len(model.wv.index_to_key))
    rows = np.empty(tokens.size, dtype=np.int64)
    rows[tokens] = np.arange(tokens.size, dtype=np.int64)
    return rows


def model_counts(vocab: pl.DataFrame, n_events: int, n_sessions: int, n_items: int, corpus_words: int,
                 n_pairs: int) -> dict[str, Any]:
    """The manifest's ``counts``: what was trained on."""
    return {
        "events": n_events,
        "sessions": n_sessions,
        "items": n_items,
        "tokens": vocab.height,
        "tokens_per_interaction": dict(vocab.group_by(Col.INTERACTION).len().sort(Col.INTERACTION).iter_rows()),
        "corpus_words": corpus_words,
        "regularization_pairs": n_pairs,
    }


@contextmanager
def _full_disk_said(out: str | Path) -> Iterator[None]:
    """The corpus files beside ``out`` are written by gensim and numpy, whose full-disk errors are an
    OSError without errno or "N requested and M written": say "no space left on device" instead."""
    try:
        yield
    except (OSError, pl.exceptions.PolarsError) as e:
        if out_of_space(e, Path(out).parent):
            raise no_space_error(out) from None
        raise


def train_to_dir(
    sessions_path: str | Path,
    out: str | Path,
    cfg: TrainConfig | None = None,
    progress: Progress | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
    engine: TrainEngineConfig | None = None,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """``recs train-embeddings``: read sessions, train, write MODEL_DIR atomically; return its manifest.

    ``time_unit`` is the unit of integer timestamps in the sessions file (``read_sessions``); it is
    a reading option, not a training one, so it is recorded with the input rather than in TrainConfig.
    ``engine``: where tokens, pairs and corpus are made (this process, or Spark: ``recs.spark.train``);
    the training is gensim on this machine either way.

    Options and ``out`` are checked before the sessions are read; the corpus files live beside ``out``
    while training (not in the system temp directory) so an interrupted run's are found and removed.
    ``work_dir`` (``--work-dir``, Spark only): a URI every node reads and writes, where Spark's executors
    write their outputs when the directory of ``out`` is not shared with them (``recs.spark.work``).
    """
    cfg = cfg or TrainConfig()
    cfg.validate()
    engine = engine or TrainEngineConfig()
    engine.validate()
    check_unit(time_unit)
    on_spark = engine.engine != ENGINES[0]
    if on_spark and cfg.entities:
        raise ConfigError("--entity is trained on the polars engine only")
    if work_dir is not None and not on_spark:
        raise ConfigError(f"--work-dir {work_dir} is for --engine spark (where Spark's executors write)")
    uri = is_uri(sessions_path)  # a Hadoop URI: only Spark reads it (recs.spark.uri)
    if uri and not on_spark:
        raise ConfigError(f"{sessions_path}: a URI input is read by Spark; give --engine spark (or a local path)")
    preflight_artifact(out, MODEL_FORMAT, inputs=[] if uri else [("SESSIONS", sessions_path)])
    _gensim_ahead()  # imported while the sessions are read and tokenized
    t = time.perf_counter()
    if not on_spark:
        sessions = read_sessions(sessions_path, time_unit=time_unit)
        check_entity_columns(sessions, cfg.entities, where=str(sessions_path))
        read_s = time.perf_counter() - t
    # the save inside the block: if it fails, the parents made for the corpus go too
    with _full_disk_said(out), scratch_dir(out, "corpus") as work:
        if on_spark:
            from recs.spark.train import train_spark  # pyspark is an optional extra, imported only when asked for

            model = train_spark(sessions_path, cfg, engine, progress, work, time_unit, work_dir)
        else:
            model = train(sessions, cfg, progress, workdir=work)
            model.manifest["timings"]["read_s"] = read_s
        model.manifest["timings"]["total_s"] = time.perf_counter() - t
        listed = model.manifest.pop("input_listing", None)  # a URI input: fingerprinted from its listing
        source = {"path": str(sessions_path), **(listed or {"fingerprint": fingerprint_sessions(sessions_path)}),
                  "time_unit": time_unit}
        missing = [i for i in (Interaction.CLICK, Interaction.CART) if i not in model.interactions]
        warnings = [f"no {i!r} tokens: the default candidate sets need them" for i in missing]
        return model.save(out, input=source, warnings=warnings)
