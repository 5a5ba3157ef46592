"""Small builders for hand-made session frames used across tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

from recs.sessions.io import validate_sessions

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def sessions_frame(sessions: dict[object, list[tuple[object, str]]], day: int = 0) -> pl.DataFrame:
    """{session_id: [(item, interaction), ...]} -> canonical frame, one minute between events."""
    rows = []
    for s, events in sessions.items():
        for j, (item, inter) in enumerate(events):
            rows.append({"session_id": s, "item_id": item, "interaction": inter,
                         "timestamp": T0 + timedelta(days=day, minutes=j)})
    return validate_sessions(pl.DataFrame(rows))
