"""Shared fixtures: paths to the real sample logs in ../shared/data, skipped with a reason if absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
TAOBAO_HEAD = SHARED_DATA / "taobao_userbehavior" / "ylcxg__taobao-user-behavior-analysis" / "small_sample.csv"
TAOBAO_TAIL = SHARED_DATA / "taobao_userbehavior" / "betashepherd__HotItems" / "UserBehavior.csv"
OTTO_SAMPLE = SHARED_DATA / "otto" / "otto-de__recsys-dataset" / "test" / "resources" / "train.jsonl"
REES46_SAMPLE = (
    SHARED_DATA / "rees46_multicategory" / "phamhoa2416__ecommerce-behavior-analytics" / "user_behavior_sample.csv"
)


def shared_file(path: Path) -> Path:
    """Return ``path`` or skip the test: a user's clone has no ../shared, CI has it."""
    if not path.exists():
        pytest.skip(f"real sample data not present at {path} (it lives in ../shared/data beside the repo; "
                    "where each log comes from and how to get it: docs/own-data.md, 'The real sample logs')")
    return path


CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "chrome")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of a headless-capable Chromium for browser tests, or skip saying how to get one."""
    import shutil

    for name in CHROMIUMS:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(f"no Chromium found on PATH (tried {', '.join(CHROMIUMS)}): on Debian, apt-get install chromium")


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can create files in, root included (chattr +i where chmod does not stop root)."""
    import os
    import shutil
    import subprocess

    d = tmp_path / "readonly"
    d.mkdir()
    d.chmod(0o555)
    immutable = False
    if os.access(d, os.W_OK):  # root ignores mode bits
        immutable = subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0 if shutil.which(
            "chattr") else False
    try:
        (d / "probe").touch()
    except OSError:
        pass
    else:
        (d / "probe").unlink()
        pytest.skip("cannot make a read-only directory here (root without chattr)")
    yield d
    if immutable:
        subprocess.run(["chattr", "-i", str(d)], check=False)
    d.chmod(0o755)


# One SparkSession for every Spark test (tests/spark/), defined apart from the other fixtures: a second
# conftest.py in tests/spark/ would shadow this module for `from conftest import ...` in the other tests.
from spark_fixtures import spark, spark_startup_stderr  # noqa: E402, F401
