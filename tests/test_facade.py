"""The Python API of ``recs/__init__.py`` (``recs.facade``): what a notebook calls, checked against the
library functions the commands call, so the facade can only add convenience, never other numbers.

- ``import recs`` stays cheap (no faiss, gensim or scipy; the facade's names load on first use), and
  ``python -m recs`` is the CLI;
- ``recs.train`` on a frame or a path is ``recs.embeddings.train.train``; ``model[token]`` is the token's
  vector and a missing token a KeyError naming it; ``model.similar`` is the index's list of the item;
- ``recs.build_index`` -> ``Index.save`` writes a normal INDEX_DIR (``recs check`` passes), ``recs.open_index``
  reads it; ``recs.Recommender`` and ``recs.evaluate`` answer what ``recs recommend`` / ``eval-hitrate``
  answer on the same directory;
- progress goes to the ``recs`` logger only: nothing is printed.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

import recs
from recs.artifacts import verify_artifact
from recs.errors import ArtifactError, ConfigError, RecsError

from helpers import planted_split

SETTINGS = {"dim": 16, "seed": 0, "workers": 1, "epochs": 3}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    d = tmp_path_factory.mktemp("facade")
    planted_split(d, 8_000, 0)
    return d


@pytest.fixture(scope="module")
def model(planted):
    return recs.train(pl.read_parquet(planted / "train.parquet"), **SETTINGS)


@pytest.fixture(scope="module")
def index(model):
    return recs.build_index(model, k=20, threads=1)


def most_carted(path) -> int:
    carts = pl.read_parquet(path).filter(pl.col("interaction") == "cart")
    return int(carts["item_id"].value_counts(sort=True)[0, "item_id"])


def test_import_recs_loads_no_heavy_library():
    heavy = ("faiss", "gensim", "scipy", "polars", "sklearn", "implicit", "lightgbm", "pyspark")
    code = ("import sys, recs\n"
            f"loaded = [m for m in {heavy!r} if m in sys.modules]\n"
            "assert not loaded, loaded\n"
            "recs.Model, recs.train, recs.Recommender  # the facade's names: still no faiss, gensim or scipy\n"
            "loaded = [m for m in ('faiss', 'gensim', 'scipy') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_python_m_recs_is_the_cli():
    r = subprocess.run([sys.executable, "-m", "recs", "--version"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"recs, version {recs.__version__}"


def test_the_facade_names_are_exported():
    assert {"train", "build_index", "open_index", "Recommender", "evaluate", "Model", "Index", "EvalResult"} <= \
        set(recs.__all__)
    from recs import evaluate, train  # a from-import goes through the lazy __getattr__ too

    assert train is recs.train and evaluate is recs.evaluate
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        recs.nope  # noqa: B018


def test_train_from_a_path_is_train_from_the_frame(planted, model):
    again = recs.train(planted / "train.parquet", **SETTINGS)
    assert again.vocab.equals(model.vocab)
    np.testing.assert_array_equal(again.embedding.vectors_in, model.embedding.vectors_in)  # one worker, one seed
    assert model.manifest["config"]["dim"] == 16 and model.manifest["config"]["epochs"] == 3


def test_a_vector_by_token_and_a_missing_token_named(planted, model):
    item = most_carted(planted / "train.parquet")
    row = model.vocab.filter(pl.col("token") == f"{item}:cart")["token_id"].item()
    vector = model[f"{item}:cart"]
    assert vector.dtype == np.float32 and vector.shape == (16,)
    np.testing.assert_array_equal(vector, model.embedding.vectors_in[row])
    assert f"{item}:cart" in model and "1:cart" not in model and len(model) == model.vocab.height
    with pytest.raises(KeyError, match=r"no token '1:cart' in the model") as e:
        model["1:cart"]
    assert isinstance(e.value, RecsError) and str(e.value).startswith("no token")  # not quoted as KeyError's
    with pytest.raises(KeyError, match="no item 1 in the model"):
        model.similar(1)


def test_similar_is_the_items_list_in_the_index(planted, model, index):
    item = most_carted(planted / "train.parquet")
    similar = model.similar(item, "click", "cart", k=10)
    assert similar.columns == ["rank", "candidate_item_id", "score"] and similar.height == 10
    assert similar["rank"].to_list() == list(range(1, 11)) and item not in similar["candidate_item_id"].to_list()
    written = index.candidates("click_to_cart").filter(pl.col("item_id") == item).sort("rank").head(10)
    assert similar["candidate_item_id"].to_list() == written["candidate_item_id"].to_list()
    np.testing.assert_allclose(similar["score"].to_numpy(), written["score"].to_numpy(), rtol=1e-5)
    by_text = model.similar(str(item), k=3)  # "42" finds item 42, as everywhere in recs
    assert by_text["candidate_item_id"].to_list() == similar["candidate_item_id"].head(3).to_list()


def test_settings_are_config_fields_and_an_unknown_one_is_named():
    with pytest.raises(ConfigError, match=r"TrainConfig has no setting 'dimension'.*\bdim\b"):
        recs.train(pl.DataFrame(), dimension=64)
    with pytest.raises(ConfigError, match="a polars DataFrame of sessions or a path"):
        recs.train([(1, "click")])


def test_an_index_saved_is_a_normal_index_dir(tmp_path, index):
    assert index.set_names == ["click_to_cart", "cart_to_cart"] and index.method == "ours"
    out = index.save(tmp_path / "index")
    verify_artifact(out)  # what `recs check` runs: every file's size and hash as the manifest records them
    opened = recs.open_index(out)
    assert opened.manifest["candidate_sets"] == index.manifest["candidate_sets"]
    assert opened.candidates("cart_to_cart").equals(index.candidates("cart_to_cart"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match=r"is not a recs\.index directory"):
        index.save(tmp_path / "mine")  # a directory that is not an index is never replaced
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_built_index_goes_with_its_object(model):
    built = recs.build_index(model, k=5, threads=1, pairs=(("click", "cart"),))
    where = built.directory
    assert where.exists() and built.set_names == ["click_to_cart"]
    del built
    assert not where.exists()


def test_recommender_answers_as_the_library_recommender(planted, index):
    from recs.recommend.recommender import Recommender as Library

    item = most_carted(planted / "train.parquet")
    history = [(item, "click", 1), (item, "cart", 2)]
    ours = recs.Recommender(index, k=50).recommend(history, module="both").to_frame()
    theirs = Library.open(index.directory).recommend(history, module="both", k=50).to_frame()
    assert ours.height > 0 and ours.equals(theirs)
    with pytest.raises(ConfigError, match=r"takes a recs\.Index .* not DataFrame"):
        recs.Recommender(pl.DataFrame({"item_id": [item]}))
    with pytest.raises(ConfigError, match="RecommendConfig has no setting 'modul'"):
        recs.Recommender(index).recommend(history, modul="click")


def test_evaluate_is_eval_hitrate(tmp_path, planted, index):
    from recs.eval.report import evaluate_index

    result = recs.evaluate(index, pl.read_parquet(planted / "test.parquet"), bootstrap=50)
    out = index.save(tmp_path / "index")
    report = evaluate_index(out, planted / "test.parquet", recs.facade.EvalConfig(bootstrap=50))
    assert result.k == 20 and result.method == "ours" and result.score == "prob"
    assert list(result.sets) == ["click_to_cart", "cart_to_cart"]
    for row in report["results"]:
        got = result[row["candidate_set"]]
        assert (got.targets, got.hits, got.hit_rate_low) == (row["targets"], row["hits"], row["hit_rate_low"])
        assert math.isclose(result.hit_rates[row["candidate_set"]], row["hit_rate"])
    frame = result.to_frame()
    assert frame.height == 2 and {"candidate_set", "hit_rate", "coverage", "discovery_hits"} <= set(frame.columns)
    assert recs.evaluate(out, planted / "test.parquet", bootstrap=0)["click_to_cart"].hit_rate_low is None


def test_progress_is_logged_never_printed(planted, capsys, caplog):
    with caplog.at_level(logging.INFO, logger="recs"):
        built = recs.train(planted / "train.parquet", **SETTINGS)
        recs.build_index(built, k=5, threads=1)
    said = [r.getMessage() for r in caplog.records if r.name == "recs"]
    assert any(m.startswith("training: 3 epochs in ") for m in said), said
    assert any(m.startswith("click->cart: ") for m in said), said
    out = capsys.readouterr()
    assert (out.out, out.err) == ("", "")
