"""``build-index --engine spark --out URI``: an index at a URI, committed by its manifest (recs.spark.store).

The store is a directory named only by a ``file://`` URI. Its candidate parts (written by the
executors) hold the rows of the local Spark index in the same order; readers read exactly the files
the manifest lists, so a dead run's parts beside them change nothing; a run that dies before its
manifest leaves the previous index committed, and the next writer sweeps what no kept manifest
names (a dead run at once, the superseded run one write later). Uses the test session (local[2]).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from recs.candidates.build import load_candidates
from recs.columns import Col
from recs.errors import RecsError

from helpers import one_line_error, planted_split, run_cli

pytest.importorskip("pyspark", reason="pyspark is not installed: pip install -e '.[spark]' (and Java 17+)")

from recs.spark import store

SETS = ("click_to_cart", "cart_to_cart")
TRAIN = ["--dim", "16", "--epochs", "2", "--workers", "1", "--quiet"]
INDEX = ["--k", 20, "--threads", 1, "--engine", "spark", "--quiet"]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A planted model and its index built by the Spark engine into a local directory (``local``)."""
    d = tmp_path_factory.mktemp("store")
    planted_split(d, 12_000, 9)
    assert run_cli("train-embeddings", d / "train.parquet", "--out", d / "model", *TRAIN).exit_code == 0
    assert run_cli("build-index", "--model", d / "model", "--out", d / "local", *INDEX).exit_code == 0
    return d


def local_path(uri: str) -> Path:
    assert uri.startswith("file:")
    return Path(uri.removeprefix("file://").removeprefix("file:"))


def listed(spark, uri: str, name: str) -> pl.DataFrame:
    """A set as a reader gets it: the manifest's files, in order, and nothing else."""
    manifest = store.read_store_manifest(spark, uri)
    return pl.concat([pl.read_parquet(local_path(u)) for u in store.candidate_uris(manifest, uri, name)])


def runs(root: Path) -> set[str]:
    return {p.name for p in (root / "candidates" / "click_to_cart").iterdir()}


def test_index_at_a_uri_is_the_local_index_committed_by_its_manifest(spark, planted, tmp_path, monkeypatch):
    d = planted
    root = tmp_path / "bucket" / "indexes" / "ours"
    uri = root.as_uri()
    monkeypatch.chdir(tmp_path)  # neither the store nor the model
    r = run_cli("build-index", "--model", d / "model", "--out", uri, *INDEX)
    assert r.exit_code == 0, r.output
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == store.STORE_FORMAT and manifest["store"]["previous_run"] is None
    first = manifest["store"]["run"]
    for name in SETS:
        want = load_candidates(d / "local", name)
        assert listed(spark, uri, name).equals(want)  # same rows, same order, same types
        entry = manifest["candidate_sets"][name]
        assert entry["rows"] == want.height and entry["items"] == want[Col.ITEM].n_unique()
        assert all(f.startswith(f"candidates/{name}/{first}/part-") for f in entry["files"])
        assert store.read_candidates_at(spark, uri, name).count() == want.height
    assert (root / manifest["indexes"]["cart"]["shards"][0]["file"] if "shards" in manifest["indexes"]["cart"]
            else root / f"indexes/{first}/cart.prob.faiss").read_bytes() == (
        d / "local" / "indexes" / "cart.prob.faiss").read_bytes()
    # (Hadoop's local file system keeps a hidden .NAME.crc beside each file it writes: its own, not ours)
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.endswith(".crc")}
    named = {f for s in manifest["candidate_sets"].values() for f in s["files"]} | set(manifest["files"])
    assert on_disk == named | {"manifest.json"}  # Spark's _SUCCESS and checksums swept

    # a dead run's parts beside the index: readers do not see them; the next writer sweeps them
    dead = root / "candidates" / "click_to_cart" / "dead-run"
    dead.mkdir()
    pl.DataFrame({Col.ITEM: [1], Col.CANDIDATE: [2]}).write_parquet(dead / "part-00000-x.c000.zstd.parquet")
    assert listed(spark, uri, "click_to_cart").equals(load_candidates(d / "local", "click_to_cart"))

    # a run that dies before its manifest: the first index stays committed
    def die(*_args, **_kw):
        raise RecsError("killed before the commit")

    monkeypatch.setattr(store, "write_bytes", die)
    with pytest.raises(RecsError, match="killed"):
        store.build_index_at_uri(d / "model", uri)
    monkeypatch.undo()
    assert json.loads((root / "manifest.json").read_text())["store"]["run"] == first
    assert len(runs(root)) == 3  # first, dead-run and the killed run's parts
    assert listed(spark, uri, "click_to_cart").equals(load_candidates(d / "local", "click_to_cart"))

    second = store.build_index_at_uri(d / "model", uri)["store"]
    assert second["previous_run"] == first and runs(root) == {first, second["run"]}  # the dead ones swept
    third = store.build_index_at_uri(d / "model", uri)["store"]
    assert runs(root) == {second["run"], third["run"]}  # the superseded first run goes one write later
    assert {p.name for p in (root / "indexes").iterdir()} == {second["run"], third["run"]}


