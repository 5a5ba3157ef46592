"""Atomic writes under faults: every step of an artifact write interrupted, by an exception and by a kill.

After each interruption the previous artifact must still load from its path, and the next run must
succeed and leave nothing behind (issue 9, items 4, 5 and 10).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest

import recs.atomic as atomic
import recs.temps as temps
from recs.atomic import Outputs, atomic_dir
from recs.candidates.build import build_index, load_index_manifest
from recs.config import IndexConfig, TrainConfig
from recs.embeddings.model import EmbeddingModel
from recs.embeddings.train import train_to_dir
from recs.errors import ConfigError, OutputError, RecsError
from recs.paths import check_paths
from recs.temps import leftovers, recover

from helpers import T0, tree

TINY = TrainConfig(dim=8, epochs=1, workers=1, seed=1)
TINY_INDEX = IndexConfig(k=5, threads=1)


def _sessions(path: Path, n_sessions: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        for j, item in enumerate(rng.integers(0, 25, size=6)):
            rows.append({"session_id": s, "item_id": int(item), "interaction": ["click", "cart"][j % 2],
                         "timestamp": T0.replace(minute=j)})
    pl.DataFrame(rows).write_parquet(path)
    return path


@pytest.fixture
def workspace(tmp_path):
    train = _sessions(tmp_path / "train.parquet")
    other = _sessions(tmp_path / "other.parquet", seed=1)
    train_to_dir(train, tmp_path / "model", TINY)
    build_index(tmp_path / "model", tmp_path / "index", TINY_INDEX)
    return tmp_path, train, other


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# -- unit behaviour -------------------------------------------------------------------------------


def test_outputs_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "sub" / "b.txt"
    with pytest.raises(RuntimeError), Outputs() as out:
        out.stage(a).write_text("A")
        out.stage(b).write_text("B")
        raise RuntimeError("fails after both were written")
    assert tree(tmp_path) == set()  # no file, no temporary, not even the created sub/ directory
    with Outputs() as out:
        out.stage(a).write_text("A")
        out.stage(b).write_text("B")
    assert a.read_text() == "A" and b.read_text() == "B" and tree(tmp_path) == {"a.txt", "sub", "sub/b.txt"}


def test_commit_puts_back_what_it_replaced_when_a_rename_fails(tmp_path, monkeypatch):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old A")
    b.write_text("old B")
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst)

    out = Outputs()
    out.stage(a).write_text("new A")
    out.stage(b).write_text("new B")
    monkeypatch.setattr(atomic.os, "replace", flaky)
    with pytest.raises(OutputError, match="No space left on device"):
        out.commit()
    monkeypatch.setattr(atomic.os, "replace", real)
    assert a.read_text() == "old A" and b.read_text() == "old B"
    assert tree(tmp_path) == {"a.txt", "b.txt"}


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with Outputs() as out:
            out.stage(tmp_path / "f.json").write_text("{}")
        with atomic_dir(tmp_path / "d", "recs.test") as d:
            (d / "x").write_text("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) == 0o755


def test_same_path_twice_and_output_equal_to_input(tmp_path):
    with pytest.raises(ConfigError, match="are the same file"):
        check_paths([], [("--train", tmp_path / "x.parquet"), ("--test", tmp_path / "." / "x.parquet")])
    with pytest.raises(ConfigError, match="is also an input"):
        check_paths([("SESSIONS", tmp_path / "x.parquet")], [("--train", tmp_path / "x.parquet")])
    with pytest.raises(ConfigError, match="contains an input"):
        check_paths([("--model", tmp_path / "runs" / "model")], [("--out", tmp_path / "runs")])


def test_out_is_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="is the current directory"), atomic_dir(".", "recs.test"):
        pass
    assert tree(tmp_path) == set()


def test_a_live_writers_temporaries_are_left_alone(tmp_path):
    out = tmp_path / "model"
    live = tmp_path / f".model.tmp-{temps._HOST}-{os.getppid()}-abcd1234"  # our parent process: alive
    dead = tmp_path / f".model.tmp-{temps._HOST}-999999999-abcd1234"
    elsewhere = tmp_path / ".model.tmp-000000-999999999-abcd1234"  # another host on a shared volume
    for d in (live, dead, elsewhere):
        d.mkdir()
    assert leftovers(out) == [dead]
    recover(out)
    assert live.exists() and elsewhere.exists() and not dead.exists()


def test_users_own_dot_files_are_never_taken_for_temporaries(tmp_path):
    """Only names of the exact form recs writes are ever removed."""
    mine = [".model.old-20240101", ".model.bak-2024-06-01", ".s.json.bak-2023-backup", ".model.tmp-notes",
            ".model.tmp-abcdefgh-old", f".model.tmp-{temps._HOST}-999999999-abcd1234.bak"]
    for name in mine[:3]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text("mine")
    for name in mine[3:]:
        (tmp_path / name).write_text("mine")
    legacy_user_dir = tmp_path / ".model.tmp-abcdefgh"  # the legacy form, but holding a user's file
    legacy_user_dir.mkdir()
    (legacy_user_dir / "notes.txt").write_text("mine")
    recover(tmp_path / "model")
    recover(tmp_path / "s.json")
    with Outputs() as out:
        out.stage(tmp_path / "s.json").write_text("{}")
    assert all((tmp_path / n).exists() for n in mine) and legacy_user_dir.exists()


def test_rewrite_where_hard_links_are_unsupported(tmp_path, monkeypatch):
    """vfat, some network mounts: no os.link; the replaced files are moved aside instead."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old A")
    b.write_text("old B")

    def no_links(*args, **kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(atomic.os, "link", no_links)
    with Outputs() as out:
        out.stage(a).write_text("new A")
        out.stage(b).write_text("new B")
    assert a.read_text() == "new A" and b.read_text() == "new B" and tree(tmp_path) == {"a.txt", "b.txt"}
    real, calls = os.replace, []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # a aside, new a in, b aside, new b in <- fails
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst)

    out = Outputs()
    out.stage(a).write_text("newer A")
    out.stage(b).write_text("newer B")
    monkeypatch.setattr(atomic.os, "replace", second_fails)
    with pytest.raises(OutputError, match="No space left"):
        out.commit()
    monkeypatch.setattr(atomic.os, "replace", real)
    assert a.read_text() == "new A" and b.read_text() == "new B" and tree(tmp_path) == {"a.txt", "b.txt"}


