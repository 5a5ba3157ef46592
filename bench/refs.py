"""Child tasks of ``bench/run.py``: the bare-library references and the measurements recs has no command for.

Each task runs in its own process (started by ``run.py``, which measures its wall time and peak RSS)
and writes one JSON object to ``--json``. Work that is not being measured (reading inputs, writing
the corpus files) is timed separately, so every reported ``*_s`` is the compute being compared.

    python bench/refs.py tail        --sessions S.parquet --sessions-count 10 --seed 1 --json out.json
    python bench/refs.py cooc-recs   --sessions train.parquet --json out.json
    python bench/refs.py cooc-polars --sessions train.parquet --json out.json
    python bench/refs.py gensim      --sessions train.parquet --model MODEL_DIR --workers 2 --json out.json
    python bench/refs.py faiss       --model MODEL_DIR --index INDEX_DIR --workers 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.columns import Col


def _checksum(pairs: pl.DataFrame) -> int:
    """An order-independent fingerprint of a (p, q, sessions) table, to show both sides agree."""
    return int(
        pairs.select(
            pl.col("p").cast(pl.Int64) * 1_000_003
            + pl.col("q").cast(pl.Int64) * 7919
            + pl.col("sessions").cast(pl.Int64)
        )
        .to_series()
        .hash(seed=0)
        .sum()
    )


# ---------------------------------------------------------------------------------------------- tail


def tail(sessions: Path, n_sessions: int, seed: int) -> dict[str, Any]:
    """Append ``n_sessions`` OTTO-like long sessions (300-500 events) to a synthetic log, in place.

    ``recs synth`` sessions already reach ~450 events, but rarely; a real log (OTTO, Taobao) has a
    few sessions of hundreds of events in every day, which is what makes a quadratic pair count blow
    up. Events reuse rows of the log (so item, category and shop stay consistent) with a
    click-heavy mix; sessions start at random times over the log's span.
    """
    rng = np.random.default_rng(seed)
    log = pl.read_parquet(sessions)
    lengths = rng.integers(300, 501, n_sessions)
    total = int(lengths.sum())
    rows = log.sample(n=total, with_replacement=True, seed=seed)
    kinds = np.array(["click", "cart", "favorite", "purchase"])[
        np.searchsorted(np.cumsum([0.9, 0.05, 0.03, 0.02]), rng.random(total), side="right").clip(0, 3)
    ]
    sess_of = np.repeat(np.arange(n_sessions), lengths)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    ts_min = log[Col.TIMESTAMP].min()
    ts_max = log[Col.TIMESTAMP].max()
    span_s = max(1, int((ts_max - ts_min).total_seconds()) - 6 * 3600)  # type: ignore[operator]
    start = rng.integers(0, span_s, n_sessions)[sess_of] + (np.arange(total) - first) * 20
    base_session = int(log[Col.SESSION].max()) + 1
    base_user = int(log[Col.USER].max()) + 1 if Col.USER in log.columns else 0
    extra = rows.with_columns(
        pl.Series(Col.SESSION, base_session + sess_of).cast(log.schema[Col.SESSION]),
        pl.Series(Col.INTERACTION, kinds),
        (pl.lit(ts_min) + pl.duration(seconds=pl.Series(start))).cast(log.schema[Col.TIMESTAMP]).alias(Col.TIMESTAMP),
        *([pl.Series(Col.USER, base_user + sess_of).cast(log.schema[Col.USER])] if Col.USER in log.columns else []),
    ).select(log.columns)
    out = pl.concat([log, extra]).sort([Col.SESSION, Col.TIMESTAMP], maintain_order=True)
    tmp = sessions.with_suffix(".tail.tmp.parquet")
    out.write_parquet(tmp)
    os.replace(tmp, sessions)
    return {"tail_sessions": n_sessions, "tail_events": total, "events": out.height,
            "max_session_events": int(out.group_by(Col.SESSION).len()["len"].max())}


# ---------------------------------------------------------------------------------------------- co-occurrence


def cooc_recs(sessions: Path, horizon: int, k: int) -> dict[str, Any]:
    """recs' own tokenize + regularization_pairs (count, then top-k), as ``train-embeddings`` runs them."""
    from recs.config import CoocConfig
    from recs.embeddings.cooc import regularization_pairs
    from recs.embeddings.tokens import tokenize
    from recs.sessions.io import read_sessions

    t = time.perf_counter()
    frame = read_sessions(sessions)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    tok = tokenize(frame)
    tokenize_s = time.perf_counter() - t
    del frame
    t = time.perf_counter()
    pairs = regularization_pairs(tok.sequences, tok.vocab, CoocConfig(k=k, horizon=horizon))
    cooc_s = time.perf_counter() - t
    return {"read_s": read_s, "tokenize_s": tokenize_s, "cooc_s": cooc_s, "compute_s": tokenize_s + cooc_s,
            "events": tok.n_events, "pairs": pairs.height, "checksum": _checksum(pairs)}


