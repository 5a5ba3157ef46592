"""Broken, tampered and unsafe artifacts: one ``Error:`` line naming the file and field, exit 2, never a
traceback and never a quietly wrong number.

Each malformed artifact is made from a good one and its ``files`` record is recomputed (as a writer
that wrote the bad content would have), so the validators are what refuses it, not the size check.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner, Result

from recs.artifacts import read_manifest
from recs.cli.main import cli
from recs.config import EvalConfig
from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError, RecsError
from recs.eval.hitrate import coverage, hit_rate

from helpers import sessions_frame

ITEMS = list(range(1, 31))


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def one_line_error(r: Result) -> str:
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.output
    assert "Traceback" not in r.output
    return lines[0]


def vocab_of(items: list[Any], interactions: tuple[str, ...]) -> pl.DataFrame:
    rows = [(i, x) for x in interactions for i in items]
    return pl.DataFrame({
        "token_id": pl.Series(range(len(rows)), dtype=pl.Int32),
        "token": [f"{i}:{x}" for i, x in rows],
        "item_id": [i for i, _ in rows],
        "interaction": [x for _, x in rows],
        "count": pl.Series([1 + (j * 7) % 11 for j in range(len(rows))], dtype=pl.Int64),
    })


def make_model(out: Path, items: list[Any], interactions: tuple[str, ...] = ("click", "cart")) -> Path:
    vocab = vocab_of(items, interactions)
    rng = np.random.default_rng(0)
    n = vocab.height
    EmbeddingModel(vocab, rng.standard_normal((n, 8)).astype(np.float32),
                   rng.standard_normal((n, 8)).astype(np.float32),
                   {"config": {"dim": 8, "ns_exponent": 0.75}, "counts": {"items": len(items)}}).save(out)
    return out


def build(model: Path, out: Path, pairs: str = "click:cart,cart:cart") -> Result:
    return run("build-index", "--model", model, "--out", out, "--k", 5, "--threads", 1, "--quiet", "--pairs", pairs)


def sessions_of(items: list[Any]) -> pl.DataFrame:
    return sessions_frame({f"s{j}": [(items[j], "click"), (items[j + 1], "click"), (items[j + 2], "cart")]
                           for j in range(0, len(items) - 2, 3)})



@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("art")
    make_model(d / "model", ITEMS)
    assert build(d / "model", d / "index").exit_code == 0
    sessions_of(ITEMS).write_parquet(d / "test.parquet")
    strings = [f"sku{i}" for i in ITEMS]
    make_model(d / "smodel", strings)
    assert build(d / "smodel", d / "sindex").exit_code == 0
    sessions_of(strings).write_parquet(d / "stest.parquet")
    return d


def rerecord(directory: Path) -> None:
    """Recompute the manifest's ``files`` record, if it has one, for the files as they are now."""
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return
    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p != path:
            files[p.relative_to(directory).as_posix()] = {
                "bytes": p.stat().st_size, "blake2b": hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()}
    manifest["files"] = files
    path.write_text(json.dumps(manifest))


def set_manifest(value: Any) -> Callable[[Path], None]:
    return lambda d: (d / "manifest.json").write_text(json.dumps(value))