def test_a_late_failure_leaves_no_directory_it_created(tmp_path, monkeypatch):
    sessions = _sessions(tmp_path / "s.parquet")

    def disk_full(self, *a, **k):
        raise pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)")

    monkeypatch.setattr(EmbeddingModel, "save", disk_full)
    with pytest.raises(OutputError, match="No space left on device"):  # said as such (issue 21 item 15)
        train_to_dir(sessions, tmp_path / "new" / "deep" / "model", TINY)
    assert tree(tmp_path) == {"s.parquet"}


def test_legacy_old_dir_is_restored(tmp_path):
    """recs 0.1.0 moved `out` to .out.old-XXXXXXXX/x before the second rename; a crash there is repaired."""
    legacy = tmp_path / ".model.old-ab_12cd3"
    (legacy / "x").mkdir(parents=True)
    (legacy / "x" / "manifest.json").write_text('{"format": "recs.model"}')
    done = recover(tmp_path / "model", lambda p: (p / "manifest.json").exists())
    assert (tmp_path / "model" / "manifest.json").exists() and not legacy.exists() and len(done) == 1


# -- fault injection: raise at every step ---------------------------------------------------------

_STEP_TARGETS = [
    (os, "replace"), (os, "mkdir"), (os, "link"), (atomic, "_exchange"), (temps, "remove_path"),
    (np, "save"), (pl.DataFrame, "write_parquet"), (Path, "write_text"), (pq.ParquetWriter, "write_table"),
]


class Interrupted(BaseException):
    """Raised at the injected step; a BaseException, like KeyboardInterrupt, so no `except Exception` eats it."""


def _inject(monkeypatch, at: int) -> list[str]:
    """Make the ``at``-th call of any file-system step raise; return the names of the steps taken."""
    steps: list[str] = []
    for owner, name in _STEP_TARGETS:
        real = getattr(owner, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            steps.append(_name)
            if len(steps) == at:
                raise Interrupted(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)
    return steps


def _writers(tmp_path: Path, other: Path):
    """kind -> (write a new artifact over the old one, read what is at the path, the new artifact's value)."""
    return {
        "model": (lambda: train_to_dir(other, tmp_path / "model", TINY),
                  lambda: EmbeddingModel.load(tmp_path / "model").manifest["input"]["path"], str(other)),
        "index": (lambda: build_index(tmp_path / "model", tmp_path / "index", IndexConfig(k=3, threads=1)),
                  lambda: load_index_manifest(tmp_path / "index")["config"]["k"], 3),
    }


def _temporaries(directory: Path) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith((".model.", ".index.")))