def cooc_polars(sessions: Path, horizon: int, k: int) -> dict[str, Any]:
    """The reference: plain polars, one lazy query, streaming engine.

    Tokens by ``group_by`` + ``join``; a *windowed self-join*: every event is repeated for the
    offsets 1..horizon (``int_ranges`` + ``explode``) and joined to the event at (session, pos + d);
    then ``unique`` (session, p, q), ``group_by`` (p, q) and top-k by a sort and a window filter. Token
    ids follow recs' rule (count desc, interaction, item), so the output must equal recs' exactly.
    """
    t = time.perf_counter()
    frame = pl.read_parquet(sessions, columns=[Col.SESSION, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP]).sort(
        [Col.SESSION, Col.TIMESTAMP], maintain_order=True
    )
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    vocab = (
        frame.lazy()
        .group_by(Col.ITEM, Col.INTERACTION)
        .agg(pl.len().alias(Col.COUNT))
        .sort([Col.COUNT, Col.INTERACTION, Col.ITEM], descending=[True, False, False])
        .with_row_index(Col.TOKEN_ID)
        .with_columns(pl.col(Col.TOKEN_ID).cast(pl.Int32))
    )
    ev = (
        frame.lazy()
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over(Col.SESSION).alias(Col.POS))
        .join(vocab.select(Col.ITEM, Col.INTERACTION, Col.TOKEN_ID), on=[Col.ITEM, Col.INTERACTION])
    )
    left = (
        ev.select(Col.SESSION, Col.POS, pl.col(Col.TOKEN_ID).alias("p"), pl.col(Col.ITEM).alias("_ip"))
        .with_columns(pl.int_ranges(1, horizon + 1, dtype=pl.Int32).alias("_d"))
        .explode("_d")
        .with_columns(pl.col(Col.POS) + pl.col("_d"))
    )
    right = ev.select(Col.SESSION, Col.POS, pl.col(Col.TOKEN_ID).alias("q"), pl.col(Col.ITEM).alias("_iq"))
    counts = (
        left.join(right, on=[Col.SESSION, Col.POS])
        .filter(pl.col("_ip") != pl.col("_iq"))
        .select(Col.SESSION, "p", "q")
        .unique()
        .group_by("p", "q")
        .agg(pl.len().alias("sessions"))
    )
    q_type = vocab.select(pl.col(Col.TOKEN_ID).alias("q"), pl.col(Col.INTERACTION).alias("_qi"))
    pairs = (
        counts.join(q_type, on="q")
        .sort(["p", "_qi", "sessions", "q"], descending=[False, False, True, False])
        .filter(pl.int_range(pl.len()).over("p", "_qi") < k)
        .select(pl.col("p").cast(pl.Int32), pl.col("q").cast(pl.Int32), pl.col("sessions").cast(pl.UInt32))
        .collect(engine="streaming")
    )
    compute_s = time.perf_counter() - t
    return {"read_s": read_s, "compute_s": compute_s, "events": frame.height, "pairs": pairs.height,
            "checksum": _checksum(pairs)}


# ---------------------------------------------------------------------------------------------- gensim


