"""``recs build-index``: MODEL_DIR in, INDEX_DIR with HNSW indexes and candidate sets out."""

from __future__ import annotations

from pathlib import Path

import click

from recs.candidates.build import build_index
from recs.cli.options import score_options
from recs.cli.render import console, table
from recs.config import IndexConfig, parse_pairs
from recs.progress import TqdmProgress

_I = IndexConfig()


@click.command("build-index")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=Path("model"), show_default=True,
              help="Model directory written by train-embeddings.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("index"), show_default=True,
              help="Index directory to write (replaced atomically if it is a recs index).")
@click.option("--pairs", default=",".join(f"{s}:{t}" for s, t in _I.pairs), show_default=True,
              help="Candidate sets as SOURCE:TARGET interactions, comma-separated (any pair in the model).")
@click.option("--k", type=int, default=_I.k, show_default=True, help="Candidates per item.")
@click.option("--m", type=int, default=_I.m, show_default=True, help="HNSW M (graph degree).")
@click.option("--ef-construction", type=int, default=_I.ef_construction, show_default=True, help="HNSW efConstruction.")
@click.option("--ef-search", type=int, default=_I.ef_search, show_default=True,
              help="HNSW efSearch (raised to k if lower; doubled for --score prob and in-out, whose index "
                   "is searched through the MIPS-to-L2 transform).")
@score_options
@click.option("--threads", type=int, default=_I.threads, show_default=True, help="Faiss threads.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def index_cmd(model_dir: Path, out: Path, pairs: str, k: int, m: int, ef_construction: int, ef_search: int,
              score: str, backoff: bool, shrink: float, threads: int, quiet: bool) -> None:
    """Index vectors per target interaction (Faiss HNSW) and write candidate sets.

    For every item with a SOURCE vector (with --backoff: every item in the model), its k best
    TARGET candidates by --score (the item itself left out), written to
    INDEX_DIR/candidates/<source>_to_<target>.parquet with columns item_id, candidate_item_id,
    rank, score.

    \b
    Example:
      recs build-index --model runs/model --out runs/index --pairs click:cart,cart:cart,click:click
    """
    cfg = IndexConfig(pairs=parse_pairs(pairs), k=k, m=m, ef_construction=ef_construction, ef_search=ef_search,
                      score=score, backoff=backoff, shrink=shrink, threads=threads)
    manifest = build_index(model_dir, out, cfg, TqdmProgress(not quiet))
    rows = [{"candidate set": name, "items": s["items"], "rows": s["rows"], "mean list length": s["mean_list_length"]}
            for name, s in manifest["candidate_sets"].items()]
    console.print(table(f"wrote {out} (score: {score}, backoff: {'on' if backoff else 'off'}, k={k})", rows))


COMMANDS = [index_cmd]
