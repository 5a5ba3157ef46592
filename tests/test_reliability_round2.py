"""Issue 21, the non-service items: all-or-nothing across crashes, partitioned input that cannot be read,
one transaction for recommend's two outputs, interactions and times named on the command line,
damaged artifacts, full disks, SIGTERM, and the catalogue roll-up's repeated searches.

Each test fails on the main of before the fix. Data is small (a few thousand planted events) and no
test reaches the network.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest

import recs.temps as temps
from recs.atomic import Outputs
from recs.errors import RecsError

from helpers import one_line_error, planted_covisit_split, run_cli, tree

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter (so ``os._exit`` kills it as kill -9 would, mid-way)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


# ---- 1: a multi-file commit killed between its renames is finished by the next reader or writer ----

CRASH_ON_SECOND = """
    import os, sys
    from pathlib import Path
    from recs.atomic import Outputs
    real = os.replace
    def replace(src, dst, *a, **k):
        if Path(dst).name == "b.html":  # the commit's second output: die as kill -9 would, between the renames
            os._exit(9)
        return real(src, dst, *a, **k)
    os.replace = replace
    with Outputs() as o:
        o.stage(Path("a.json")).write_text("new")
        o.stage(Path("b.html")).write_text("new")
"""


def _crash_commit(d: Path) -> None:
    (d / "a.json").write_text("old")
    (d / "b.html").write_text("old")
    r = _python(CRASH_ON_SECOND, d)
    assert r.returncode == 9, r.stderr
    # the state the crash left: the first output new, the second old, with the journal beside them
    assert ((d / "a.json").read_text(), (d / "b.html").read_text()) == ("new", "old")


@pytest.mark.parametrize("next_run", ["writer of the first", "writer of the second", "reader"])
def test_a_commit_killed_between_its_renames_is_finished_by_the_next_run(tmp_path, next_run):
    _crash_commit(tmp_path)
    if next_run == "reader":
        temps.settle(tmp_path / "b.html")  # what check_paths and session_files do for every input
    else:
        name = "a.json" if next_run == "writer of the first" else "b.html"
        with Outputs() as o:  # a later single-file write to one of the outputs
            o.stage(tmp_path / "other.txt").write_text("x")
            o.stage(tmp_path / name).write_text("new")
    assert ((tmp_path / "a.json").read_text(), (tmp_path / "b.html").read_text()) == ("new", "new")
    assert tree(tmp_path) == {"a.json", "b.html"} | ({"other.txt"} if next_run != "reader" else set())


def test_a_commit_whose_temporary_is_gone_is_undone_from_its_backups(tmp_path):
    """A plan that cannot be finished (a temporary of an entry not yet renamed is gone) is rolled back:
    the ``bak`` copies the crash left are put back, never deleted first."""
    _crash_commit(tmp_path)
    for p in tmp_path.iterdir():
        if p.name.startswith(".b.html.tmp-"):
            p.unlink()
    temps.settle(tmp_path / "a.json")
    assert ((tmp_path / "a.json").read_text(), (tmp_path / "b.html").read_text()) == ("old", "old")
    assert tree(tmp_path) == {"a.json", "b.html"}


def test_compare_json_and_report_killed_between_renames_come_out_as_a_pair(tmp_path):
    """The issue's case through the CLI: ``recs compare --json --report`` killed between its two renames,
    then run again: both outputs are of one run."""
    planted_covisit_split(tmp_path)
    args = ["compare", str(tmp_path / "train.parquet"), str(tmp_path / "test.parquet"), "--methods",
            "co-visitation", "--bootstrap", "0", "--quiet", "--json", "cmp.json", "--report", "cmp.html"]
    assert run_cli(*args[:-4], "--json", tmp_path / "cmp.json", "--report", tmp_path / "cmp.html").exit_code == 0
    old_html = (tmp_path / "cmp.html").read_text()
    (tmp_path / "cmp.json").write_text('{"run": "old"}')
    (tmp_path / "cmp.html").write_text("old")
    r = _python(f"""
        import os, sys
        from pathlib import Path
        real = os.replace
        def replace(src, dst, *a, **k):
            if Path(dst).name == "cmp.html":
                os._exit(9)
            return real(src, dst, *a, **k)
        os.replace = replace
        from recs.cli.main import cli
        cli({args!r}, prog_name="recs")
    """, tmp_path)
    assert r.returncode == 9, r.stderr[-2000:]
    assert (tmp_path / "cmp.html").read_text() == "old" and "table1" in (tmp_path / "cmp.json").read_text()
    # the next run that names either output (here: a reader of the json as an input elsewhere) settles it
    r = run_cli("stats", tmp_path / "test.parquet", "--json", tmp_path / "cmp.json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "cmp.html").read_text() == old_html
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cmp.")]


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A planted 5,000-event log, its split and a co-visitation index of the training part (seconds)."""
    d = tmp_path_factory.mktemp("planted")
    planted_covisit_split(d)
    return d


