"""The trained model as an artifact: vocabulary + input and output vectors, no pickle.

``MODEL_DIR`` holds ``tokens.parquet`` (token_id, token, item_id, interaction, count),
``vectors_in.npy`` and ``vectors_out.npy`` (float32, row = token_id) and ``manifest.json``.
Input vectors are the usual word2vec embeddings; output (context) vectors are kept because their
dot product with input vectors, u_p . v_q, is the model's co-occurrence likelihood (``--score in-out``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.artifacts import atomic_dir, read_manifest, write_manifest
from recs.columns import Col
from recs.errors import ArtifactError, ConfigError

MODEL_FORMAT = "recs.model"
MODEL_VERSION = 1
TOKENS_FILE = "tokens.parquet"
VECTORS_IN = "vectors_in.npy"
VECTORS_OUT = "vectors_out.npy"


@dataclass
class EmbeddingModel:
    vocab: pl.DataFrame
    vectors_in: np.ndarray
    vectors_out: np.ndarray
    manifest: dict[str, Any] = field(default_factory=dict)

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

    def vector(self, item_id: Any, interaction: str, which: str = "in") -> np.ndarray:
        row = self.vocab.filter((pl.col(Col.ITEM) == item_id) & (pl.col(Col.INTERACTION) == interaction))
        if row.height == 0:
            raise ConfigError(f"token {item_id}:{interaction} is not in the model")
        m = self.vectors_in if which == "in" else self.vectors_out
        return m[int(row[Col.TOKEN_ID][0])]

    def save(self, out: str | Path, **manifest_fields: Any) -> dict[str, Any]:
        """Write the model directory atomically and return its manifest."""
        with atomic_dir(out, MODEL_FORMAT) as tmp:
            self.vocab.write_parquet(tmp / TOKENS_FILE)
            np.save(tmp / VECTORS_IN, np.ascontiguousarray(self.vectors_in, dtype=np.float32), allow_pickle=False)
            np.save(tmp / VECTORS_OUT, np.ascontiguousarray(self.vectors_out, dtype=np.float32), allow_pickle=False)
            fields = {**self.manifest, **manifest_fields}
            for key in ("format", "format_version", "recs_version", "created_utc"):
                fields.pop(key, None)
            self.manifest = write_manifest(tmp, MODEL_FORMAT, MODEL_VERSION, **fields)
        return self.manifest

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingModel:
        directory = Path(directory)
        manifest = read_manifest(directory, MODEL_FORMAT, MODEL_VERSION)
        try:
            vocab = pl.read_parquet(directory / TOKENS_FILE)
            vin = np.load(directory / VECTORS_IN, allow_pickle=False)
            vout = np.load(directory / VECTORS_OUT, allow_pickle=False)
        except (OSError, ValueError, pl.exceptions.PolarsError) as e:
            raise ArtifactError(f"{directory}: model files unreadable ({e})") from None
        if not (vin.shape == vout.shape and vin.shape[0] == vocab.height):
            raise ArtifactError(
                f"{directory}: inconsistent model: {vocab.height} tokens, vectors {vin.shape} and {vout.shape}"
            )
        return cls(vocab, vin, vout, manifest)