def bare_gensim(sessions: Path, model_dir: Path, workers: int, workdir: Path) -> dict[str, Any]:
    """Bare ``gensim.models.Word2Vec`` with recs' parameters on the identical corpus.

    recs trains, per epoch, the session corpus (with subsampling) and then the pair corpus (without).
    The reference trains one file holding both corpora (the lines of recs' own ``write_session_corpus``
    and ``write_pair_corpus``, shuffled together) for the same epochs, with gensim's own defaults for
    everything recs does not set, so it processes the same words per epoch; the only difference is
    that gensim's subsampling also touches pair words (a few % fewer words at sample=1e-3).
    ``build_s`` (gensim's vocabulary scan of the file) is reported apart from ``train_s``.
    """
    from gensim.models import Word2Vec

    from recs.config import CoocConfig
    from recs.embeddings.cooc import regularization_pairs
    from recs.embeddings.corpus import write_pair_corpus, write_session_corpus
    from recs.embeddings.tokens import tokenize
    from recs.sessions.io import read_sessions

    manifest = json.loads((model_dir / "manifest.json").read_text())
    cfg = manifest["config"]
    t = time.perf_counter()
    tok = tokenize(read_sessions(sessions), cfg["min_count"])
    pairs = regularization_pairs(tok.sequences, tok.vocab, CoocConfig(**cfg["cooc"]))
    tmp = Path(tempfile.mkdtemp(prefix="bench-gensim-", dir=workdir))
    try:
        corpus = tmp / "corpus.txt"
        n_words = write_session_corpus(tok.sequences, tmp / "sessions.txt")
        n_words += write_pair_corpus(pairs, tmp / "pairs.txt")
        # Lines shuffled (fixed seed): gensim's corpus_file mode gives each worker an equal *byte*
        # range of the file, and a session word costs ~5x a pair word (window 5 vs one neighbour),
        # so sessions-then-pairs would leave one worker with most of the work and the other idle.
        lines = pl.concat([
            pl.read_csv(tmp / part, has_header=False, new_columns=["line"], separator="\t", quote_char=None,
                        schema_overrides={"line": pl.String})
            for part in ("sessions.txt", "pairs.txt")
        ]).sample(fraction=1.0, shuffle=True, seed=cfg["seed"])
        lines.write_csv(corpus, include_header=False, quote_style="never")
        del lines
        n_tokens = tok.vocab.height
        del tok, pairs
        prep_s = time.perf_counter() - t

        t = time.perf_counter()
        model = Word2Vec(vector_size=cfg["dim"], window=cfg["window"], negative=cfg["negative"], sg=1, hs=0,
                         min_count=1, sample=cfg["sample"], alpha=cfg["alpha"], min_alpha=cfg["min_alpha"],
                         workers=workers, seed=cfg["seed"], epochs=cfg["epochs"])
        model.build_vocab(corpus_file=str(corpus))
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        model.train(corpus_file=str(corpus), total_words=model.corpus_total_words, epochs=cfg["epochs"])
        train_s = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"prep_s": prep_s, "build_vocab_s": build_s, "train_s": train_s, "words": n_words, "epochs": cfg["epochs"],
            "tokens": n_tokens, "gensim_vocab": len(model.wv), "words_per_s": n_words * cfg["epochs"] / train_s}


# ---------------------------------------------------------------------------------------------- faiss


def _unit(x: np.ndarray) -> np.ndarray:
    import faiss

    out = np.array(x, dtype=np.float32, copy=True, order="C")
    faiss.normalize_L2(out)
    return out


def _recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over rows of |found ∩ exact| / |exact|, ignoring -1 slots."""
    hits, total = 0, 0
    for f, e in zip(found, exact, strict=True):
        e = e[e >= 0]
        hits += len(np.intersect1d(f[f >= 0], e, assume_unique=False))
        total += len(e)
    return hits / total if total else float("nan")


def _drop_self(ids: np.ndarray, tgt_items: np.ndarray, q_items: np.ndarray, k: int) -> np.ndarray:
    """Target *item ids* of each row, the query's own item removed, first k kept (-1 pads)."""
    items = np.where(ids >= 0, tgt_items[np.maximum(ids, 0)], -1)
    out = np.full((ids.shape[0], k), -1, dtype=np.int64)
    for r in range(ids.shape[0]):  # a few thousand sampled queries, not the catalogue
        row = items[r][(items[r] != q_items[r]) & (items[r] >= 0)][:k]
        out[r, : row.size] = row
    return out