def test_a_rename_that_fails_mid_commit_is_undone_in_process(tmp_path, monkeypatch):
    """The in-process half of item 1: the second *output* rename fails (not the plan's): both old, nothing left."""
    a, b = tmp_path / "a.json", tmp_path / "b.html"
    a.write_text("old")
    b.write_text("old")
    real = os.replace

    def flaky(src, dst, *args, **kwargs):
        if Path(dst).name == "b.html":
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(dst))
        return real(src, dst, *args, **kwargs)

    out = Outputs()
    out.stage(a).write_text("new")
    out.stage(b).write_text("new")
    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(RecsError, match=r"b\.html"):
        out.commit()
    monkeypatch.setattr(os, "replace", real)
    assert (a.read_text(), b.read_text()) == ("old", "old")
    assert tree(tmp_path) == {"a.json", "b.html"}


# ---- 3: recommend --out X --json Y is one transaction ---------------------------------------------

def test_recommend_commits_no_lists_when_its_json_cannot_be_written(planted, tmp_path, monkeypatch):
    real = Path.write_text

    def full(self, *args, **kwargs):
        if self.suffix == ".json":  # the summary's temporary: the disk is full by now
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real(self, *args, **kwargs)

    (tmp_path / "recs.parquet").write_bytes(b"the previous lists")
    monkeypatch.setattr(Path, "write_text", full)
    r = run_cli("recommend", "--index", planted / "index", "--history", planted / "train.parquet",
                "--out", tmp_path / "recs.parquet", "--json", tmp_path / "recs.json", "--quiet")
    line = one_line_error(r)
    assert "recs.json" in line and "no space left on device" in line.lower()
    assert (tmp_path / "recs.parquet").read_bytes() == b"the previous lists"  # not committed either
    assert tree(tmp_path) == {"recs.parquet"}
    monkeypatch.setattr(Path, "write_text", real)
    r = run_cli("recommend", "--index", planted / "index", "--history", planted / "train.parquet",
                "--out", tmp_path / "recs.parquet", "--json", tmp_path / "recs.json", "--quiet")
    assert r.exit_code == 0, r.output
    assert pl.read_parquet(tmp_path / "recs.parquet").height == json.loads((tmp_path / "recs.json").read_text())["rows"]


# ---- 17: SIGTERM of recs recommend leaves no temporary ------------------------------------------

def test_sigterm_of_recommend_removes_its_temporary(planted, tmp_path):
    r = _python(f"""
        import os, signal
        from recs.recommend.recommender import Recommender
        real = Recommender.recommend_batch
        def batch(self, *args, **kwargs):
            out = real(self, *args, **kwargs)
            assert any(p.name.startswith(".recs.parquet.tmp-") for p in os.scandir("."))  # mid-write
            os.kill(os.getpid(), signal.SIGTERM)
            return out
        Recommender.recommend_batch = batch
        from recs.cli.main import cli
        cli(["recommend", "--index", {str(planted / "index")!r}, "--history", {str(planted / "train.parquet")!r},
             "--out", "recs.parquet", "--json", "recs.json", "--quiet"], prog_name="recs")
    """, tmp_path)
    assert r.returncode == 143, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert tree(tmp_path) == set()


def test_a_killed_recommends_temporary_is_swept_by_the_next_run(planted, tmp_path):
    """kill -9 cannot be cleaned up after; the next run to the same path removes what the dead run left."""
    dead = temps.temp_name(tmp_path / "recs.parquet", "tmp", ".parquet").name.replace(f"-{os.getpid()}-", "-999999999-")
    (tmp_path / dead).write_bytes(b"x" * 1000)
    r = run_cli("recommend", "--index", planted / "index", "--history", planted / "train.parquet",
                "--out", tmp_path / "recs.parquet", "--quiet")
    assert r.exit_code == 0, r.output
    assert tree(tmp_path) == {"recs.parquet"}


# ---- 2: a part that cannot be read is an error naming it, never skipped --------------------------

def _parts(d: Path, planted: Path) -> Path:
    """The planted test split as a directory of two parquet parts."""
    df = pl.read_parquet(planted / "test.parquet")
    d.mkdir()
    half = df.height // 2
    df.head(half).write_parquet(d / "part-0.parquet")
    df.tail(df.height - half).write_parquet(d / "part-1.parquet")
    return d


