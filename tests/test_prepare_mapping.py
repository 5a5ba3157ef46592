"""``recs prepare`` says how it read each raw event name (``view`` -> click, ``wishlist`` -> favorite, ``buy`` /
``order`` -> purchase, ...), and docs/own-data.md lists exactly the table it maps by (``EVENT_SYNONYMS``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from recs.sessions.formats import EVENT_SYNONYMS

from helpers import run_cli

OWN_DATA = Path(__file__).resolve().parents[1] / "docs" / "own-data.md"

LOG = """user,item,action,time
1,10,view,2026-01-01T10:00:00
1,11,View,2026-01-01T10:01:00
1,11,wishlist,2026-01-01T10:02:00
1,11,add_to_cart,2026-01-01T10:03:00
1,11,buy,2026-01-01T10:04:00
2,12,detail,2026-01-01T11:00:00
2,12,order,2026-01-01T11:01:00
2,13,remove_from_cart,2026-01-01T11:02:00
"""
COLS = ("--col", "user=user", "--col", "item=item", "--col", "interaction=action", "--col", "timestamp=time")


def test_the_summary_and_the_report_show_what_each_raw_name_became(tmp_path):
    src, out, rep = tmp_path / "log.csv", tmp_path / "s.parquet", tmp_path / "r.json"
    src.write_text(LOG)
    r = run_cli("prepare", src, *COLS, "--out", out, "--json", rep, "--quiet")
    assert r.exit_code == 0, r.output
    mapped = {(m["raw"], m["interaction"]): m["events"] for m in json.loads(rep.read_text())["mapped_events"]}
    assert mapped == {("view", "click"): 2, ("wishlist", "favorite"): 1, ("add_to_cart", "cart"): 1,
                      ("buy", "purchase"): 1, ("detail", "click"): 1, ("order", "purchase"): 1}
    assert "events mapped" in r.output
    assert re.search(r"wishlist\s+│\s+favorite\s+│\s+1", r.output), r.output
    assert re.search(r"remove_from_cart\s+│\s+1", r.output), r.output  # dropped, and said so


def test_own_data_page_lists_the_mapping_table_exactly():
    text = OWN_DATA.read_text(encoding="utf-8")
    section = text.split("<!-- event-synonyms -->", 2)[1]
    documented = {}
    for raw, canon in re.findall(r"^\| `([a-z_]+)` \| (?:`([a-z]+)`|dropped[^|]*) \|", section, flags=re.MULTILINE):
        documented[raw] = canon or None
    assert documented == EVENT_SYNONYMS
