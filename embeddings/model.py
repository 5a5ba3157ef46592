"""The trained model as an artifact: vocabulary + input and output vectors, no pickle.

``MODEL_DIR`` holds ``tokens.parquet`` (token_id, token, item_id, interaction, count),
``vectors_in.npy`` and ``vectors_out.npy`` (float32, row = token_id) and ``manifest.json``.
Input vectors are the usual word2vec embeddings; output (context) vectors are kept because their
dot product with input vectors, u_p . v_q, is the model's co-occurrence likelihood (``--score in-out``).

Beside them, for cold-start roll-up: ``groups/<entity>/`` holds a group model (``--entity shop_id``:
the same three files, tokens of shops instead of items; ``recs.embeddings.groups``), and
``items.parquet`` each item's shop and category when the sessions had them (``recs.embeddings.items``).
Both are written and read here with the item files, in the one atomic directory, under one manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.artifacts import atomic_dir, read_artifact_file, read_manifest, record_files, write_manifest
from recs.columns import Col
from recs.embeddings.groups import group_dir, groups_manifest
from recs.embeddings.items import ITEMS_FILE
from recs.embeddings.model_check import (
    TOKENS_FILE,
    VECTORS_IN,
    VECTORS_OUT,
    check_groups,
    check_item_table,
    check_model,
    group_manifest,
)
from recs.errors import ConfigError

MODEL_FORMAT = "recs.model"
MODEL_VERSION = 1


@dataclass
class EmbeddingModel:
    vocab: pl.DataFrame
    vectors_in: np.ndarray
    vectors_out: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)
    # entity (shop_id, category) -> its group model, a plain EmbeddingModel whose item_id are group ids
    groups: dict[str, EmbeddingModel] = field(default_factory=dict)
    items: pl.DataFrame | None = None  # item_id, shop_id and/or category, count; None without those columns

    @property
    def interactions(self) -> list[str]:
        return sorted(self.vocab[Col.INTERACTION].unique().to_list())

    def tokens_of(self, interaction: str) -> pl.DataFrame:
        """Vocabulary rows of one interaction (token_id, item_id), or a ConfigError naming those present."""
        rows = self.vocab.filter(pl.col(Col.INTERACTION) == interaction).select(Col.TOKEN_ID, Col.ITEM)
        if rows.height == 0:
            raise ConfigError(
                f"no {interaction!r} tokens in the model; interactions present: {', '.join(self.interactions)}"
            )
        return rows

    def save(self, out: str | Path, **manifest_fields: Any) -> dict[str, Any]:
        """Write the model directory atomically and return its manifest.

        The model is checked as ``load`` checks it, before anything is written: a model that could not
        be read back (NaN or inf from a diverged training, zero-width vectors) is a ConfigError here
        rather than an index of nonsense later. The manifest records every file's size and hash.
        The group models and the item table are written with the item files, under the same rules,
        and the manifest's ``groups`` and ``item_table`` fields are made from them (never carried over).
        """
        out = Path(out)
        vin, vout = _float32(self.vectors_in), _float32(self.vectors_out)
        fields = {**self.manifest, **manifest_fields}
        for key in ("format", "format_version", "recs_version", "created_utc", "files", "groups", "item_table"):
            fields.pop(key, None)
        if self.groups:
            fields["groups"] = groups_manifest(self.groups)
        if self.items is not None:
            fields["item_table"] = {"rows": self.items.height, "columns": self.items.columns}
        check_model(out, fields, self.vocab, vin, vout, error=ConfigError)
        groups = {e: replace(g, vectors_in=_float32(g.vectors_in), vectors_out=_float32(g.vectors_out))
                  for e, g in self.groups.items()}
        check_groups(out, fields, groups, error=ConfigError)
        if self.items is not None:
            check_item_table(out / ITEMS_FILE, self.items, self.vocab, None, error=ConfigError)
        with atomic_dir(out, MODEL_FORMAT) as tmp:
            _write_files(tmp, self.vocab, vin, vout)
            for entity, g in groups.items():
                _write_files(group_dir(tmp, entity), g.vocab, g.vectors_in, g.vectors_out)
            if self.items is not None:
                self.items.write_parquet(tmp / ITEMS_FILE)
            self.manifest = write_manifest(tmp, MODEL_FORMAT, MODEL_VERSION, **fields, files=record_files(tmp))
        return self.manifest

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingModel:
        """Read MODEL_DIR; its manifest, vocabulary and vectors are checked (``recs.embeddings.model_check``)
        so that a broken or hand-edited model is one ArtifactError naming the file, not a traceback later."""
        directory = Path(directory)
        manifest = read_manifest(directory, MODEL_FORMAT, MODEL_VERSION)
        vocab, vin, vout = _read_files(directory)
        check_model(directory, manifest, vocab, vin, vout)
        groups = {}
        for entity in manifest.get("groups", {}):  # the field's entities were checked by check_model
            gv, gi, go = _read_files(group_dir(directory, entity))
            groups[entity] = cls(gv, gi, go, group_manifest(manifest, entity))
        check_groups(directory, manifest, groups)
        items = None
        if "item_table" in manifest:
            items = read_artifact_file(directory / ITEMS_FILE, pl.read_parquet, directory)
            check_item_table(directory / ITEMS_FILE, items, vocab, manifest["item_table"]["rows"])
        return cls(vocab, vin, vout, manifest, groups, items)


def _write_files(directory: Path, vocab: pl.DataFrame, vin: np.ndarray, vout: np.ndarray) -> None:
    """The three files of one model (the item model, or a group model in groups/<entity>/).

    ``np.save`` to the path, and ``record_files`` hashes the files back from the page cache: hashing
    them while written (through a Python file object, ``recs.overlap.HashingFile``) made numpy copy
    every 16 MiB chunk to bytes and measured slower (issue 23)."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab.write_parquet(directory / TOKENS_FILE)
    np.save(directory / VECTORS_IN, vin, allow_pickle=False)
    np.save(directory / VECTORS_OUT, vout, allow_pickle=False)


def _read_files(directory: Path) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The three files of one model (checked by the caller). Any failure to parse one (a .npy header whose
    dtype text was overwritten raises SyntaxError or tokenize.TokenError inside numpy) is one
    ArtifactError naming the file and ``recs check`` (``recs.artifacts.read_artifact_file``)."""
    vocab = read_artifact_file(directory / TOKENS_FILE, pl.read_parquet)
    vin = read_artifact_file(directory / VECTORS_IN, _load_npy)
    vout = read_artifact_file(directory / VECTORS_OUT, _load_npy)
    return vocab, vin, vout


def _load_npy(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _float32(vectors: np.ndarray) -> np.ndarray:
    """Float vectors as C-ordered float32 (what is written); anything else as it is, for check_model to name."""
    vectors = np.asarray(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32) if np.issubdtype(vectors.dtype, np.floating) else vectors