@pytest.mark.parametrize("kind", ["dangling symlink", "fifo"])
@pytest.mark.parametrize("command", ["stats", "eval-hitrate"])
def test_an_unreadable_part_is_named_not_skipped(planted, tmp_path, kind, command):
    d = _parts(tmp_path / "logs", planted)
    bad = d / "part-2.parquet"
    if kind == "fifo":
        os.mkfifo(bad)  # never opened: opening a FIFO would block until a writer comes
    else:
        bad.symlink_to(tmp_path / "gone.parquet")
    args = {"stats": ["stats", d], "eval-hitrate": ["eval-hitrate", "--index", planted / "index", "--sessions", d,
                                                     "--bootstrap", 0]}[command]
    line = one_line_error(run_cli(*args))
    assert str(bad) in line
    assert ("named pipe" if kind == "fifo" else "symbolic link") in line


def test_an_unreadable_part_in_a_subdirectory_or_glob_is_named(planted, tmp_path):
    d = _parts(tmp_path / "logs", planted)
    (d / "dt=2026-01-02").mkdir()
    os.mkfifo(d / "dt=2026-01-02" / "part-0.parquet")
    for given in (d, f"{d}/*/*.parquet"):
        line = one_line_error(run_cli("stats", given))
        assert "dt=2026-01-02/part-0.parquet" in line and "named pipe" in line


# ---- also seen: a partition directory named after a per-event column is refused -----------------

@pytest.mark.parametrize("column", ["timestamp", "session_id", "item_id", "user_id"])
def test_a_partition_directory_named_after_a_time_or_id_column_is_refused(planted, tmp_path, column):
    df = pl.read_parquet(planted / "test.parquet")
    d = tmp_path / "logs" / f"{column}=2026-01-01"
    d.mkdir(parents=True)
    df.drop(column, strict=False).write_parquet(d / "part-0.parquet")
    line = one_line_error(run_cli("stats", tmp_path / "logs"))
    assert f"{column}=2026-01-01" in line and repr(column) in line


# ---- 11/12: ISO times at the edge of the range: one parser, one Error: line ------------------------

EDGES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]


@pytest.mark.parametrize("edge", EDGES)
def test_the_shared_parser_refuses_edge_times_cleanly(edge):
    from recs.errors import ConfigError
    from recs.instants import parse_instant

    with pytest.raises(ConfigError, match=r"--at: .* outside the times recs can hold"):
        parse_instant(edge, "--at")
    assert parse_instant("0001-01-01T00:00:00Z", "--at").year == 1  # the edge itself, in UTC, is fine


@pytest.mark.parametrize("edge", EDGES)
def test_recommend_at_an_edge_time_is_one_error_line(planted, tmp_path, edge):
    line = one_line_error(run_cli("recommend", "--index", planted / "index", "--history", planted / "train.parquet",
                                  "--at", edge, "--out", tmp_path / "r.parquet", "--quiet"))
    assert "--at" in line and edge in line
    line = one_line_error(run_cli("split", planted / "s.parquet", "--train", tmp_path / "a.parquet",
                                  "--test", tmp_path / "b.parquet", "--cutoff", edge))
    assert "--cutoff" in line and edge in line


@pytest.mark.parametrize("edge", EDGES)
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_events_at_an_edge_time_are_one_error_line(tmp_path, edge, fmt):
    df = pl.DataFrame({"session_id": [1, 1], "item_id": [1, 2], "interaction": ["click", "cart"],
                       "timestamp": ["2026-01-01T00:00:00Z", edge]})
    path = tmp_path / f"edge.{fmt}"
    df.write_parquet(path) if fmt == "parquet" else df.write_csv(path)
    line = one_line_error(run_cli("stats", path))
    assert str(path) in line and "row 2" in line
    line = one_line_error(run_cli("prepare", path, "--out", tmp_path / "p.parquet", "--quiet"))
    assert str(path) in line and "time" in line


# ---- 13/14: a damaged artifact file is one Error: naming it and recs check ---------------------------

def _flip(path: Path, lo: int, hi: int) -> None:
    """Flip bytes lo..hi of ``path`` (same size, so the manifest's size check does not see it)."""
    data = bytearray(path.read_bytes())
    for i in range(lo, hi + 1):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged_index(planted, tmp_path) -> Path:
    import shutil

    bad = tmp_path / "bad-index"
    shutil.copytree(planted / "index", bad)
    _flip(bad / "candidates" / "click_to_cart.parquet", 20, 50)
    return bad