@pytest.mark.parametrize("kind", ["model", "index"])
def test_interrupt_every_step_by_exception(workspace, monkeypatch, kind):
    tmp_path, _, other = workspace
    write, read, new = _writers(tmp_path, other)[kind]
    before = read()
    assert before != new
    at, steps_in_full_run, seen = 1, None, set()
    while steps_in_full_run is None:
        with monkeypatch.context() as m:
            steps = _inject(m, at)
            try:
                write()
            except Interrupted:
                pass
            else:
                steps_in_full_run = len(steps)
        # the previous artifact (or, once the swap happened, the new one) loads from its path ...
        seen.add(read())
        assert seen <= {before, new}, (at, steps)
        # ... and the interrupted run cleaned up after itself, unless the interruption hit the clean-up
        # itself: then what is left is what a killed run leaves, and a later process removes it (see the
        # kill test below); here the same process goes on, whose own temporaries count as live.
        left = _temporaries(tmp_path)
        if steps and steps[-1] == "remove_path" and not (steps_in_full_run and len(steps) == steps_in_full_run):
            # what is left is what a killed run leaves: a later process (here: this one's temporaries
            # taken as a dead writer's) restores or removes all of it
            with monkeypatch.context() as m:
                m.setattr(temps, "_pid_alive", lambda pid: False)
                recover(tmp_path / kind)
            assert _temporaries(tmp_path) == [], (at, steps)
        else:
            assert left == [], (at, steps)
        at += 1
        assert at < 200, "no end of steps"
    assert steps_in_full_run > 5 and seen == {before, new}
    write()
    assert read() == new and _temporaries(tmp_path) == []


# -- fault injection: kill the process at every step of the swap ----------------------------------

_CRASH = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import recs.atomic as atomic
    import recs.temps as temps
    from recs.config import IndexConfig, TrainConfig
    kind, workdir, at, exchange = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
    steps = []
    def wrap(owner, name):
        real = getattr(owner, name)
        def w(*a, **k):
            steps.append(name)
            if len(steps) == at:
                os._exit(17)  # killed: no cleanup, no finally
            return real(*a, **k)
        setattr(owner, name, w)
    if not exchange:
        atomic._exchange = lambda a, b: False  # an OS without renameat2: the two-rename swap
    for owner, name in ((os, "replace"), (atomic, "_exchange"), (temps, "remove_path"), (os, "mkdir")):
        wrap(owner, name)
    if kind == "model":
        from recs.embeddings.train import train_to_dir
        train_to_dir(workdir / "other.parquet", workdir / "model", TrainConfig(dim=8, epochs=1, workers=1, seed=1))
    else:
        from recs.candidates.build import build_index
        build_index(workdir / "model", workdir / "index", IndexConfig(k=3, threads=1))
    print(len(steps))
""")


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
@pytest.mark.parametrize("kind", ["model", "index"])
def test_kill_at_every_step_of_the_swap(workspace, kind, exchange):
    tmp_path, _, other = workspace
    write, read, new = _writers(tmp_path, other)[kind]
    before = read()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    at, killed = 1, 0
    while True:
        r = subprocess.run([sys.executable, "-c", _CRASH, kind, str(tmp_path), str(at), "1" if exchange else "0"],
                           capture_output=True, text=True, env=env, timeout=300)
        if r.returncode == 0:
            break
        assert r.returncode == 17, r.stderr
        killed += 1
        if exchange:  # the swap is one step: the path holds a whole artifact before anyone repairs anything
            assert (tmp_path / kind / "manifest.json").is_file(), (at, r.stdout)
        # whatever step the kill fell on, the path holds a whole artifact (old or new) for readers
        assert read() in (before, new), (at, r.stdout)
        at += 1
        assert at < 50
    assert killed >= 3 and read() == new
    write()  # the next run succeeds and removes what the killed ones left
    assert _temporaries(tmp_path) == []


def test_recs_errors_name_the_path_for_os_refusals(tmp_path, readonly_dir):
    with pytest.raises(RecsError, match=str(readonly_dir)):
        train_to_dir(_sessions(tmp_path / "s.parquet"), readonly_dir / "model", TINY)
    with pytest.raises(OutputError, match="readonly"), Outputs() as out:
        out.stage(readonly_dir / "x.json")
    assert tree(readonly_dir) == set()


def test_manifest_json_survives_round_trip(workspace):
    tmp_path, _, _ = workspace
    assert json.loads((tmp_path / "index" / "manifest.json").read_text())["format"] == "recs.index"