def _search_and_table(index: Any, qkeys: np.ndarray, q_items: np.ndarray, tgt_items: np.ndarray, width: int,
                      k: int, norm2: float | None, path: Path) -> tuple[float, float, int]:
    """The search of every query in blocks of 4096, then the minimum any tool must add to write the same
    candidate table: each block's rows (the query's own item and empty slots dropped, the first k kept,
    rank and score; an L2 distance of the MIPS transform turned back into the inner product), as a
    polars frame, and one ``write_parquet`` (zstd) of them all. Returns (search seconds, table seconds,
    rows): timed apart, and run one after the other (nothing overlapped), so their sum is the serial
    bare cost that ``recs build-index``'s search + table is compared with."""
    search_s = table_s = 0.0
    frames = []
    for a in range(0, qkeys.shape[0], 4096):
        t = time.perf_counter()
        scores, ids = index.search(qkeys[a : a + 4096], width)
        t2 = time.perf_counter()
        search_s += t2 - t
        if norm2 is not None:  # L2 distance on the transformed keys -> inner product (queries' extra coordinate 0)
            q = qkeys[a : a + 4096, :-1]
            scores = ((np.einsum("ij,ij->i", q, q, dtype=np.float64)[:, None] + norm2 - scores) / 2).astype(np.float32)
        items = tgt_items[np.maximum(ids, 0)]
        q_of = q_items[a : a + 4096]
        valid = (ids >= 0) & (items != q_of[:, None])
        seen = np.cumsum(valid, axis=1)
        valid &= seen <= k
        r, c = np.nonzero(valid)
        frames.append(pl.DataFrame({Col.ITEM: q_of[r], Col.CANDIDATE: items[r, c],
                                    Col.RANK: seen[r, c].astype(np.int32), Col.SCORE: scores[r, c]}))
        table_s += time.perf_counter() - t2
    t = time.perf_counter()
    table = pl.concat(frames, rechunk=False)
    table.write_parquet(path, compression="zstd")
    table_s += time.perf_counter() - t
    return search_s, table_s, table.height