def test_a_candidate_parquet_with_flipped_data_bytes_is_one_error(planted, damaged_index, tmp_path):
    runs = {
        "recommend": ["recommend", "--index", damaged_index, "--history", planted / "train.parquet",
                      "--out", tmp_path / "r.parquet", "--quiet"],
        "eval-hitrate": ["eval-hitrate", "--index", damaged_index, "--sessions", planted / "test.parquet",
                         "--bootstrap", 0],
        "eval-recommend": ["eval-recommend", "--index", damaged_index, "--history", planted / "train.parquet",
                           "--sessions", planted / "test.parquet", "--arms", "click,cart", "--bootstrap", 0, "--quiet"],
    }
    for name, args in runs.items():
        line = one_line_error(run_cli(*args))
        assert "click_to_cart.parquet" in line and f"recs check {damaged_index}" in line, (name, line)
    assert not (tmp_path / "r.parquet").exists()


def test_a_npy_header_with_its_dtype_overwritten_is_one_error(planted, tmp_path):
    model = tmp_path / "model"
    r = run_cli("train-embeddings", planted / "train.parquet", "--out", model, "--dim", 8, "--epochs", 1,
                "--workers", 1, "--quiet")
    assert r.exit_code == 0, r.output
    npy = model / "vectors_in.npy"
    data = npy.read_bytes()
    at = data.index(b"'descr': '<f4'") + len(b"'descr': ")
    npy.write_bytes(data[:at] + b"(<f4'" + data[at + 5:])  # same size: numpy's header parse raises TokenError
    line = one_line_error(run_cli("build-index", "--model", model, "--out", tmp_path / "index", "--k", 5,
                                  "--threads", 1, "--quiet"))
    assert "vectors_in.npy" in line and f"recs check {model}" in line
    assert not (tmp_path / "index").exists()


# ---- 15: a full disk is said as such, by prepare and by train ------------------------------------

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _polars_enospc(*args, **kwargs):
    raise pl.exceptions.ComputeError("failed to write parquet: No space left on device (os error 28)")


def _numpy_short_write(*args, **kwargs):
    raise OSError("2600500 requested and 2500576 written")  # what numpy's tofile says on a full disk


@pytest.mark.parametrize("writer", [_enospc, _polars_enospc])
def test_prepare_on_a_full_disk_says_no_space(planted, tmp_path, monkeypatch, writer):
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", writer)
    line = one_line_error(run_cli("prepare", planted / "s.parquet", "--out", tmp_path / "p.parquet", "--quiet"))
    assert "no space left on device" in line.lower() and "s.parquet" not in line  # not blamed on the input
    assert tree(tmp_path) == set()


def test_prepare_reading_back_a_short_work_file_on_a_nearly_full_disk_says_no_space(planted, tmp_path, monkeypatch):
    """polars can leave a short work file without an error; it reads back as "Invalid thrift"."""
    import recs.atomic as atomic

    def short(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1" + b"\0" * 40)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", short)
    monkeypatch.setattr(atomic, "free_bytes", lambda where: 60_000)  # ~60 KB left, as in the issue
    line = one_line_error(run_cli("prepare", planted / "s.parquet", "--out", tmp_path / "p.parquet", "--quiet"))
    assert "no space left on device" in line.lower() and "60,000 bytes free" in line


@pytest.mark.parametrize("writer", [_enospc, _numpy_short_write])
def test_train_on_a_full_disk_says_no_space(planted, tmp_path, monkeypatch, writer):
    import numpy as np

    monkeypatch.setattr(np, "save", writer)
    line = one_line_error(run_cli("train-embeddings", planted / "train.parquet", "--out", tmp_path / "model",
                                  "--dim", 8, "--epochs", 1, "--workers", 1, "--quiet"))
    assert "no space left on device" in line.lower() and "model" in line
    assert tree(tmp_path) == set()


# ---- 8: an unknown interaction is refused with the known ones, in every command that names one -----
# (cart,purchse in eval-hitrate, compare and eval-recommend: tests/test_newcomer_defects.py)

KNOWN_LIST = "known: cart, click, favorite, purchase"


@pytest.mark.parametrize("targets", ["bogus", "cart,purchse"])
def test_unknown_targets_are_refused_in_every_command(planted, tmp_path, targets):
    d = planted
    runs = {
        "eval-hitrate": ["eval-hitrate", "--index", d / "index", "--sessions", d / "test.parquet"],
        "compare": ["compare", d / "train.parquet", d / "test.parquet", "--methods", "co-visitation", "--quiet"],
        "eval-recommend": ["eval-recommend", "--index", d / "index", "--history", d / "train.parquet",
                           "--sessions", d / "test.parquet", "--quiet"],
    }
    for name, args in runs.items():
        line = one_line_error(run_cli(*args, "--targets", targets))
        assert "--targets" in line and KNOWN_LIST in line, (name, line)


