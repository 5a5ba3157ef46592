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

from recs.artifacts import atomic_dir, read_manifest, record_files, write_manifest
from recs.columns import Col
from recs.embeddings.model_check import TOKENS_FILE, VECTORS_IN, VECTORS_OUT, check_model
from recs.errors import ArtifactError, ConfigError

MODEL_FORMAT = "recs.model"
MODEL_VERSION = 1


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

    def save(self, out: str | Path, **manifest_fields: Any) -> dict[str, Any]:
        """Write the model directory atomically and return its manifest.

        The model is checked as ``load`` checks it, before anything is written: a model that could not
        be read back (NaN or inf from a diverged training, zero-width vectors) is a ConfigError here
        rather than an index of nonsense later. The manifest records every file's size and hash.
        """
        vin, vout = _float32(self.vectors_in), _float32(self.vectors_out)
        fields = {**self.manifest, **manifest_fields}
        for key in ("format", "format_version", "recs_version", "created_utc", "files"):
            fields.pop(key, None)
        check_model(out, fields, self.vocab, vin, vout, error=ConfigError)
        with atomic_dir(out, MODEL_FORMAT) as tmp:
            self.vocab.write_parquet(tmp / TOKENS_FILE)
            np.save(tmp / VECTORS_IN, vin, allow_pickle=False)
            np.save(tmp / VECTORS_OUT, vout, allow_pickle=False)
            self.manifest = write_manifest(tmp, MODEL_FORMAT, MODEL_VERSION, **fields, files=record_files(tmp))
        return self.manifest

    @classmethod
    def load(cls, directory: str | Path) -> EmbeddingModel:
        """Read MODEL_DIR; its manifest, vocabulary and vectors are checked (``recs.embeddings.model_check``)
        so that a broken or hand-edited model is one ArtifactError naming the file, not a traceback later."""
        directory = Path(directory)
        manifest = read_manifest(directory, MODEL_FORMAT, MODEL_VERSION)
        try:
            vocab = pl.read_parquet(directory / TOKENS_FILE)
            vin = np.load(directory / VECTORS_IN, allow_pickle=False)
            vout = np.load(directory / VECTORS_OUT, allow_pickle=False)
        except (OSError, ValueError, pl.exceptions.PolarsError) as e:
            raise ArtifactError(f"{directory}: model files unreadable ({e})") from None
        check_model(directory, manifest, vocab, vin, vout)
        return cls(vocab, vin, vout, manifest)


def _float32(vectors: np.ndarray) -> np.ndarray:
    """Float vectors as C-ordered float32 (what is written); anything else as it is, for check_model to name."""
    vectors = np.asarray(vectors)
    return np.ascontiguousarray(vectors, dtype=np.float32) if np.issubdtype(vectors.dtype, np.floating) else vectors
