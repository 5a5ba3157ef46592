"""--config FILE (recs.config_file): TOML sections that mirror the configs, read back exactly as written,
checked when read, and merged under the options typed on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recs.config import CoocConfig, EvalConfig, IndexConfig, TrainConfig
from recs.config_file import ConfigFile, config_sections, parse_config, read_config, to_toml
from recs.errors import ConfigError

from helpers import one_line_error, planted_split, run_cli, tree

TINY = ["--epochs", "2", "--workers", "1", "--quiet"]


@pytest.mark.parametrize("train, index, eval_", [
    (TrainConfig(), IndexConfig(), EvalConfig()),
    (TrainConfig(dim=16, window=3, negative=7, ns_exponent=-0.35, epochs=7, min_count=2, sample=2.5e-05, alpha=0.05,
                 workers=1, seed=9, corpus_mode="iterable", cooc=CoocConfig(k=0, horizon=9, same_item=True),
                 entities=("shop_id", "category")),
     IndexConfig(pairs=(("click", "cart"), ("favorite", "cart")), k=25, m=16, score="in-out", backoff=False,
                 shrink=0.0, rollup="off", threads=1),
     EvalConfig(targets=("purchase",), triggers=2)),
])
def test_round_trip_gives_the_same_dataclasses(train, index, eval_):
    text = to_toml(config_sections(train=train, index=index, eval=eval_), ["a comment"])
    read = parse_config(text, "x.toml")
    assert (read.train(), read.index(), read.eval()) == (train, index, eval_)
    # and once more through a file, as --config reads it
    assert parse_config(to_toml(read.sections)).train() == train


def test_a_partial_file_overlays_only_its_keys():
    f = parse_config("[train]\ndim = 16\n[train.cooc]\nk = 0\n[index]\nscore = 'cosine'\n")
    assert f.train() == TrainConfig(dim=16, cooc=CoocConfig(k=0))
    assert f.index() == IndexConfig(score="cosine") and f.eval() == EvalConfig()
    # keys given on the command line win: dotted below the section, sub-sections too
    base = TrainConfig(dim=8, cooc=CoocConfig(k=5))
    assert f.train(base, keep={"dim"}) == TrainConfig(dim=8, cooc=CoocConfig(k=0))
    assert f.train(base, keep={"cooc.k"}) == TrainConfig(dim=16, cooc=CoocConfig(k=5))
    assert ConfigFile().train(base) == base == read_config(None).train(base)


def test_pairs_as_the_option_spells_them():
    pairs = parse_config('[index]\npairs = "click:cart, cart:cart"').index().pairs
    assert pairs == (("click", "cart"), ("cart", "cart"))
    assert parse_config('[index]\npairs = [["click", "cart"]]').index().pairs == (("click", "cart"),)


@pytest.mark.parametrize("text, message", [
    ('[train]\ndim = "big"', '[train] dim = "big": expected an integer'),
    ("[train]\nwindow = 2.5", "[train] window = 2.5: expected an integer"),
    ("[train]\nsample = true", "[train] sample = true: expected a number"),
    ("[train]\nepochs = 'auto'", "[train] epochs = \"auto\": expected an integer"),
    ("[index]\nbackoff = 1", "[index] backoff = 1: expected true or false"),
    ('[eval]\ntargets = "cart"', '[eval] targets = "cart": expected an array of strings'),
    ("[index]\npairs = [\"click\"]", "[index] pairs: --pairs: 'click' is not of the form SOURCE:TARGET"),
    ("[train.cooc]\nk = 'three'", '[train.cooc] k = "three": expected an integer'),
    ("[trian]\ndim = 3", "unknown section [trian]; sections: [train], [train.cooc], [index], [eval]"),
    ("[train.coocc]\nk = 3", "unknown section [train.coocc]"),
    ("[train]\ndimm = 3", "[train] has no key 'dimm'; its keys are dim, window,"),
    ("[train]\ncooc = 3", "[train] has no key 'cooc'"),
    ("dim = 3", "dim = 3 is outside any section; put it under one of [train]"),
    ("[train]\ndim = 0", "[train] --dim must be in 1..10,000 (got 0)"),
    ("[index]\nscore = 'best'", "[index] --score 'best': choose one of prob, in-out, cosine"),
    ("[train\ndim = 3", "not valid TOML"),
])
def test_a_bad_file_is_one_config_error_naming_file_section_and_key(text, message):
    with pytest.raises(ConfigError) as e:
        parse_config(text, "conf/tuned.toml")
    assert str(e.value).startswith("conf/tuned.toml: ") and message in str(e.value), str(e.value)


def test_missing_and_undecodable_files(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the config file"):
        read_config(tmp_path / "nope.toml")
    (tmp_path / "latin.toml").write_bytes(b"[train]\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.toml: not a UTF-8 text file"):
        read_config(tmp_path / "latin.toml")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("conf")
    planted_split(d, 5_000, 3)
    (d / "tuned.toml").write_text("[train]\ndim = 16\nwindow = 3\nns_exponent = 0.5\n[train.cooc]\nk = 2\n"
                                  "[index]\nscore = 'cosine'\nk = 30\n")
    return d


def _config(model: Path) -> dict:
    return json.loads((model / "manifest.json").read_text())["config"]


def test_train_embeddings_reads_the_file_and_options_win(tiny, tmp_path):
    assert run_cli("train-embeddings", tiny / "train.parquet", "--out", tmp_path / "m", "--config",
                   tiny / "tuned.toml", *TINY).exit_code == 0
    cfg = _config(tmp_path / "m")
    assert (cfg["dim"], cfg["window"], cfg["ns_exponent"], cfg["cooc"]["k"], cfg["epochs"]) == (16, 3, 0.5, 2, 2)
    assert cfg["negative"] == TrainConfig().negative  # not in the file: the default
    assert run_cli("train-embeddings", tiny / "train.parquet", "--out", tmp_path / "m8", "--dim", 8, "--cooc-k", 0,
                   "--config", tiny / "tuned.toml", *TINY).exit_code == 0
    cfg = _config(tmp_path / "m8")
    assert (cfg["dim"], cfg["window"], cfg["cooc"]["k"]) == (8, 3, 0)
    # an option given with its default value still wins: it was typed
    assert run_cli("train-embeddings", tiny / "train.parquet", "--out", tmp_path / "m200", "--window", 5,
                   "--config", tiny / "tuned.toml", *TINY).exit_code == 0
    assert _config(tmp_path / "m200")["window"] == 5


def test_build_index_reads_the_index_section(tiny, tmp_path):
    r = run_cli("train-embeddings", tiny / "train.parquet", "--out", tmp_path / "m", "--dim", 8, *TINY)
    assert r.exit_code == 0
    r = run_cli("build-index", "--model", tmp_path / "m", "--out", tmp_path / "i", "--config", tiny / "tuned.toml",
                "--threads", 1, "--quiet")
    assert r.exit_code == 0 and "score: cosine" in r.output and "k=30" in r.output, r.output
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert (manifest["config"]["score"], manifest["config"]["k"]) == ("cosine", 30)
    r = run_cli("build-index", "--model", tmp_path / "m", "--out", tmp_path / "i2", "--config", tiny / "tuned.toml",
                "--k", 10, "--threads", 1, "--quiet")
    assert json.loads((tmp_path / "i2" / "manifest.json").read_text())["config"]["k"] == 10


def test_compare_reads_train_and_index_sections(tiny, tmp_path):
    r = run_cli("compare", tiny / "train.parquet", tiny / "test.parquet", "--methods", "ours", "--config",
                tiny / "tuned.toml", "--epochs", 2, "--workers", 1, "--quiet", "--json", tmp_path / "c.json")
    assert r.exit_code == 0, r.output
    settings = json.loads((tmp_path / "c.json").read_text())["settings"]
    assert (settings["k"], settings["train"]["dim"], settings["train"]["epochs"]) == (30, 16, 2)
    assert settings["index"]["score"] == "cosine" and settings["train"]["cooc"]["k"] == 2


@pytest.mark.parametrize("command", ["train-embeddings", "build-index", "compare"])
def test_a_bad_file_is_one_error_line_and_nothing_written(tiny, tmp_path, command):
    (tmp_path / "bad.toml").write_text('[train]\ndim = "big"\n')
    before = tree(tmp_path)
    argv = {"train-embeddings": ["train-embeddings", tiny / "train.parquet", "--out", tmp_path / "m"],
            "build-index": ["build-index", "--model", tiny / "nomodel", "--out", tmp_path / "i"],
            "compare": ["compare", tiny / "train.parquet", tiny / "test.parquet", "--json", tmp_path / "c.json"]}
    msg = one_line_error(run_cli(*argv[command], "--config", tmp_path / "bad.toml"))
    assert msg == f'Error: {tmp_path / "bad.toml"}: [train] dim = "big": expected an integer'
    assert tree(tmp_path) == before