def edit_manifest(fn: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def mutate(d: Path) -> None:
        manifest = json.loads((d / "manifest.json").read_text())
        fn(manifest)
        (d / "manifest.json").write_text(json.dumps(manifest))
    return mutate


def edit_vectors(fn: Callable[[np.ndarray], np.ndarray], names: tuple[str, ...] = ("vectors_in.npy",
                                                                                  "vectors_out.npy")):
    def mutate(d: Path) -> None:
        for name in names:
            np.save(d / name, fn(np.load(d / name)), allow_pickle=False)
    return mutate


def edit_tokens(fn: Callable[[pl.DataFrame], pl.DataFrame]) -> Callable[[Path], None]:
    return lambda d: fn(pl.read_parquet(d / "tokens.parquet")).write_parquet(d / "tokens.parquet")


def manifest_dir(d: Path) -> None:
    (d / "manifest.json").unlink()
    (d / "manifest.json").mkdir()


def _set(arr: np.ndarray, where: tuple[int, int], value: float) -> np.ndarray:
    arr = arr.copy()
    arr[where] = value
    return arr


def _token_ids(ids: Callable[[list[int]], list[int]]) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda v: v.with_columns(pl.Series("token_id", ids(v["token_id"].to_list()), dtype=pl.Int32))


MODEL_CASES = {
    "manifest-list": (set_manifest([1, 2]), ["manifest.json", "JSON object"]),
    "manifest-null": (set_manifest(None), ["manifest.json", "JSON object"]),
    "manifest-dir": (manifest_dir, ["manifest.json", "cannot read"]),
    "counts-list": (edit_manifest(lambda m: m.update(counts=[1, 2])), ["manifest.json", "'counts'"]),
    "config-ns-string": (edit_manifest(lambda m: m["config"].update(ns_exponent="x")),
                         ["manifest.json", "'config.ns_exponent'"]),
    "vectors-1d": (edit_vectors(lambda v: v[:, 0]), ["vectors_in.npy", "2-D"]),
    "vectors-3d": (edit_vectors(lambda v: v[:, :, None]), ["vectors_in.npy", "2-D"]),
    "vectors-strings": (edit_vectors(lambda v: v.astype(str)), ["vectors_in.npy", "float32"]),
    "vectors-rows": (edit_vectors(lambda v: v[:-1], ("vectors_out.npy",)), ["vectors_out.npy", "rows"]),
    "vectors-nan": (edit_vectors(lambda v: _set(v, (3, 2), np.nan), ("vectors_out.npy",)),
                    ["vectors_out.npy", "NaN", "row 3"]),
    "vectors-inf": (edit_vectors(lambda v: _set(v, (0, 0), np.inf), ("vectors_in.npy",)),
                    ["vectors_in.npy", "inf", "row 0"]),
    "vectors-dim-0": (edit_vectors(lambda v: v[:, :0]), ["vectors_in.npy", "dimension"]),
    "tokens-no-interaction": (edit_tokens(lambda v: v.drop("interaction")), ["tokens.parquet", "'interaction'"]),
    "tokens-no-count": (edit_tokens(lambda v: v.drop("count")), ["tokens.parquet", "'count'"]),
    "tokens-count-string": (edit_tokens(lambda v: v.with_columns(pl.col("count").cast(pl.String))),
                            ["tokens.parquet", "'count'"]),
    "token-id-out-of-range": (edit_tokens(_token_ids(lambda t: [*t[:-1], len(t) + 5])),
                              ["tokens.parquet", "'token_id'"]),
    "token-id-negative": (edit_tokens(_token_ids(lambda t: [-1, *t[1:]])), ["tokens.parquet", "'token_id'"]),
    "token-id-not-row-order": (edit_tokens(_token_ids(lambda t: [t[1], t[0], *t[2:]])),
                               ["tokens.parquet", "'token_id'", "row"]),
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_malformed_model_is_refused_by_build_index(art, tmp_path, case):
    mutate, expected = MODEL_CASES[case]
    bad = tmp_path / "model"
    shutil.copytree(art / "model", bad)
    mutate(bad)
    rerecord(bad)
    msg = one_line_error(build(bad, tmp_path / "index", "click:cart"))
    for part in expected:
        assert part in msg, (part, msg)
    assert str(bad) in msg
    assert not (tmp_path / "index").exists()


def _plant_outside(d: Path) -> None:
    """A valid candidate set where ``source = ../../outside`` would lead, so a reader that follows it succeeds."""
    shutil.copy(d / "candidates" / "click_to_cart.parquet", d.parent / "outside_to_cart.parquet")
    edit_manifest(lambda m: m["candidate_sets"]["click_to_cart"].update(source="../../outside"))(d)


def _plant_absolute(d: Path) -> None:
    elsewhere = d.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(d / "candidates" / "click_to_cart.parquet", elsewhere / "abs_to_cart.parquet")
    edit_manifest(lambda m: m["candidate_sets"]["click_to_cart"].update(source=str(elsewhere / "abs")))(d)


def _symlinked_candidates(d: Path) -> None:
    shutil.move(d / "candidates", d.parent / "real_candidates")
    (d / "candidates").symlink_to(d.parent / "real_candidates")


def _rename_set(m: dict[str, Any]) -> None:
    m["candidate_sets"]["../click_to_cart"] = m["candidate_sets"].pop("click_to_cart")


def _drop_candidate_column(d: Path) -> None:
    path = d / "candidates" / "click_to_cart.parquet"
    pl.read_parquet(path).drop("candidate_item_id").write_parquet(path)


INDEX_CASES = {
    "manifest-empty-list": (set_manifest([]), ["manifest.json", "JSON object"]),
    "no-candidate-sets": (edit_manifest(lambda m: m.pop("candidate_sets")), ["manifest.json", "'candidate_sets'"]),
    "no-config": (edit_manifest(lambda m: m.pop("config")), ["manifest.json", "'config'"]),
    "config-k-string": (edit_manifest(lambda m: m["config"].update(k="5")), ["manifest.json", "'config.k'"]),
    "sets-list": (edit_manifest(lambda m: m.update(candidate_sets=list(m["candidate_sets"].values()))),
                  ["manifest.json", "'candidate_sets'"]),
    "set-without-source": (edit_manifest(lambda m: m["candidate_sets"]["click_to_cart"].pop("source")),
                           ["manifest.json", "'candidate_sets.click_to_cart.source'"]),
    "catalogue-string": (edit_manifest(lambda m: m.update(training_catalogue_items="many")),
                         ["manifest.json", "'training_catalogue_items'"]),
    "parquet-without-candidate": (_drop_candidate_column, ["click_to_cart.parquet", "'candidate_item_id'"]),
    "source-traversal": (_plant_outside, ["manifest.json", "'candidate_sets.click_to_cart.source'",
                                          "letters, digits"]),
    "source-absolute": (_plant_absolute, ["manifest.json", "'candidate_sets.click_to_cart.source'"]),
    "set-name-traversal": (edit_manifest(_rename_set), ["manifest.json", "'../click_to_cart'"]),
    "candidates-symlink-outside": (_symlinked_candidates, ["click_to_cart.parquet", "outside"]),
}


@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_malformed_index_is_refused_by_eval_hitrate(art, tmp_path, case):
    mutate, expected = INDEX_CASES[case]
    bad = tmp_path / "index"
    shutil.copytree(art / "index", bad)
    mutate(bad)
    rerecord(bad)
    msg = one_line_error(run("eval-hitrate", "--index", bad, "--sessions", art / "test.parquet"))
    for part in expected:
        assert part in msg, (part, msg)
    assert str(bad) in msg


def test_unsafe_interaction_names_in_pairs_are_refused(tmp_path):
    model = make_model(tmp_path / "m", ITEMS, ("click", "../../evil"))
    out = tmp_path / "runs" / "index"
    msg = one_line_error(build(model, out, "click:../../evil"))
    assert "--pairs" in msg and "'../../evil'" in msg and "letters, digits" in msg
    written = [p for p in tmp_path.rglob("*") if p.is_file() and tmp_path / "m" not in p.parents]
    assert not written  # not runs/evil.prob.faiss, where indexes/../../evil.prob.faiss points


def test_unreadable_manifest_is_an_artifact_error(art, monkeypatch):
    def denied(self: Path, *a: object, **k: object) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)
    with pytest.raises(ArtifactError, match=r"manifest\.json.*Permission denied"):
        read_manifest(art / "model", "recs.model", 1)


def test_training_refuses_to_save_non_finite_or_empty_vectors(tmp_path):
    vocab = vocab_of(ITEMS[:3], ("click",))
    good = np.ones((3, 4), np.float32)
    for bad in (_set(good, (1, 1), np.nan), _set(good, (2, 0), -np.inf), np.ones((3, 0), np.float32)):
        with pytest.raises(RecsError, match=r"vectors_in"):
            EmbeddingModel(vocab, bad, good).save(tmp_path / "m")
        assert not (tmp_path / "m").exists()


def test_item_ids_of_two_kinds_compare_as_text_and_say_so(art, tmp_path):
    """A CSV split can read its training days as text (``007``) and its test day as integers; the ids are
    names either way, so they are compared as text (not cast to null, which scored 0 hits silently)."""
    r = run("eval-hitrate", "--index", art / "index", "--sessions", art / "stest.parquet",
            "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.output
    flat = " ".join(r.output.split())  # the note wraps at the console width, wherever the tmp path ends
    assert "note: test sessions have string item ids" in flat and "compared as text" in flat
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["notes"] and str(art / "model") in report["notes"][0]  # which model the index came from
    cands = pl.DataFrame({"item_id": ITEMS[:-1], "candidate_item_id": ITEMS[1:], "rank": 1, "score": 1.0})
    as_ints, as_text = sessions_of(ITEMS), sessions_of([str(i) for i in ITEMS])
    expected = hit_rate(as_ints, cands, "click", EvalConfig())
    assert expected["hits"] > 0
    assert hit_rate(as_text, cands, "click", EvalConfig()) == expected
    assert coverage(as_text, cands, "click", 10) == coverage(as_ints, cands, "click", 10)
    # other names really are other items: no hit, and no error
    assert hit_rate(sessions_of([f"sku{i}" for i in ITEMS]), cands, "click", EvalConfig())["hits"] == 0
    # integer widths still mix: Int32 candidates score against Int64 sessions
    narrow = cands.with_columns(pl.col("item_id", "candidate_item_id").cast(pl.Int32))
    assert hit_rate(as_ints, narrow, "click", EvalConfig()) == expected


def test_manifests_record_file_sizes_and_hashes(art):
    for name, expected in (("model", {"tokens.parquet", "vectors_in.npy", "vectors_out.npy"}),
                           ("index", {"candidates/click_to_cart.parquet", "candidates/cart_to_cart.parquet",
                                      "indexes/cart.prob.faiss"})):
        files = json.loads((art / name / "manifest.json").read_text())["files"]
        assert set(files) == expected
        for rel, rec in files.items():
            data = (art / name / rel).read_bytes()
            assert rec == {"bytes": len(data), "blake2b": hashlib.blake2b(data, digest_size=16).hexdigest()}


def test_size_change_is_refused_on_read(art, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(art / "model", model)
    with open(model / "vectors_in.npy", "ab") as f:
        f.write(b"\0" * 16)  # np.load ignores trailing bytes: only the size record notices
    msg = one_line_error(build(model, tmp_path / "i", "click:cart"))
    assert "vectors_in.npy" in msg and "bytes" in msg
    index = tmp_path / "index"
    shutil.copytree(art / "index", index)
    path = index / "candidates" / "click_to_cart.parquet"
    pl.read_parquet(path).head(20).write_parquet(path)  # a valid parquet, other content and size
    msg = one_line_error(run("eval-hitrate", "--index", index, "--sessions", art / "test.parquet"))
    assert "click_to_cart.parquet" in msg and "bytes" in msg


def test_check_command(art, tmp_path):
    for name in ("model", "index"):
        r = run("check", art / name)
        assert r.exit_code == 0, r.output
        assert "ok" in r.output and "mismatch" not in r.output
    assert "vectors_in.npy" in run("check", art / "model").output
    # bytes overwritten in place: same size, so only the hash tells
    index = tmp_path / "index"
    shutil.copytree(art / "index", index)
    path = index / "candidates" / "click_to_cart.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    r = run("check", index)
    assert r.exit_code == 2 and "mismatch" in r.output and "Traceback" not in r.output
    errors = [ln for ln in r.output.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and "candidates/click_to_cart.parquet" in errors[0]
    # a file gone
    (index / "indexes" / "cart.prob.faiss").unlink()
    r = run("check", index)
    assert r.exit_code == 2 and "missing" in r.output
    # not an artifact
    msg = one_line_error(run("check", tmp_path))
    assert "manifest.json" in msg


def test_artifacts_without_a_files_record_still_load(art, tmp_path):
    old = tmp_path / "model"
    shutil.copytree(art / "model", old)
    edit_manifest(lambda m: m.pop("files", None))(old)
    assert build(old, tmp_path / "index", "click:cart").exit_code == 0
    # ... but `recs check` cannot verify them, and says so with exit 2 (a stripped record is no pass)
    r = run("check", old)
    assert r.exit_code == 2 and "Error:" in r.output and "nothing can be verified" in r.output


@pytest.mark.parametrize("files", [[1, 2], {"../outside.npy": {"bytes": 1, "blake2b": "00" * 16}},
                                   {"/etc/passwd": {"bytes": 1, "blake2b": "00" * 16}},
                                   {"tokens.parquet": {"bytes": "12", "blake2b": "00" * 16}}])
def test_malformed_files_record_is_refused(art, tmp_path, files):
    bad = tmp_path / "model"
    shutil.copytree(art / "model", bad)
    edit_manifest(lambda m: m.update(files=files))(bad)
    msg = one_line_error(build(bad, tmp_path / "index", "click:cart"))
    assert "manifest.json" in msg and "'files" in msg
    msg = one_line_error(run("check", bad))
    assert "'files" in msg