def test_unknown_targets_in_tunes_config_are_refused(planted, tmp_path):
    pytest.importorskip("optuna")
    conf = tmp_path / "c.toml"
    conf.write_text('[eval]\ntargets = ["cart", "purchse"]\n')
    line = one_line_error(run_cli("tune", planted / "train.parquet", "--config", conf, "--trials", 1, "--quiet",
                                  "--out", tmp_path / "tuned.toml"))
    assert "[eval] targets" in line and "'purchse'" in line and KNOWN_LIST in line
    assert not (tmp_path / "tuned.toml").exists()


# ---- also seen: eval-recommend with --history equal to --sessions is refused ---------------------

@pytest.mark.parametrize("how", ["same path", "a copy"])
def test_eval_recommend_refuses_history_equal_to_sessions(planted, tmp_path, how):
    import shutil

    sessions = planted / "test.parquet"
    if how == "a copy":
        sessions = tmp_path / "copy.parquet"
        shutil.copy(planted / "test.parquet", sessions)
    line = one_line_error(run_cli("eval-recommend", "--index", planted / "index", "--history", planted / "test.parquet",
                                  "--sessions", sessions, "--bootstrap", 0, "--quiet"))
    assert "--history" in line and "--sessions" in line and "same data" in line


# ---- also seen: build-index --catalog searches each distinct group row once --------------------------

def test_catalog_rollup_searches_each_group_row_once_with_the_same_lists(tmp_path, monkeypatch):
    import recs.candidates.hnsw as hnsw
    import recs.candidates.rollup as rollup

    d = tmp_path
    assert run_cli("synth", "--events", 8_000, "--seed", 3, "--new-items", 0.3, "--out", d / "s.parquet",
                   "--catalog", d / "cat.parquet").exit_code == 0
    r = run_cli("train-embeddings", d / "s.parquet", "--out", d / "model", "--dim", 16, "--epochs", 2,
                "--workers", 1, "--seed", 1, "--quiet")
    assert r.exit_code == 0, r.output
    searched: list[int] = []
    real = hnsw.search_blocks

    def counting(index, queries, *args, **kwargs):
        searched.append(len(queries))
        return real(index, queries, *args, **kwargs)

    monkeypatch.setattr(rollup, "search_blocks", counting)
    frames = {}
    for dedupe in (True, False):
        monkeypatch.setattr(rollup, "DEDUPE_GROUP_QUERIES", dedupe)
        searched.clear()
        out = d / f"index-{dedupe}"
        r = run_cli("build-index", "--model", d / "model", "--catalog", d / "cat.parquet", "--out", out,
                    "--k", 20, "--threads", 1, "--quiet")
        assert r.exit_code == 0, r.output
        frames[dedupe] = {p.name: pl.read_parquet(p) for p in sorted((out / "candidates").glob("*.parquet"))}
        if dedupe:
            deduped = sum(searched)
        else:
            every = sum(searched)
    assert frames[True].keys() == frames[False].keys() and frames[True]
    for name, frame in frames[True].items():
        assert frame.equals(frames[False][name]), name
        assert (frame["query_level"] != "item").any(), name  # the roll-up was exercised
    assert deduped < every  # fewer searches for the same lists


def test_a_commit_of_nothing_is_nothing(tmp_path):
    """A command whose outputs are all optional and none given (compare without --json or --report)."""
    with Outputs() as o:
        pass
    assert o.commit() == [] and tree(tmp_path) == set()


def test_what_a_plan_needs_is_no_leftover_and_two_settlers_agree(tmp_path):
    """The sweep of a dead writer's temporaries spares the ``bak``, temporaries and plan a journal still
    needs; and several processes settling one plan at once leave one consistent pair."""
    _crash_commit(tmp_path)
    needed = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
    assert any(".plan-" in n for n in needed) and any(".tmp-" in n for n in needed)
    assert not set(p.name for p in temps.leftovers(tmp_path / "a.json")) & needed
    assert not set(p.name for p in temps.leftovers(tmp_path / "b.html")) & needed
    settlers = [subprocess.Popen([sys.executable, "-c", f"import recs.temps as t; t.settle({str(tmp_path / n)!r})"])
                for n in ("a.json", "b.html", "a.json", "b.html")]
    assert [p.wait(timeout=60) for p in settlers] == [0, 0, 0, 0]
    assert ((tmp_path / "a.json").read_text(), (tmp_path / "b.html").read_text()) == ("new", "new")
    assert tree(tmp_path) == {"a.json", "b.html"}
