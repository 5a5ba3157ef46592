"""Every command over a matrix of bad inputs and refused outputs (issue 9, items 3, 4 and 6).

Each case asserts what docs/artifacts.md promises: exit code 2, one ``Error:`` line that names the path at
fault, no traceback, no output file and no temporary left behind, and the inputs untouched.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from helpers import one_line_error, planted_split, run_cli, tree

TINY = ["--dim", "8", "--epochs", "1", "--workers", "1", "--quiet"]


run = run_cli


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """A small valid log, its split, a model and an index, built once for the module."""
    d = tmp_path_factory.mktemp("good")
    planted_split(d, 3000, 4)
    assert run("train-embeddings", d / "train.parquet", "--out", d / "model", *TINY).exit_code == 0
    r = run("build-index", "--model", d / "model", "--out", d / "index", "--k", 5, "--threads", 1, "--quiet")
    assert r.exit_code == 0, r.output
    pl.read_parquet(d / "s.parquet").write_csv(d / "s.csv")
    return d


# -- bad sessions files -----------------------------------------------------------------------------

def _missing(d: Path, good: Path) -> Path:
    return d / "nope.parquet"


def _empty(d: Path, good: Path) -> Path:
    (d / "empty.csv").write_text("")
    return d / "empty.csv"


def _zero_rows(d: Path, good: Path) -> Path:
    pl.read_parquet(good / "s.parquet").head(0).write_parquet(d / "zero.parquet")
    return d / "zero.parquet"


def _header_only(d: Path, good: Path) -> Path:
    (d / "header.csv").write_text("session_id,item_id,interaction,timestamp\n")
    return d / "header.csv"


def _wrong_types(d: Path, good: Path) -> Path:
    df = pl.read_parquet(good / "s.parquet").with_columns(pl.lit(3).alias("interaction"))
    df.write_parquet(d / "types.parquet")
    return d / "types.parquet"


def _nulls(d: Path, good: Path) -> Path:
    df = pl.read_parquet(good / "s.parquet")
    df = df.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("item_id")).alias("item_id"))
    df.write_parquet(d / "nulls.parquet")
    return d / "nulls.parquet"


def _directory(d: Path, good: Path) -> Path:
    (d / "adir.parquet").mkdir()
    return d / "adir.parquet"


def _garbage(d: Path, good: Path) -> Path:
    (d / "garbage.parquet").write_bytes(b"PAR1 this is not parquet at all")
    return d / "garbage.parquet"


BAD_SESSIONS: dict[str, Callable[[Path, Path], Path]] = {
    "missing": _missing, "empty": _empty, "zero-rows": _zero_rows, "header-only": _header_only,
    "wrong-types": _wrong_types, "nulls": _nulls, "directory": _directory, "garbage": _garbage,
}

# command -> argv given (sessions input, output directory, the good artifacts)
SESSION_COMMANDS: dict[str, Callable[[Path, Path, Path], list[object]]] = {
    "prepare": lambda s, o, g: ["prepare", s, "--out", o / "p.parquet", "--json", o / "p.json", "--quiet"],
    "stats": lambda s, o, g: ["stats", s, "--json", o / "st.json"],
    "split": lambda s, o, g: ["split", s, "--train", o / "a.parquet", "--test", o / "b.parquet",
                              "--json", o / "j.json"],
    "train-embeddings": lambda s, o, g: ["train-embeddings", s, "--out", o / "model", *TINY],
    "eval-hitrate": lambda s, o, g: ["eval-hitrate", "--index", g / "index", "--sessions", s, "--json", o / "e.json"],
    "compare": lambda s, o, g: ["compare", s, "--methods", "co-visitation", "--json", o / "c.json", "--quiet"],
}


@pytest.mark.parametrize("case", list(BAD_SESSIONS))
@pytest.mark.parametrize("command", list(SESSION_COMMANDS))
def test_bad_sessions_input(tmp_path, good, command, case):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    bad = BAD_SESSIONS[case](inputs, good)
    before = tree(inputs)
    msg = one_line_error(run(*SESSION_COMMANDS[command](bad, out, good)))
    assert bad.name in msg, msg
    assert tree(out) == set(), tree(out)
    assert tree(inputs) == before


# -- bad artifact directories -----------------------------------------------------------------------

def _artifact_missing(d: Path, good: Path, kind: str) -> Path:
    return d / "nothing"


def _artifact_empty_dir(d: Path, good: Path, kind: str) -> Path:
    (d / "emptydir").mkdir()
    return d / "emptydir"


def _artifact_is_a_file(d: Path, good: Path, kind: str) -> Path:
    (d / "afile").write_text("x")
    return d / "afile"


def _artifact_manifest_null(d: Path, good: Path, kind: str) -> Path:
    shutil.copytree(good / kind, d / "nullmanifest")
    (d / "nullmanifest" / "manifest.json").write_text("null")
    return d / "nullmanifest"


def _artifact_manifest_is_a_dir(d: Path, good: Path, kind: str) -> Path:
    shutil.copytree(good / kind, d / "dirmanifest")
    (d / "dirmanifest" / "manifest.json").unlink()
    (d / "dirmanifest" / "manifest.json").mkdir()
    return d / "dirmanifest"


def _artifact_file_missing(d: Path, good: Path, kind: str) -> Path:
    shutil.copytree(good / kind, d / "partial")
    victim = "vectors_in.npy" if kind == "model" else "candidates/click_to_cart.parquet"
    (d / "partial" / victim).unlink()
    return d / "partial"


BAD_ARTIFACTS = {
    "missing": _artifact_missing, "empty-dir": _artifact_empty_dir, "a-file": _artifact_is_a_file,
    "manifest-null": _artifact_manifest_null, "manifest-is-a-dir": _artifact_manifest_is_a_dir,
    "file-missing": _artifact_file_missing,
}
ARTIFACT_COMMANDS = {
    "build-index": ("model", lambda a, o, g: ["build-index", "--model", a, "--out", o / "index", "--quiet"]),
    "eval-hitrate": ("index", lambda a, o, g: ["eval-hitrate", "--index", a, "--sessions", g / "test.parquet",
                                               "--json", o / "e.json"]),
}


@pytest.mark.parametrize("case", list(BAD_ARTIFACTS))
@pytest.mark.parametrize("command", list(ARTIFACT_COMMANDS))
def test_bad_artifact_input(tmp_path, good, command, case):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    out.mkdir()
    kind, argv = ARTIFACT_COMMANDS[command]
    bad = BAD_ARTIFACTS[case](inputs, good, kind)
    before = tree(inputs)
    msg = one_line_error(run(*argv(bad, out, good)))
    assert bad.name in msg, msg
    assert tree(out) == set() and tree(inputs) == before


# -- outputs the OS refuses, and outputs that are inputs ----------------------------------------------

OUTPUT_COMMANDS: dict[str, Callable[[Path, Path], list[object]]] = {
    **{name: (lambda o, g, f=f: f(g / "s.parquet", o, g)) for name, f in SESSION_COMMANDS.items()
       if name != "eval-hitrate"},
    "eval-hitrate": lambda o, g: SESSION_COMMANDS["eval-hitrate"](g / "test.parquet", o, g),
    "synth": lambda o, g: ["synth", "--events", 500, "--out", o / "s.parquet", "--world", o / "w.parquet"],
    "build-index": lambda o, g: ["build-index", "--model", g / "model", "--out", o / "index", "--quiet"],
}


@pytest.mark.parametrize("command", list(OUTPUT_COMMANDS))
def test_read_only_output(good, readonly_dir, command):
    before = {p: p.stat().st_mtime_ns for p in good.rglob("*")}
    msg = one_line_error(run(*OUTPUT_COMMANDS[command](readonly_dir, good)))
    assert str(readonly_dir) in msg, msg
    assert tree(readonly_dir) == set()
    assert {p: p.stat().st_mtime_ns for p in good.rglob("*")} == before


def test_output_in_a_path_whose_parent_is_a_file(tmp_path, good):
    (tmp_path / "f").write_text("a file")
    msg = one_line_error(run("split", good / "s.parquet", "--train", tmp_path / "f" / "a.parquet",
                             "--test", tmp_path / "b.parquet"))
    assert "f/a.parquet" in msg and "not a directory" in msg
    assert tree(tmp_path) == {"f"}


# output = input: (command argv, the input that must stay as it was)
SAME_PATH = {
    "prepare": lambda g, t: ["prepare", t / "s.csv", "--out", t / "s.csv", "--quiet"],
    "prepare-json": lambda g, t: ["prepare", t / "s.csv", "--out", t / "p.parquet", "--json", t / "s.csv"],
    "split-train": lambda g, t: ["split", t / "s.parquet", "--train", t / "s.parquet", "--test", t / "b.parquet"],
    "split-test": lambda g, t: ["split", t / "s.parquet", "--train", t / "a.parquet", "--test", t / "s.parquet"],
    "split-json": lambda g, t: ["split", t / "s.parquet", "--train", t / "a.parquet", "--test", t / "b.parquet",
                                "--json", t / "s.parquet"],
    "split-same-outputs": lambda g, t: ["split", t / "s.parquet", "--train", t / "x.parquet",
                                        "--test", t / "sub" / ".." / "x.parquet"],
    "synth-same-outputs": lambda g, t: ["synth", "--events", 500, "--out", t / "x.parquet", "--world", t / "x.parquet"],
    "prepare-glob-json": lambda g, t: ["prepare", str(t / "*.csv"), "--out", t / "p.parquet", "--json", t / "s.csv"],
    "stats-json": lambda g, t: ["stats", t / "s.parquet", "--json", t / "s.parquet"],
    "train-out-holds-input": lambda g, t: ["train-embeddings", t / "s.parquet", "--out", t, *TINY],
    "eval-json": lambda g, t: ["eval-hitrate", "--index", t / "index", "--sessions", t / "s.parquet",
                               "--json", t / "s.parquet"],
    "build-index-out-is-model": lambda g, t: ["build-index", "--model", t / "model", "--out", t / "model"],
    "compare-json": lambda g, t: ["compare", t / "s.parquet", "--json", t / "s.parquet", "--quiet"],
    "compare-json-report": lambda g, t: ["compare", t / "s.parquet", "--json", t / "r.html", "--report", t / "r.html"],
}


@pytest.mark.parametrize("case", list(SAME_PATH))
def test_output_that_is_an_input_is_refused_before_reading(tmp_path, good, case):
    t = tmp_path / "w"
    t.mkdir()
    for name in ("s.parquet", "s.csv"):
        shutil.copy(good / name, t / name)
    shutil.copytree(good / "model", t / "model")
    shutil.copytree(good / "index", t / "index")
    (t / "sub").mkdir()
    before = {p: p.read_bytes() for p in t.rglob("*") if p.is_file()}
    names = tree(t)
    msg = one_line_error(run(*SAME_PATH[case](good, t)))
    assert "same file" in msg or "input" in msg or "not a recs.index directory" in msg, msg
    assert tree(t) == names
    assert {p: p.read_bytes() for p in t.rglob("*") if p.is_file()} == before


# -- multi-output commands are all-or-nothing ----------------------------------------------------------

def test_split_bad_test_suffix_writes_nothing(tmp_path, good):
    msg = one_line_error(run("split", good / "s.parquet", "--train", tmp_path / "a.parquet",
                             "--test", tmp_path / "b.xlsx"))
    assert "--test" in msg and "b.xlsx" in msg and tree(tmp_path) == set()


def test_split_unwritable_json_writes_no_parquet(tmp_path, good, readonly_dir):
    msg = one_line_error(run("split", good / "s.parquet", "--train", tmp_path / "a.parquet",
                             "--test", tmp_path / "b.parquet", "--json", readonly_dir / "j.json"))
    assert "j.json" in msg and tree(tmp_path) == {"readonly"}


def test_a_full_disk_is_one_line_and_takes_every_output_along(tmp_path, good, monkeypatch):
    """A full disk while writing: polars reports it as a ComputeError (no path), the OS as an OSError
    without a file name; either way one line naming the output, and no file of the command is left."""
    real_parquet = pl.DataFrame.write_parquet
    calls = []

    def full_on_second(self, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise pl.exceptions.ComputeError("failed to write parquet: No space left on device (os error 28)")
        return real_parquet(self, path, *a, **k)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full_on_second)
    msg = one_line_error(run("split", good / "s.parquet", "--train", tmp_path / "a.parquet",
                             "--test", tmp_path / "sub" / "b.parquet", "--json", tmp_path / "j.json"))
    assert "b.parquet: cannot write" in msg and "No space left" in msg and tree(tmp_path) == set()
    monkeypatch.undo()

    import recs.cli.render as render

    def full(*a, **k):
        raise OSError(28, "No space left on device")  # no filename, as a bare write() reports it

    monkeypatch.setattr(render.json, "dumps", full)
    msg = one_line_error(run("split", good / "s.parquet", "--train", tmp_path / "a.parquet",
                             "--test", tmp_path / "b.parquet", "--json", tmp_path / "j.json"))
    assert "j.json: cannot write (No space left on device)" in msg and tree(tmp_path) == set()


def test_prepare_unwritable_json_leaves_no_parquet(tmp_path, good, readonly_dir):
    msg = one_line_error(run("prepare", good / "s.csv", "--out", tmp_path / "p.parquet",
                             "--json", readonly_dir / "r.json", "--quiet"))
    assert "r.json" in msg and tree(tmp_path) == {"readonly"}


def test_synth_world_bad_suffix_writes_nothing(tmp_path):
    msg = one_line_error(run("synth", "--events", 500, "--out", tmp_path / "s.parquet", "--world", tmp_path / "w.txt"))
    assert "--world" in msg and tree(tmp_path) == set()


def test_synth_world_is_written_with_the_log(tmp_path):
    assert run("synth", "--events", 500, "--out", tmp_path / "s.parquet", "--world", tmp_path / "w.csv").exit_code == 0
    assert tree(tmp_path) == {"s.parquet", "w.csv"}
    assert "item_id" in pl.read_csv(tmp_path / "w.csv").columns


def test_tsv_output_is_tab_separated_and_reads_back(tmp_path, good):
    r = run("split", good / "s.parquet", "--train", tmp_path / "a.tsv", "--test", tmp_path / "b.tsv")
    assert r.exit_code == 0, r.output
    assert "\t" in (tmp_path / "a.tsv").read_text().splitlines()[0]
    assert run("stats", tmp_path / "a.tsv", "--json", tmp_path / "st.json").exit_code == 0
    assert json.loads((tmp_path / "st.json").read_text())


def test_out_dot_is_refused(tmp_path, good, monkeypatch):
    work = tmp_path / "empty"
    work.mkdir()
    monkeypatch.chdir(work)
    msg = one_line_error(run("train-embeddings", good / "train.parquet", "--out", ".", *TINY))
    assert "current directory" in msg
    assert tree(tmp_path) == {"empty"}


def test_output_inside_an_artifact_is_refused(tmp_path, good):
    """Re-training a model replaces its directory whole: an output nested in it would vanish without a word."""
    shutil.copytree(good / "model", tmp_path / "model")
    names = tree(tmp_path)
    msg = one_line_error(run("train-embeddings", good / "train.parquet", "--out", tmp_path / "model" / "sub", *TINY))
    assert "lies inside the recs artifact" in msg
    msg = one_line_error(run("eval-hitrate", "--index", good / "index", "--sessions", good / "test.parquet",
                             "--json", tmp_path / "model" / "eval.json"))
    assert "model/eval.json" in msg and "inside the recs artifact" in msg
    assert tree(tmp_path) == names


def test_file_output_that_is_a_directory(tmp_path, good):
    (tmp_path / "d").mkdir()
    msg = one_line_error(run("split", good / "s.parquet", "--train", tmp_path / "d", "--test", tmp_path / "b.parquet"))
    assert "--train" in msg and "is a directory" in msg and tree(tmp_path) == {"d"}
