"""``recs build-index``: HNSW index per target interaction + candidate sets, written atomically.

INDEX_DIR layout::

    manifest.json                            format, config, model fingerprint, counts, timings
    indexes/<target>.<score>.faiss           faiss.write_index files (faiss's own format, no pickle);
                                             rows as in recs.candidates.scoring.target_side
    candidates/<source>_to_<target>.parquet  item_id, candidate_item_id, rank, score
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import faiss
import polars as pl
import pyarrow.parquet as pq

from recs.artifacts import (
    atomic_dir,
    fingerprint_json,
    preflight_artifact,
    read_manifest,
    record_files,
    write_manifest,
)
from recs.candidates.base import describe
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.index_check import candidates_file, check_candidates_schema, check_index_manifest
from recs.config import IndexConfig, config_dict
from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError, ConfigError
from recs.names import NAME_RULE, is_safe_name
from recs.progress import NullProgress, Progress

INDEX_FORMAT = "recs.index"
INDEX_VERSION = 1


def candidates_path(index_dir: str | Path, source: str, target: str) -> Path:
    return Path(index_dir) / "candidates" / f"{source}_to_{target}.parquet"


def _check_pair_names(cfg: IndexConfig) -> None:
    """Interaction names become file names (``indexes/<target>...``, ``candidates/<source>_to_<target>...``):
    ``../x`` would write outside the index, so names are refused before anything is read."""
    for source, target in cfg.pairs:
        for name in (source, target):
            if not is_safe_name(name):
                raise ConfigError(f"--pairs {source}:{target}: interaction {name!r} cannot be used; "
                                  f"interaction names in --pairs are {NAME_RULE}")


def _check_pairs(model: EmbeddingModel, cfg: IndexConfig) -> None:
    present = set(model.interactions)
    for source, target in cfg.pairs:
        for name in (source, target):
            if name not in present:
                raise ConfigError(
                    f"--pairs {source}:{target}: interaction {name!r} is not in the model "
                    f"(interactions present: {', '.join(sorted(present))})"
                )


def build_index(
    model_dir: str | Path, out: str | Path, cfg: IndexConfig | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Build indexes and candidate sets for ``cfg.pairs``; return the index manifest."""
    cfg = cfg or IndexConfig()
    cfg.validate()
    _check_pair_names(cfg)
    preflight_artifact(out, INDEX_FORMAT, inputs=[("--model", model_dir)])
    model = EmbeddingModel.load(model_dir)
    _check_pairs(model, cfg)
    gen = EmbeddingCandidates(index_config=cfg, model=model, progress=progress or NullProgress())
    timings: dict[str, float] = {}
    sets: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    with atomic_dir(out, INDEX_FORMAT) as tmp:
        (tmp / "indexes").mkdir()
        (tmp / "candidates").mkdir()
        for target in dict.fromkeys(t for _, t in cfg.pairs):
            t = time.perf_counter()
            side, hnsw = gen.targets(target)
            timings[f"index_{target}_s"] = time.perf_counter() - t
            faiss.write_index(hnsw.index, str(tmp / "indexes" / f"{target}.{cfg.score}.faiss"))
            indexes[target] = {"rows": len(side.items), "backoff_rows": side.backoff,
                               "mips_to_l2_norm2": hnsw.mips_norm2,
                               "ef_search": hnsw.effective_ef_search(cfg, min(cfg.k + 1, len(side.items)))}
        for source, target in cfg.pairs:
            t = time.perf_counter()
            path = candidates_path(tmp, source, target)
            write_blocks(gen.candidate_blocks(source, target, cfg.k), path)
            timings[f"search_{source}_to_{target}_s"] = time.perf_counter() - t
            sets[f"{source}_to_{target}"] = {"source": source, "target": target, **describe(pl.scan_parquet(path)),
                                             "backoff_queries": gen.backoff_queries[(source, target)]}
        manifest = write_manifest(
            tmp,
            INDEX_FORMAT,
            INDEX_VERSION,
            config=config_dict(cfg),
            model={"path": str(model_dir), "fingerprint": fingerprint_json(model.manifest)},
            training_catalogue_items=model.manifest.get("counts", {}).get("items"),
            indexes=indexes,
            candidate_sets=sets,
            timings=timings,
            files=record_files(tmp),
        )
    return manifest


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


def load_candidates(index_dir: str | Path, name: str, lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """A candidate set of an index directory by name (``click_to_cart``); ``lazy`` scans it instead,
    so that a reader that filters (the hit rate) never holds the whole table."""
    manifest = load_index_manifest(index_dir)
    if name not in manifest["candidate_sets"]:
        raise ConfigError(f"{index_dir}: no candidate set {name!r}; it has {', '.join(manifest['candidate_sets'])}")
    path = Path(index_dir) / candidates_file(name)  # load_index_manifest resolved it: inside index_dir
    try:
        scan = pl.scan_parquet(path)
        check_candidates_schema(path, scan.collect_schema())  # a missing or broken file fails here, with the path
        return scan if lazy else scan.collect()
    except (OSError, pl.exceptions.PolarsError) as e:
        raise ArtifactError(f"{path}: unreadable candidate set ({e})") from None


__all__ = ["INDEX_FORMAT", "build_index", "candidates_path", "load_candidates"]
