"""The catalogue (``recs.candidates.catalog``): what is read, what is refused and how, and how a given
catalogue and the training sessions' item table combine. Small hand-written files, known answers."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from recs.candidates.catalog import catalog_for, check_catalog, read_catalog
from recs.errors import InputError


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_ids_follow_the_canonical_integer_rule_and_listed_at_is_a_time(tmp_path):
    cat = read_catalog(write(tmp_path, "c.csv", "item_id,shop_id,category,listed_at,price\n"
                                                "1,10,007,2026-01-02,3.5\n2,11,7,2026-01-01,1\n"))
    assert cat.columns == ["item_id", "shop_id", "category", "listed_at"]  # price is not the catalogue's
    assert cat.schema["item_id"] == pl.Int64 and cat.schema["shop_id"] == pl.Int64
    assert cat["category"].to_list() == ["007", "7"]  # two categories, as the file wrote them
    assert cat["listed_at"].to_list() == [date(2026, 1, 2), date(2026, 1, 1)]
    text = read_catalog(write(tmp_path, "t.csv", "item_id,shop_id\na1,10\n2,10\n1.5,10\n"))
    assert text["item_id"].to_list() == ["a1", "2", "1.5"]  # one text id makes the column text


def test_parquet_keeps_its_types_and_a_number_listed_at(tmp_path):
    path = tmp_path / "c.parquet"
    pl.DataFrame({"item_id": ["1", "2"], "category": ["x", "y"], "listed_at": [3.0, 1.5]}).write_parquet(path)
    cat = read_catalog(path)
    assert cat.schema == pl.Schema({"item_id": pl.String, "category": pl.String, "listed_at": pl.Float64})
    pl.DataFrame({"item_id": [1.5], "shop_id": [1]}).write_parquet(path)
    with pytest.raises(InputError, match=r"c.parquet: column 'item_id' has type Float64, expected integer or string"):
        read_catalog(path)


@pytest.mark.parametrize(("text", "words"), [
    ("item_id,shop_id\n1,10\n2,10\n1,10\n2,10\n", ["item 1", "lines 2, 4", "(1 more items"]),
    ("item_id,shop_id,category\n1,10,a\n1,10,b\n", ["item 1", "conflicting", "lines 2, 3", "category 'a' vs 'b'"]),
    ("item_id,shop_id\n1,10\n,20\n,30\n", ["line 3", "'item_id'", "(and 1 more rows)"]),
    ("shop_id,category\n10,a\n", ["missing column 'item_id'", "shop_id (", "category ("]),
    ("item_id,price\n1,3\n", ["'shop_id' and/or 'category'", "price (Int64)"]),
    ("item_id,shop_id,listed_at\n1,10,soon\n", ["'listed_at'", "a time or a number"]),
])
def test_bad_csv_catalogues_name_the_file_and_what_is_wrong(tmp_path, text, words):
    path = write(tmp_path, "c.csv", text)
    with pytest.raises(InputError) as e:
        read_catalog(path)
    msg = str(e.value)
    assert msg.startswith(str(path))
    for word in words:
        assert word in msg, (word, msg)


def test_catalogue_files_that_are_not_catalogues(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_catalog(tmp_path / "missing.parquet")
    with pytest.raises(InputError, match="unknown file type"):
        read_catalog(write(tmp_path, "c.json", '{"item_id": 1}'))
    with pytest.raises(InputError, match="cannot read as a catalogue"):
        read_catalog(write(tmp_path, "c.parquet", "not parquet"))


def test_a_repeated_row_that_agrees_is_still_refused_rows_counted_from_one():
    frame = pl.DataFrame({"item_id": [7, 8, 7], "shop_id": [1, 2, 1]})
    with pytest.raises(InputError, match=r"x: item 7 is listed more than once \(rows 1, 3\)"):
        check_catalog(frame, "x")
    # null shops on both rows still agree: a repeat, not a conflict
    frame = pl.DataFrame({"item_id": [7, 7], "shop_id": [None, None]}, schema={"item_id": pl.Int64,
                                                                               "shop_id": pl.Int64})
    with pytest.raises(InputError, match="listed more than once"):
        check_catalog(frame, "x")


def test_catalog_for_adds_the_sessions_items_the_catalogue_does_not_list():
    given = pl.DataFrame({"item_id": [1, 5], "shop_id": [99, 50]})
    model_items = pl.DataFrame({"item_id": [1, 2, 3], "shop_id": [10, 10, 20], "category": ["a", "a", "b"],
                                "count": [4, 1, 2]})
    out = catalog_for(model_items, given, pl.Int64, "c.csv").sort("item_id")
    # the catalogue's record of item 1 wins (shop 99); 2 and 3 come from the sessions with their category
    assert out.to_dicts() == [
        {"item_id": 1, "shop_id": 99, "category": None}, {"item_id": 2, "shop_id": 10, "category": "a"},
        {"item_id": 3, "shop_id": 20, "category": "b"}, {"item_id": 5, "shop_id": 50, "category": None}]
    assert catalog_for(model_items, None, pl.Int64, "x").columns == ["item_id", "shop_id", "category"]
    assert catalog_for(None, None, pl.Int64, "x") is None
    assert catalog_for(pl.DataFrame({"item_id": [1], "count": [3]}), None, pl.Int64, "x") is None


def test_catalog_for_types_ids_as_the_model_does():
    as_text = pl.DataFrame({"item_id": ["3", "12"], "shop_id": [1, 1]})
    assert catalog_for(None, as_text, pl.Int64, "c.csv")["item_id"].to_list() == [3, 12]
    ints = pl.DataFrame({"item_id": [3, 12], "shop_id": [1, 1]})
    assert catalog_for(None, ints, pl.String, "c.csv")["item_id"].to_list() == ["3", "12"]
    with pytest.raises(InputError, match=r"c.csv: item_id 'x9' is not an integer"):
        catalog_for(None, pl.DataFrame({"item_id": ["3", "x9"], "shop_id": [1, 1]}), pl.Int64, "c.csv")


def test_text_ids_that_are_not_canonical_integers_are_refused_for_an_integer_model():
    """"07" is not item 7 (recs.sessions.ids): cast to Int64 it would become a second row of item 7, with
    another shop, after the one-row-per-item check had passed on the text."""
    given = pl.DataFrame({"item_id": ["7", "07", "9"], "shop_id": [10, 20, 10]})
    with pytest.raises(InputError, match=r"c.csv: item_id '07' is not an integer"):
        catalog_for(None, given, pl.Int64, "c.csv")
