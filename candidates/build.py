"""``recs build-index``: candidate sets of one method, written atomically into INDEX_DIR.

Two ways in, one writer (``write_index``): ``build_index`` takes our trained model (MODEL_DIR);
``build_method_index`` fits any method of ``recs.candidates.registry`` on a training sessions file.
Either way the directory is the same format, so ``recs eval-hitrate`` (and every later reader)
treats a baseline exactly as it treats ours.

INDEX_DIR layout::

    manifest.json                            format, config, method (name, settings), what it was built
                                             from (model or sessions, with fingerprint), counts, timings
    indexes/<target>.<score>.faiss           our model only: faiss.write_index files (faiss's own format,
                                             no pickle); rows as in recs.candidates.scoring.target_side.
                                             No command reads them yet: they are kept for a later one
                                             that searches past the written candidate tables
    candidates/<source>_to_<target>.parquet  item_id, candidate_item_id, rank, score
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import faiss
import polars as pl
import pyarrow.parquet as pq

from recs.artifacts import (
    atomic_dir,
    fingerprint_file,
    fingerprint_json,
    preflight_artifact,
    read_manifest,
    record_files,
    write_manifest,
)
from recs.candidates.base import CandidateGenerator, describe
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.index_check import candidates_file, check_candidates_schema, check_index_manifest, set_name
from recs.candidates.registry import OURS, MethodConfig, method_spec
from recs.columns import Col
from recs.config import IndexConfig, config_dict
from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError, ConfigError, OutputError
from recs.names import NAME_RULE, is_safe_name
from recs.progress import NullProgress, Progress
from recs.sessions.io import read_sessions
from recs.sessions.times import DEFAULT_TIME_UNIT

INDEX_FORMAT = "recs.index"
INDEX_VERSION = 1


def candidates_path(index_dir: str | Path, source: str, target: str) -> Path:
    return Path(index_dir) / candidates_file(set_name(source, target))


def _check_pair_names(cfg: IndexConfig) -> None:
    """Interaction names become file names (``indexes/<target>...``, ``candidates/<source>_to_<target>...``):
    ``../x`` would write outside the index, so names are refused before anything is read."""
    for source, target in cfg.pairs:
        for name in (source, target):
            if not is_safe_name(name):
                raise ConfigError(f"--pairs {source}:{target}: interaction {name!r} cannot be used; "
                                  f"interaction names in --pairs are {NAME_RULE}")


def _check_pairs(present: Iterable[str], cfg: IndexConfig, where: str) -> None:
    """Every interaction of ``--pairs`` is in ``present`` (the model's, or the training sessions'),
    checked before a method is fitted or the index directory started; ``where`` names the source."""
    present = set(present)
    for source, target in cfg.pairs:
        for name in (source, target):
            if name not in present:
                raise ConfigError(
                    f"--pairs {source}:{target}: interaction {name!r} is not in {where} "
                    f"(interactions present: {', '.join(sorted(present))})"
                )


def _checked(cfg: IndexConfig | None) -> IndexConfig:
    cfg = cfg or IndexConfig()
    cfg.validate()
    _check_pair_names(cfg)
    return cfg


def build_index(
    model_dir: str | Path, out: str | Path, cfg: IndexConfig | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Build our model's indexes and candidate sets for ``cfg.pairs``; return the index manifest."""
    cfg = _checked(cfg)
    preflight_artifact(out, INDEX_FORMAT, inputs=[("--model", model_dir)])
    model = EmbeddingModel.load(model_dir)
    gen = EmbeddingCandidates(index_config=cfg, model=model, progress=progress or NullProgress(), name=OURS)
    _check_pairs(gen.interactions(), cfg, "the model")
    built_from = {"model": {"path": str(model_dir), "fingerprint": fingerprint_json(model.manifest)}}
    return write_index(out, gen, cfg, built_from, model.manifest.get("counts", {}).get("items"))


def build_method_index(
    method: str,
    sessions: str | Path,
    out: str | Path,
    cfg: IndexConfig | None = None,
    methods: MethodConfig | None = None,
    progress: Progress | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
) -> dict[str, Any]:
    """Fit ``method`` (a name ``recs compare`` knows) on the training sessions file and write its
    candidate sets for ``cfg.pairs``; return the index manifest.

    The method is built as ``compare`` builds it, from ``methods`` with its index settings replaced by
    ``cfg``, so the same settings give the same candidates here as there. An item-level method writes
    its one list once per pair. ``time_unit`` is the unit of integer timestamps (``read_sessions``).
    """
    spec = method_spec(method)
    cfg = _checked(cfg)
    methods = replace(methods or MethodConfig(), index=cfg)
    methods.validate()
    preflight_artifact(out, INDEX_FORMAT, inputs=[("--sessions", sessions)])  # before minutes of fitting
    train = read_sessions(sessions, time_unit=time_unit)
    _check_pairs(train[Col.INTERACTION].unique().to_list(), cfg, f"the training sessions {sessions}")
    gen = spec.build(methods, progress or NullProgress())
    t = time.perf_counter()
    gen.fit(train)
    fit_s = time.perf_counter() - t
    built_from = {"sessions": {"path": str(sessions), "fingerprint": fingerprint_file(sessions),
                               "time_unit": time_unit}}
    return write_index(out, gen, cfg, built_from, train[Col.ITEM].n_unique(), {"fit_s": fit_s})