def bare_faiss(
    model_dir: Path, index_dir: Path, workers: int, n_queries: int, seed: int, sweep: bool
) -> dict[str, Any]:
    """Bare faiss on recs' vectors: HNSW build and search time, recall@k of recs' candidate lists.

    For every candidate set of INDEX_DIR: the same IndexHNSWFlat (same M / efConstruction / efSearch)
    on the same rows that recs indexes (``recs.candidates.scoring``: the score and backoff of the
    index's config) built and searched by faiss directly, timed per call: inner product on unit
    vectors for cosine, and for prob / in-out the MIPS-to-L2 transform written out here by hand
    (extra coordinate sqrt(M^2 - |x|^2), L2 metric, twice the efSearch, as recs does); then for
    ``n_queries`` sampled source items the exact top-k (``IndexFlatIP``, the item itself removed) is
    compared with recs' written candidate list and with the bare HNSW result. ``sweep`` adds recall
    and time for other efSearch and M values, and the measured bytes per vector of index types
    (serialized size) for docs/scaling.md. Item ids are assumed integer (as ``recs synth`` writes).
    Each set's search is also given its bare table (``_search_and_table``): ``table_s`` beside
    ``search_s``, and ``same_rows`` whether it has as many rows as recs' written set.
    """
    import faiss

    faiss.omp_set_num_threads(workers)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    cfg = manifest["config"]
    k, m, ef_c, ef_s = cfg["k"], cfg["m"], cfg["ef_construction"], cfg["ef_search"]
    from recs.candidates.scoring import query_side, target_side
    from recs.config import IndexConfig
    from recs.embeddings.model import EmbeddingModel

    icfg = IndexConfig(score=cfg["score"], backoff=cfg.get("backoff", False), shrink=cfg.get("shrink", 0.0),
                       threads=workers)
    mips = icfg.score != "cosine"
    metric = faiss.METRIC_L2 if mips else faiss.METRIC_INNER_PRODUCT
    ef_s = 2 * ef_s if mips else ef_s
    model = EmbeddingModel.load(model_dir)
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"k": k, "m": m, "ef_construction": ef_c, "ef_search": ef_s, "sets": {}, "targets": {}}
    indexes: dict[str, Any] = {}
    tgt_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    norm2: dict[str, float] = {}
    for target in dict.fromkeys(t for _, t in cfg["pairs"]):
        side = target_side(model, target, icfg)
        vec = side.vectors
        t = time.perf_counter()
        keys = vec
        if mips:
            sq = np.einsum("ij,ij->i", vec, vec, dtype=np.float64)
            norm2[target] = float(sq.max())
            keys = np.hstack([vec, np.sqrt(norm2[target] - sq).astype(np.float32)[:, None]])
        index = faiss.IndexHNSWFlat(keys.shape[1], m, metric)
        index.hnsw.efConstruction = ef_c
        index.add(keys)
        out["targets"][target] = {"vectors": int(vec.shape[0]), "build_s": time.perf_counter() - t}
        indexes[target] = index
        tgt_cache[target] = (vec, side.items.to_numpy(), keys)
    for source, target in cfg["pairs"]:
        name = f"{source}_to_{target}"
        index = indexes[target]
        vec, tgt_items, keys = tgt_cache[target]
        qside = query_side(model, source, icfg)
        queries = qside.vectors
        qkeys = np.hstack([queries, np.zeros((queries.shape[0], 1), np.float32)]) if mips else queries
        width = min(k + 1, vec.shape[0])
        index.hnsw.efSearch = max(ef_s, width)
        with tempfile.TemporaryDirectory(prefix="bench-faiss-", dir=index_dir.parent) as tmp:
            search_s, table_s, rows = _search_and_table(index, qkeys, qside.items.to_numpy(), tgt_items, width, k,
                                                        norm2.get(target), Path(tmp) / f"{name}.parquet")
        # recall@k on sampled queries: exact top-k vs recs' lists and vs bare HNSW
        pick = np.sort(rng.choice(queries.shape[0], size=min(n_queries, queries.shape[0]), replace=False))
        q_items = qside.items.to_numpy()[pick]
        flat = faiss.IndexFlatIP(vec.shape[1])
        flat.add(vec)
        _, exact_ids = flat.search(queries[pick], width)
        exact = _drop_self(exact_ids, tgt_items, q_items, k)
        _, hnsw_ids = index.search(qkeys[pick], width)
        cands = pl.read_parquet(index_dir / "candidates" / f"{name}.parquet")
        picked = pl.DataFrame({Col.ITEM: q_items, "_row": np.arange(pick.size)})
        lists = (
            cands.join(picked, on=Col.ITEM).sort("_row", Col.RANK).group_by("_row", maintain_order=True)
            .agg(pl.col(Col.CANDIDATE).head(k))
        )
        ours = np.full((pick.size, k), -1, dtype=np.int64)
        for r, items in lists.iter_rows():  # sampled queries only
            ours[r, : len(items)] = items
        entry: dict[str, Any] = {
            "queries": int(queries.shape[0]), "search_s": search_s, "queries_per_s": queries.shape[0] / search_s,
            "table_s": table_s, "search_table_s": search_s + table_s, "rows": rows,
            "same_rows": rows == manifest["candidate_sets"][name]["rows"],
            "recall_sample": int(pick.size),
            f"recall@{k}_recs": _recall(ours, exact),
            f"recall@{k}_bare_hnsw": _recall(_drop_self(hnsw_ids, tgt_items, q_items, k), exact),
        }
        if sweep and name == f"{cfg['pairs'][0][0]}_to_{cfg['pairs'][0][1]}":
            entry["sweep"] = _sweep(keys, qkeys[pick], tgt_items, q_items, exact, k, m, ef_c, ef_s, index, metric)
        out["sets"][name] = entry
    if sweep:
        first_target = cfg["pairs"][0][1]
        out["bytes_per_vector"] = _index_bytes(tgt_cache[first_target][0])
    return out


