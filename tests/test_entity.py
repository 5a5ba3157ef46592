"""Group models (``recs train-embeddings --entity``) and the item table (``MODEL/items.parquet``):
what is trained on, what is stored and checked, and that shop vectors learn the planted shops."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from recs.artifacts import verify_artifact
from recs.config import TrainConfig
from recs.embeddings.groups import entity_sessions
from recs.embeddings.items import item_table
from recs.embeddings.model import EmbeddingModel
from recs.embeddings.train import train
from recs.errors import ArtifactError, ConfigError, InputError
from recs.sessions.io import validate_sessions
from recs.sessions.synth import SynthConfig, generate

from helpers import T0, one_line_error, run_cli, tree

SMALL = {"dim": 8, "epochs": 3, "workers": 1, "seed": 3}


@pytest.fixture(scope="module")
def planted():
    return generate(SynthConfig(events=12_000, seed=6))


@pytest.fixture(scope="module")
def model(planted):
    return train(planted[0], TrainConfig(**SMALL, entities=("shop_id", "category")))


def hand_sessions() -> pl.DataFrame:
    """Two sessions; item 1 moves from shop 10 to shop 30 (in time, not in session order: session 8 is
    the later one); one event has no shop; categories are text."""
    rows = [  # session, item, interaction, minutes after T0, shop, category
        (8, 1, "click", 60, 30, "shoes"),
        (8, 2, "click", 61, 10, "shoes"),
        (8, 2, "cart", 62, 10, None),
        (9, 3, "click", 0, 20, "hats"),
        (9, 1, "click", 1, 10, "shoes"),
        (9, 4, "click", 2, None, "hats"),
        (9, 1, "cart", 3, 10, "shoes"),
    ]
    frame = pl.DataFrame(
        [{"session_id": s, "item_id": i, "interaction": k, "timestamp": T0 + timedelta(minutes=m),
          "shop_id": shop, "category": cat} for s, i, k, m, shop, cat in rows],
        schema_overrides={"shop_id": pl.Int64, "category": pl.String},
    )
    return validate_sessions(frame)


def test_entity_sessions_replace_the_item_and_keep_each_sessions_order():
    s = entity_sessions(hand_sessions(), "shop_id")
    assert s.columns == ["session_id", "item_id", "interaction", "timestamp"]
    assert s["item_id"].dtype == pl.Int64
    # the null-shop event of session 9 is gone, the rest in time order
    assert s.rows() == [(r[0], r[1], r[2], r[3]) for r in [
        (8, 30, "click", T0 + timedelta(minutes=60)), (8, 10, "click", T0 + timedelta(minutes=61)),
        (8, 10, "cart", T0 + timedelta(minutes=62)), (9, 20, "click", T0), (9, 10, "click", T0 + timedelta(minutes=1)),
        (9, 10, "cart", T0 + timedelta(minutes=3))]]


def test_item_table_by_hand():
    t = item_table(hand_sessions())
    assert t.columns == ["item_id", "shop_id", "category", "count"]
    # item 1: shop 10 at minutes 1 and 3, shop 30 at minute 60 -> 30; item 2's last category is null -> shoes
    assert t.rows() == [(1, 30, "shoes", 3), (2, 10, "shoes", 2), (3, 20, "hats", 1), (4, None, "hats", 1)]
    assert item_table(hand_sessions().drop("shop_id")).columns == ["item_id", "category", "count"]
    assert item_table(hand_sessions().drop("shop_id", "category")) is None


def test_group_tokens_by_hand():
    m = train(hand_sessions(), TrainConfig(**SMALL, entities=("shop_id", "category")))
    shops = m.groups["shop_id"]
    assert dict(zip(shops.vocab["token"], shops.vocab["count"], strict=True)) == {
        "10:click": 2, "10:cart": 2, "20:click": 1, "30:click": 1}
    cats = m.groups["category"]
    assert cats.vocab["item_id"].dtype == pl.String
    assert dict(zip(cats.vocab["token"], cats.vocab["count"], strict=True)) == {
        "shoes:click": 3, "hats:click": 2, "shoes:cart": 1}  # the cart without a category is left out
    assert shops.manifest["entity"] == "shop_id" and shops.manifest["counts"]["events"] == 6
    assert cats.manifest["counts"]["events"] == 6 and cats.manifest["counts"]["items"] == 2
    assert m.items.height == 4


def test_item_model_is_the_same_with_or_without_groups(planted, model):
    alone = train(planted[0], TrainConfig(**SMALL))
    assert alone.vocab.equals(model.vocab)
    assert np.array_equal(alone.vectors_in, model.vectors_in) and np.array_equal(alone.vectors_out, model.vectors_out)
    assert alone.groups == {} and list(model.manifest["config"]["entities"]) == ["shop_id", "category"]


def test_a_group_model_is_the_item_pipeline_on_the_groups(planted, model):
    cfg = replace(TrainConfig(**SMALL), epochs=model.manifest["config"]["epochs"])
    direct = train(entity_sessions(planted[0], "shop_id"), cfg)
    shops = model.groups["shop_id"]
    assert direct.vocab.equals(shops.vocab) and np.array_equal(direct.vectors_in, shops.vectors_in)
    assert shops.manifest["config"] == model.manifest["config"]
    assert shops.vocab["item_id"].dtype == planted[0]["shop_id"].dtype
    assert set(shops.vocab["item_id"].to_list()) == set(planted[0]["shop_id"].to_list())


def test_shop_vectors_learn_the_planted_shops():
    """Shops specialise in one top-level category: a shop's click vector should score the carts of
    shops of its own top category above the others (chance: 1 in 12)."""
    df, world = generate(SynthConfig(events=40_000, seed=4))
    shops = train(df, TrainConfig(dim=16, epochs=5, workers=1, seed=1, entities=("shop_id",))).groups["shop_id"]
    top = dict(zip(world.item_shop.tolist(), world.top_of[world.item_category].tolist(), strict=True))
    clicks = shops.vocab.filter(pl.col("interaction") == "click")
    carts = shops.vocab.filter(pl.col("interaction") == "cart")
    score = (shops.vectors_in[clicks["token_id"].to_numpy()] @ shops.vectors_out[carts["token_id"].to_numpy()].T
             + 0.75 * np.log(carts["count"].to_numpy())[None, :])
    own = clicks["item_id"].to_numpy()[:, None] == carts["item_id"].to_numpy()[None, :]
    best = np.where(own, -np.inf, score).argmax(axis=1)  # the best cart of another shop
    same_top = np.array([top[a] == top[b] for a, b in zip(clicks["item_id"], carts["item_id"].to_numpy()[best],
                                                           strict=True)])
    assert same_top.mean() > 0.8


def test_save_and_load_keep_groups_and_items(model, tmp_path):
    manifest = model.save(tmp_path / "m")
    assert set(manifest["groups"]) == {"shop_id", "category"}
    assert manifest["groups"]["shop_id"]["counts"]["tokens"] == model.groups["shop_id"].vocab.height
    assert manifest["item_table"] == {"rows": model.items.height, "columns": ["item_id", "shop_id", "category",
                                                                               "count"]}
    for f in ("items.parquet", "groups/shop_id/tokens.parquet", "groups/shop_id/vectors_in.npy",
              "groups/category/vectors_out.npy"):
        assert f in manifest["files"]
    back = EmbeddingModel.load(tmp_path / "m")
    assert back.items.equals(model.items)
    for entity, g in model.groups.items():
        b = back.groups[entity]
        assert b.vocab.equals(g.vocab) and np.array_equal(b.vectors_in, g.vectors_in)
        assert np.array_equal(b.vectors_out, g.vectors_out)
        assert b.manifest["entity"] == entity and b.manifest["counts"] == g.manifest["counts"]
        assert b.manifest["config"] == back.manifest["config"]
        assert b.groups == {} and b.items is None
    report = verify_artifact(tmp_path / "m")
    assert report["ok"] and {r["status"] for r in report["files"]} == {"ok"}


def test_no_shop_or_category_means_no_item_table(tmp_path):
    m = train(hand_sessions().drop("shop_id", "category"), TrainConfig(**SMALL))
    manifest = m.save(tmp_path / "m")
    assert "item_table" not in manifest and "groups" not in manifest
    assert tree(tmp_path / "m") == {"manifest.json", "tokens.parquet", "vectors_in.npy", "vectors_out.npy"}
    back = EmbeddingModel.load(tmp_path / "m")
    assert back.items is None and back.groups == {}


@pytest.fixture()
def saved(model, tmp_path):
    model.save(tmp_path / "m")
    return tmp_path / "m"


def edit_manifest(directory, change) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def test_a_changed_group_file_is_caught(saved):
    vectors = np.load(saved / "groups/shop_id/vectors_in.npy")
    np.save(saved / "groups/shop_id/vectors_in.npy", vectors[::-1].copy())  # same size, other bytes
    report = verify_artifact(saved)
    assert not report["ok"]
    assert [r["file"] for r in report["files"] if r["status"] != "ok"] == ["groups/shop_id/vectors_in.npy"]
    np.save(saved / "groups/shop_id/vectors_in.npy", vectors[:-1])  # a row fewer: refused on every load
    with pytest.raises(ArtifactError, match=r"groups/shop_id/vectors_in\.npy: .* bytes, but manifest\.json"):
        EmbeddingModel.load(saved)


def test_a_missing_group_file_or_item_table_is_named(saved):
    (saved / "groups/category/tokens.parquet").unlink()
    # the file itself is named, and what to do (issue 21: every artifact reader names the file and recs check)
    with pytest.raises(ArtifactError, match=r"groups/category/tokens\.parquet: missing.*recs check"):
        EmbeddingModel.load(saved)


def test_a_missing_item_table_is_named(saved):
    (saved / "items.parquet").unlink()
    with pytest.raises(ArtifactError, match=r"items\.parquet: missing.*recs check"):
        EmbeddingModel.load(saved)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["groups"].update({"../x": m["groups"]["shop_id"]}), r"field 'groups' names '\.\./x'"),
    (lambda m: m["groups"]["shop_id"].update(counts=3), r"field 'groups\.shop_id\.counts' must be an object"),
    (lambda m: m["files"].pop("groups/shop_id/vectors_out.npy"), r"does not list groups/shop_id/vectors_out\.npy"),
    (lambda m: m["files"].pop("items.parquet"), r"does not list items\.parquet"),
    (lambda m: m["item_table"].update(rows=5), r"items\.parquet: \d+ rows, but manifest\.json field 'item_table"),
])
def test_a_manifest_that_does_not_describe_the_groups_is_refused(saved, change, message):
    edit_manifest(saved, change)
    with pytest.raises(ArtifactError, match=message):
        EmbeddingModel.load(saved)


def test_group_vectors_of_another_width_are_refused(saved):
    edit_manifest(saved, lambda m: m["config"].update(dim=4))  # the item check comes first: it names the width
    with pytest.raises(ArtifactError, match=r"field 'config\.dim' is 4"):
        EmbeddingModel.load(saved)


def test_save_refuses_groups_it_could_not_read_back(model, tmp_path):
    bad = replace(model.groups["shop_id"], vectors_in=np.full_like(model.groups["shop_id"].vectors_in, np.nan))
    broken = replace(model, groups={"shop_id": bad})
    with pytest.raises(ConfigError, match=r"groups/shop_id/vectors_in\.npy: row 0 .* NaN"):
        broken.save(tmp_path / "m")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(("entities", "message"), [
    (("user_id",), r"--entity 'user_id': choose one of shop_id, category"),
    (("shop_id", "category", "shop_id"), r"--entity shop_id is given more than once"),
])
def test_entities_are_validated(entities, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(entities=entities).validate()


def test_an_entity_the_sessions_lack_is_named_with_the_columns_present():
    with pytest.raises(ConfigError, match=r"--entity shop_id: sessions has no column 'shop_id'; columns present: "
                                          r"session_id, item_id, interaction, timestamp, category"):
        train(hand_sessions().drop("shop_id"), TrainConfig(**SMALL, entities=("shop_id",)))
    one_shop = hand_sessions().with_columns(pl.lit(7, dtype=pl.Int64).alias("shop_id"),
                                            pl.lit("click").alias("interaction"))
    with pytest.raises(InputError, match=r"--entity shop_id: only 1 token\(s\)"):
        train(one_shop, TrainConfig(**SMALL, entities=("shop_id",)))


def test_cli_trains_groups_and_refuses_what_it_cannot(tmp_path):
    sessions = tmp_path / "s.parquet"
    hand_sessions().write_parquet(sessions)
    r = run_cli("train-embeddings", sessions, "--out", tmp_path / "m", "--dim", 4, "--epochs", 2, "--workers", 1,
                "--entity", "shop_id", "--entity", "category", "--quiet")
    assert r.exit_code == 0, r.output
    assert set(EmbeddingModel.load(tmp_path / "m").groups) == {"shop_id", "category"}
    assert run_cli("check", tmp_path / "m").exit_code == 0

    hand_sessions().drop("shop_id").write_parquet(tmp_path / "noshop.parquet")
    line = one_line_error(run_cli("train-embeddings", tmp_path / "noshop.parquet", "--out", tmp_path / "m2",
                                  "--entity", "shop_id", "--quiet"))
    assert "noshop.parquet has no column 'shop_id'; columns present:" in line
    line = one_line_error(run_cli("train-embeddings", sessions, "--out", tmp_path / "m3", "--entity", "shop_id",
                                  "--engine", "spark", "--quiet"))
    assert line == "Error: --entity is trained on the polars engine only"
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()
