"""Partitioned candidate sets (``candidates/<name>/part-*.parquet``, as ``--engine spark`` writes them)
read as the single-file ones: same table through ``load_candidates`` (lazy and eager), same hit
rates, ``recs check`` over every part, the manifest rules of ``index_check`` for ``parts``.

No Spark here: a test writer splits the single-machine search's table into parts through the same
``write_index`` hook (``SetWriter``) the Spark search uses, so these run without the extra.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recs.artifacts import read_manifest, record_files, verify_artifact
from recs.candidates.build import (
    INDEX_FORMAT,
    build_index,
    load_candidates,
    load_index_manifest,
    write_faiss_indexes,
    write_index,
)
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.index_check import part_file
from recs.candidates.registry import OURS
from recs.columns import Col
from recs.config import IndexConfig
from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError

from helpers import one_line_error, planted_small_model, run_cli

PARTS = 4
SETS = ("click_to_cart", "cart_to_cart")
CFG = IndexConfig(k=20, threads=1)


class PartsWriter:
    """Writes each set as ``PARTS`` parts split by query item (the last one empty), as Spark's query
    partitions do: one item's list in one part, rows in the single-machine order."""

    def __enter__(self) -> PartsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        return {"name": "test-parts"}

    def write_indexes(self, tmp, gen, pairs, k, timings):
        return write_faiss_indexes(tmp, gen, pairs, k, timings)

    def write_set(self, tmp: Path, gen: EmbeddingCandidates, source: str, target: str, k: int) -> int:
        table = gen.candidates(source, target, k)
        name = f"{source}_to_{target}"
        (tmp / part_file(name, 0)).parent.mkdir()
        items = table[Col.ITEM].unique(maintain_order=True)
        cut = [0, len(items) // 3, 2 * len(items) // 3, len(items), len(items)]
        for i in range(PARTS):
            chunk = items[cut[i]:cut[i + 1]]
            table.filter(pl.col(Col.ITEM).is_in(chunk.implode())).write_parquet(tmp / part_file(name, i))
        return PARTS


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("parts")
    planted_small_model(d, 3)
    build_index(d / "model", d / "single", CFG)
    model = EmbeddingModel.load(d / "model")
    gen = EmbeddingCandidates(index_config=CFG, model=model, name=OURS)
    write_index(d / "parts", gen, CFG, {"model": {"path": str(d / "model"), "fingerprint": "x"}},
                model.manifest["counts"]["items"], writer=PartsWriter())
    return d


def copy(indexes: Path, tmp_path: Path) -> Path:
    shutil.copytree(indexes / "parts", tmp_path / "parts")
    return tmp_path / "parts"


def edit(index: Path, fn) -> None:
    path = index / "manifest.json"
    manifest = json.loads(path.read_text())
    fn(manifest)
    path.write_text(json.dumps(manifest))


def rerecord(index: Path) -> None:
    edit(index, lambda m: m.update(files=record_files(index)))


def test_parts_read_as_the_single_file(indexes):
    single, parts = load_index_manifest(indexes / "single"), load_index_manifest(indexes / "parts")
    assert single["format_version"] == 1 and parts["format_version"] == 2  # single-file indexes: old recs read them
    assert single["engine"] == {"name": "polars"} and parts["engine"] == {"name": "test-parts"}
    for name in SETS:
        want = load_candidates(indexes / "single", name)
        assert want.height > 1000
        for lazy in (False, True):
            got = load_candidates(indexes / "parts", name, lazy=lazy)
            assert isinstance(got, pl.LazyFrame) == lazy
            assert (got.collect() if lazy else got).equals(want)
        info = parts["candidate_sets"][name]
        assert info["parts"] == PARTS and "parts" not in single["candidate_sets"][name]
        for key in ("items", "rows", "mean_list_length", "backoff_queries"):
            assert info[key] == single["candidate_sets"][name][key]
        listed = sorted(f for f in parts["files"] if f.startswith(f"candidates/{name}"))
        assert listed == [f"candidates/{name}/part-{i:05d}.parquet" for i in range(PARTS)]
        assert pl.read_parquet(indexes / "parts" / part_file(name, PARTS - 1)).height == 0  # an empty part reads


def test_eval_hitrate_scores_parts_as_the_single_file(indexes, tmp_path):
    results = {}
    for kind in ("single", "parts"):
        r = run_cli("eval-hitrate", "--index", indexes / kind, "--sessions", indexes / "test.parquet",
                    "--json", tmp_path / f"{kind}.json")
        assert r.exit_code == 0, r.output
        results[kind] = json.loads((tmp_path / f"{kind}.json").read_text())["results"]
    assert json.dumps(results["parts"]) == json.dumps(results["single"])  # NaN (no discovery targets) included
    assert sum(row["hits"] for row in results["single"]) > 0


def test_check_verifies_every_part(indexes, tmp_path):
    r = run_cli("check", indexes / "parts")
    assert r.exit_code == 0, r.output
    rows = {row["file"]: row["status"] for row in verify_artifact(indexes / "parts")["files"]}
    assert {rows[part_file(name, i)] for name in SETS for i in range(PARTS)} == {"ok"}
    index = copy(indexes, tmp_path)
    path = index / part_file("cart_to_cart", 1)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the hash tells
    path.write_bytes(bytes(data))
    assert "candidates/cart_to_cart/part-00001.parquet (mismatch)" in error_line(run_cli("check", index))
    path.unlink()
    assert "candidates/cart_to_cart/part-00001.parquet (missing)" in error_line(run_cli("check", index))


def error_line(r) -> str:
    """``recs check`` shows its table, then one Error line; exit 2."""
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error: ")]
    assert r.exit_code == 2 and len(errors) == 1 and "Traceback" not in r.output, r.output
    return errors[0]


def test_a_missing_part_is_refused_on_load_naming_it(indexes, tmp_path):
    index = copy(indexes, tmp_path)
    (index / part_file("click_to_cart", 2)).unlink()
    with pytest.raises(ArtifactError, match=re.escape("click_to_cart/part-00002.parquet")):
        load_candidates(index, "click_to_cart", lazy=True)  # lazy too: not in the middle of a later scan
    msg = one_line_error(run_cli("eval-hitrate", "--index", index, "--sessions", indexes / "test.parquet"))
    assert "part-00002.parquet" in msg


@pytest.mark.parametrize("bad", [0, -1, "4", True, 1.5, 100_001])
def test_parts_must_be_a_count(indexes, tmp_path, bad):
    index = copy(indexes, tmp_path)
    edit(index, lambda m: m["candidate_sets"]["click_to_cart"].update(parts=bad))
    with pytest.raises(ArtifactError, match=r"candidate_sets\.click_to_cart\.parts.*must be an integer"):
        load_index_manifest(index)


def test_every_part_must_be_in_the_files_record(indexes, tmp_path):
    index = copy(indexes, tmp_path)
    edit(index, lambda m: m["files"].pop("candidates/click_to_cart/part-00001.parquet"))
    with pytest.raises(ArtifactError, match=re.escape("does not list candidates/click_to_cart/part-00001.parquet")):
        load_index_manifest(index)
    # a count larger than the parts written names the first part that is not there
    index2 = tmp_path / "more"
    shutil.copytree(indexes / "parts", index2)
    edit(index2, lambda m: m["candidate_sets"]["click_to_cart"].update(parts=PARTS + 1))
    with pytest.raises(ArtifactError, match=re.escape("part-00004.parquet")):
        load_index_manifest(index2)


def test_parts_of_one_set_have_one_schema(indexes, tmp_path):
    index = copy(indexes, tmp_path)
    path = index / part_file("click_to_cart", 1)
    pl.read_parquet(path).with_columns(pl.col(Col.RANK).cast(pl.Int64)).write_parquet(path)
    rerecord(index)
    with pytest.raises(ArtifactError, match=r"part-00001.parquet: columns .* differ from the first part"):
        load_candidates(index, "click_to_cart")
    pl.read_parquet(path).drop(Col.SCORE).write_parquet(path)
    rerecord(index)
    with pytest.raises(ArtifactError, match=re.escape("part-00001.parquet: no column 'score'")):
        load_candidates(index, "click_to_cart")


def test_format_versions(indexes, tmp_path):
    # a recs that reads version 1 only refuses a partitioned index with the version message
    with pytest.raises(ArtifactError, match="format version 2, this recs reads version 1; rebuild"):
        read_manifest(indexes / "parts", INDEX_FORMAT, 1)
    read_manifest(indexes / "single", INDEX_FORMAT, 1)  # and still reads what the default engine writes
    index = copy(indexes, tmp_path)
    edit(index, lambda m: m.update(format_version=3))
    with pytest.raises(ArtifactError, match="format version 3, this recs reads version 1 or 2"):
        load_index_manifest(index)


@pytest.mark.parametrize(("args", "message"), [
    (["--shards", "2"], "--shards 2 splits the index across Spark executors: give --engine spark"),
    (["--spark-master", "local[2]"], "--spark-master is for --engine spark"),
    (["--engine", "spark", "--shards", "0"], "--shards must be in 1..4,096"),
    (["--engine", "spark", "--method", "co-visitation", "--sessions", "train.parquet"],
     "--engine spark runs the HNSW search of --method ours; --method co-visitation is built on one machine"),
])
def test_engine_options_are_checked_before_anything_is_read(tmp_path, args, message):
    # no model, no sessions file, no Spark: the options alone are refused, in one line
    source = [] if "--sessions" in args else ["--model", tmp_path / "no-model"]
    msg = one_line_error(run_cli("build-index", *source, "--out", tmp_path / "i", *args))
    assert message in msg