def test_uri_out_errors_are_one_line(spark, planted, tmp_path):
    d = planted
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"format": "delta"}')
    line = one_line_error(run_cli("build-index", "--model", d / "model", "--out", foreign.as_uri(), *INDEX))
    assert "not the manifest of a recs index store" in line
    assert (foreign / "manifest.json").read_text() == '{"format": "delta"}'
    line = one_line_error(run_cli("build-index", "--model", d / "model", "--out", (tmp_path / "x").as_uri(),
                                  "--k", 20, "--quiet"))
    assert "give --engine spark" in line and not (tmp_path / "x").exists()


def test_an_index_at_a_uri_is_read_by_the_other_commands(spark, planted, tmp_path):
    """fetch-index copies exactly the committed files into a local index (the local Spark index's lists
    and faiss file); eval-hitrate and check read the URI through a temporary copy; recommend and serve
    say how to copy it down."""
    d = planted
    root = tmp_path / "bucket" / "ours"
    uri = root.as_uri()
    assert run_cli("build-index", "--model", d / "model", "--out", uri, *INDEX).exit_code == 0
    dead = root / "candidates" / "click_to_cart" / "dead-run"  # a dead run's parts: not copied
    dead.mkdir()
    pl.DataFrame({Col.ITEM: [1], Col.CANDIDATE: [2]}).write_parquet(dead / "part-00000-x.c000.zstd.parquet")

    r = run_cli("fetch-index", uri, "--out", tmp_path / "fetched", "--quiet")
    assert r.exit_code == 0, r.output
    fetched = tmp_path / "fetched"
    for name in SETS:
        assert load_candidates(fetched, name).equals(load_candidates(d / "local", name))
    assert (fetched / "indexes" / "cart.prob.faiss").read_bytes() == (
        d / "local" / "indexes" / "cart.prob.faiss").read_bytes()
    manifest = json.loads((fetched / "manifest.json").read_text())
    assert manifest["format"] == "recs.index" and manifest["fetched"]["uri"] == uri
    assert manifest["catalogue_items"] == json.loads((d / "local" / "manifest.json").read_text())["catalogue_items"]
    assert run_cli("check", fetched).exit_code == 0

    r = run_cli("check", uri, "--quiet")
    assert r.exit_code == 0 and uri in r.output.replace("\n", ""), r.output  # (the title wraps)
    report = {}
    for index in (uri, d / "local"):
        out = tmp_path / f"eval-{len(report)}.json"
        r = run_cli("eval-hitrate", "--index", index, "--sessions", d / "test.parquet", "--bootstrap", 0,
                    "--json", out, "--quiet")
        assert r.exit_code == 0, r.output
        report[str(index)] = json.loads(out.read_text())
    assert report[uri]["index"] == uri
    assert report[uri]["results"] == report[str(d / "local")]["results"]

    for command in (["recommend", "--index", uri, "--history", d / "test.parquet", "--out", tmp_path / "r.parquet"],
                    ["serve", "--index", uri]):
        line = one_line_error(run_cli(*command))
        assert f"--index {uri}: recs {command[0]} reads a local index directory" in line
        assert f"recs fetch-index {uri} --out DIR" in line

    # a part changed after the commit: named, with what the manifest recorded; nothing fetched
    part = next((root / "candidates" / "cart_to_cart" / manifest["fetched"]["run"]).glob("part-*.parquet"))
    part.write_bytes(part.read_bytes() + b"\0")
    part.with_name(f".{part.name}.crc").unlink()  # Hadoop's local checksum would catch it first; a store has none
    line = one_line_error(run_cli("fetch-index", uri, "--out", tmp_path / "again", "--quiet"))
    assert f"{part.name}: " in line and "but manifest.json recorded" in line
    assert not (tmp_path / "again").exists()
    assert "but manifest.json recorded" in one_line_error(run_cli("check", uri, "--quiet"))
    line = one_line_error(run_cli("fetch-index", (tmp_path / "nothing").as_uri(), "--out", tmp_path / "n"))
    assert "no index committed there" in line and not (tmp_path / "n").exists()