def _sweep(vec: np.ndarray, queries: np.ndarray, tgt_items: np.ndarray, q_items: np.ndarray, exact: np.ndarray,
           k: int, m: int, ef_c: int, ef_s: int, index: Any, metric: int) -> list[dict[str, Any]]:
    """Recall@k and time against efSearch (on the default index) and M (rebuilt, default efSearch)."""
    import faiss

    width = exact.shape[1] + 1
    rows = []

    def measure(ix: Any, m_: int, ef: int, build_s: float | None) -> None:
        ix.hnsw.efSearch = max(ef, width)
        t = time.perf_counter()
        _, ids = ix.search(queries, width)
        dt = time.perf_counter() - t
        recall = _recall(_drop_self(ids, tgt_items, q_items, k), exact)
        rows.append({"M": m_, "efSearch": ix.hnsw.efSearch, f"recall@{k}": recall,
                     "ms_per_query": 1000 * dt / queries.shape[0], "build_s": build_s})

    for ef in sorted({width, 256, 384, 512, 1024}):
        measure(index, m, ef, None)
    for m_ in (16, 32):
        if m_ == m:
            continue
        t = time.perf_counter()
        ix = faiss.IndexHNSWFlat(vec.shape[1], m_, metric)
        ix.hnsw.efConstruction = ef_c
        ix.add(vec)
        build_s = time.perf_counter() - t
        for ef in sorted({ef_s, 512}):
            measure(ix, m_, ef, build_s)
    index.hnsw.efSearch = ef_s
    return rows


def _index_bytes(vec: np.ndarray) -> dict[str, float]:
    """Serialized bytes per vector of index types one would shard (d = the model's dim).

    Measured on up to 20k of the vectors: the per-vector size does not depend on the count (HNSW's
    upper levels add about 1/M of a level-0 entry). IVF-PQ needs >= 10k training points.
    """
    import faiss

    d = vec.shape[1]
    sample = vec[: min(vec.shape[0], 20_000)]
    made: dict[str, Any] = {"Flat": faiss.IndexFlatIP(d)}
    for m_ in (16, 32, 64):
        made[f"HNSW{m_},Flat"] = faiss.IndexHNSWFlat(d, m_, faiss.METRIC_INNER_PRODUCT)
    made["HNSW32,SQ8"] = faiss.IndexHNSWSQ(d, faiss.ScalarQuantizer.QT_8bit, 32, faiss.METRIC_INNER_PRODUCT)
    pq_m = next(m for m in (50, 40, 25, 20, 10, 8, 5, 4, 2, 1) if d % m == 0)
    if sample.shape[0] >= 10_000:
        made[f"IVF256,PQ{pq_m}"] = faiss.index_factory(d, f"IVF256,PQ{pq_m}", faiss.METRIC_INNER_PRODUCT)
    out = {}
    for name, ix in made.items():
        if not ix.is_trained:
            ix.train(sample)
        ix.add(sample)
        out[name] = len(faiss.serialize_index(ix)) / sample.shape[0]
    out["vectors"] = float(sample.shape[0])
    out["dim"] = float(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["tail", "cooc-recs", "cooc-polars", "gensim", "faiss"])
    ap.add_argument("--sessions", type=Path)
    ap.add_argument("--model", type=Path)
    ap.add_argument("--index", type=Path)
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sessions-count", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=20)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    if a.task == "tail":
        res = tail(a.sessions, a.sessions_count, a.seed)
    elif a.task == "cooc-recs":
        res = cooc_recs(a.sessions, a.horizon, a.k)
    elif a.task == "cooc-polars":
        res = cooc_polars(a.sessions, a.horizon, a.k)
    elif a.task == "gensim":
        res = bare_gensim(a.sessions, a.model, a.workers, a.workdir or a.json.parent)
    else:
        res = bare_faiss(a.model, a.index, a.workers, a.queries, a.seed, a.sweep)
    a.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