def write_index(
    out: str | Path,
    gen: CandidateGenerator,
    cfg: IndexConfig,
    built_from: dict[str, Any],
    training_catalogue_items: int | None,
    timings: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Write a fitted generator's candidate sets for ``cfg.pairs`` (and, for our model, its faiss
    indexes) into ``out`` atomically; return the manifest.

    ``built_from`` is the manifest field naming the input, ``{"model": ...}`` or ``{"sessions": ...}``,
    with its fingerprint. The caller has run ``preflight_artifact`` and ``_check_pairs``.
    """
    timings = dict(timings or {})
    sets: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    with atomic_dir(out, INDEX_FORMAT) as tmp:
        (tmp / "candidates").mkdir()
        if isinstance(gen, EmbeddingCandidates):
            indexes = _write_faiss(tmp, gen, cfg.pairs, cfg.k, timings)
        for source, target in cfg.pairs:
            t = time.perf_counter()
            path = candidates_path(tmp, source, target)
            write_blocks(gen.candidate_blocks(source, target, cfg.k), path)
            timings[f"search_{set_name(source, target)}_s"] = time.perf_counter() - t
            sets[set_name(source, target)] = {"source": source, "target": target, **describe(pl.scan_parquet(path)),
                                              **gen.set_details(source, target)}
        manifest = write_manifest(
            tmp,
            INDEX_FORMAT,
            INDEX_VERSION,
            config=config_dict(cfg),
            method={"name": gen.name, "config": gen.settings()},
            **built_from,
            training_catalogue_items=training_catalogue_items,
            indexes=indexes,
            candidate_sets=sets,
            timings=timings,
            files=record_files(tmp),
        )
    return manifest


def _write_faiss(
    tmp: Path, gen: EmbeddingCandidates, pairs: Iterable[tuple[str, str]], k: int, timings: dict[str, float]
) -> dict[str, Any]:
    """Our model's HNSW index per target interaction, as ``indexes/<target>.<score>.faiss``; returns
    the manifest's ``indexes`` field. Named and described by the generator's own index settings, the
    ones its search used."""
    cfg = gen.index_config
    indexes: dict[str, Any] = {}
    (tmp / "indexes").mkdir()
    for target in dict.fromkeys(t for _, t in pairs):
        t = time.perf_counter()
        built = gen.target_index(target)
        side, hnsw = built.side, built.hnsw
        timings[f"index_{target}_s"] = time.perf_counter() - t
        path = tmp / "indexes" / f"{target}.{cfg.score}.faiss"
        try:
            faiss.write_index(hnsw.index, str(path))
        except RuntimeError as e:  # faiss reports a failed fwrite (disk full) as a RuntimeError
            raise OutputError(f"{path.name}: cannot write ({str(e).strip().splitlines()[0]})") from None
        indexes[target] = {"rows": len(side.items), "backoff_rows": side.backoff,
                           "mips_to_l2_norm2": hnsw.mips_norm2,
                           "ef_search": hnsw.effective_ef_search(cfg, min(k + 1, len(side.items)))}
    return indexes


def write_blocks(blocks: Iterable[pl.DataFrame], path: Path) -> None:
    """Write frames of one schema to one parquet file as they come (one row group each), so memory
    holds one block, not the table: Cart-to-Cart at 10M events with backoff is 240M rows."""
    writer: pq.ParquetWriter | None = None
    try:
        for block in blocks:
            table = block.to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def load_index_manifest(index_dir: str | Path) -> dict[str, Any]:
    """The manifest of INDEX_DIR, checked (recs.candidates.index_check) before any field is used."""
    manifest = read_manifest(index_dir, INDEX_FORMAT, INDEX_VERSION)
    check_index_manifest(index_dir, manifest)
    return manifest


def load_candidates(
    index_dir: str | Path, name: str, lazy: bool = False, manifest: dict[str, Any] | None = None
) -> pl.DataFrame | pl.LazyFrame:
    """A candidate set of an index directory by name (``click_to_cart``); ``lazy`` scans it instead,
    so that a reader that filters (the hit rate) never holds the whole table. ``manifest``: the one
    ``load_index_manifest`` already returned for ``index_dir`` (checked), so it is not read again."""
    manifest = manifest if manifest is not None else load_index_manifest(index_dir)
    if name not in manifest["candidate_sets"]:
        raise ConfigError(f"{index_dir}: no candidate set {name!r}; it has {', '.join(manifest['candidate_sets'])}")
    path = Path(index_dir) / candidates_file(name)  # load_index_manifest resolved it: inside index_dir
    try:
        scan = pl.scan_parquet(path)
        check_candidates_schema(path, scan.collect_schema())  # a missing or broken file fails here, with the path
        return scan if lazy else scan.collect()
    except (OSError, pl.exceptions.PolarsError) as e:
        raise ArtifactError(f"{path}: unreadable candidate set ({e})") from None


__all__ = ["INDEX_FORMAT", "build_index", "build_method_index", "candidates_path", "load_candidates", "write_index"]
