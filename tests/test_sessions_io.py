from __future__ import annotations

from datetime import datetime, timezone

import polars as pl
import pytest

from recs.errors import InputError, SchemaError
from recs.sessions.io import read_sessions, validate_sessions, write_sessions


def frame(**overrides):
    base = {"session_id": [1, 1, 2], "item_id": [10, 11, 10], "interaction": ["click", "cart", "click"],
            "timestamp": [datetime(2026, 1, 1, 0, m, tzinfo=timezone.utc) for m in (0, 1, 2)]}
    base.update(overrides)
    return pl.DataFrame({k: v for k, v in base.items() if v is not None})


def test_missing_column_named_with_columns_found():
    with pytest.raises(SchemaError) as e:
        validate_sessions(frame(interaction=None), where="x.parquet")
    msg = str(e.value)
    assert "x.parquet" in msg and "'interaction'" in msg and "found: session_id (Int64), item_id (Int64)" in msg


def test_wrong_types_named():
    with pytest.raises(SchemaError, match="'item_id' has type Float64"):
        validate_sessions(frame(item_id=[1.5, 2.0, 3.0]))
    with pytest.raises(SchemaError, match="'interaction' has type Int64"):
        validate_sessions(frame(interaction=[1, 2, 3]))
    with pytest.raises(SchemaError, match="'timestamp' row 2: cannot parse 'soon'"):
        validate_sessions(frame(timestamp=["2026-01-01T00:00:00", "soon", "2026-01-01T00:02:00"]))
    with pytest.raises(SchemaError, match="'item_id' is empty \\(null\\) in row 3"):
        validate_sessions(frame(item_id=[1, 2, None]))


def test_timestamps_normalised_and_ids_keep_type(tmp_path):
    secs = frame(timestamp=[1_767_225_600, 1_767_225_660, 1_767_225_720], item_id=["a", "b", "a"])
    out = validate_sessions(secs)
    assert out.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert out["timestamp"][0] == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert out["item_id"].dtype == pl.String
    path = write_sessions(out, tmp_path / "s.csv")
    assert read_sessions(path)["item_id"].to_list() == ["a", "b", "a"]


def test_sorted_by_session_then_time_keeping_file_order_on_ties():
    df = frame(session_id=[2, 1, 1], timestamp=[datetime(2026, 1, 1, tzinfo=timezone.utc)] * 3,
               item_id=[5, 6, 7])
    assert validate_sessions(df)["item_id"].to_list() == [6, 7, 5]


def test_bad_files(tmp_path):
    empty = tmp_path / "empty.parquet"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match=r"empty\.parquet: file is empty"):
        read_sessions(empty)
    with pytest.raises(InputError, match="no such file"):
        read_sessions(tmp_path / "nope.parquet")
    header_only = tmp_path / "h.csv"
    header_only.write_text("session_id,item_id,interaction,timestamp\n")
    with pytest.raises(InputError, match="has no rows"):
        read_sessions(header_only)
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(InputError, match=r"unknown file type '\.txt'"):
        read_sessions(tmp_path / "x.txt")
