"""The one validator of a model: what every later stage relies on, checked where the model is read
and before it is written.

A model directory can be edited, truncated or hand-made; without these checks a wrong shape or type
surfaces as a numpy or polars traceback deep in ``build-index``, and NaN or zero-width vectors even
build an index of nonsense without a word. Each rule names the file and the field it is about.

Rules:

* ``manifest.json``: ``config`` and ``counts``, when present, are objects; ``config.ns_exponent`` a
  finite number (the ``prob`` score multiplies by it); ``config.dim`` an integer equal to the vectors'
  width; ``counts.items`` null or an integer >= 0 (the index's catalogue size); a ``files`` record,
  when present, lists every model file (sizes are compared by ``recs.artifacts.read_manifest``).
* ``tokens.parquet``: columns token_id, count (integers), token, interaction (strings), item_id
  (integers or strings), no nulls, at least one row; ``token_id`` is 0..n-1 in row order, since a
  token's vectors are the row ``token_id`` (so ids are in range, none negative, none repeated);
  ``count`` >= 1 (the ``prob`` score takes its log); interaction names are not empty. (Unique
  (item_id, interaction) pairs are not checked: a group-by over every token took 0.6-1.2 s at 2M.)
* ``vectors_in.npy`` and ``vectors_out.npy``: float32, 2-D, one row per token, at least one column,
  the same shape, every value finite (checked in blocks of rows, so no full-size temporary).
* ``groups`` (``--entity``), when present: an object keyed by shop_id / category (they are directory
  names: ``groups/<entity>/``), each with a ``counts`` object; every group model's three files follow
  the rules above (width ``config.dim`` too) and are listed in ``files``.
* ``items.parquet``, when the manifest has ``item_table``: item_id of the vocabulary's type, unique and
  never null; shop_id and/or category, integers or strings; count an integer >= 1; as many rows as
  ``item_table.rows`` says; listed in ``files``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.artifacts import MANIFEST, json_type
from recs.columns import Col
from recs.config import ENTITIES
from recs.embeddings.groups import GROUPS_DIR, group_dir
from recs.embeddings.items import GROUP_COLUMNS, ITEMS_FILE
from recs.errors import ArtifactError, RecsError

TOKENS_FILE = "tokens.parquet"
VECTORS_IN = "vectors_in.npy"
VECTORS_OUT = "vectors_out.npy"
MODEL_FILES = (TOKENS_FILE, VECTORS_IN, VECTORS_OUT)  # of the item model, and of each group model
_FINITE_BLOCK = 65_536  # rows per isfinite pass: 64k x 200 dims is a 13 MB boolean temporary

_INTEGER, _STRING = "an integer", "a string"
_COLUMNS = {Col.TOKEN_ID: (_INTEGER,), Col.TOKEN: (_STRING,), Col.ITEM: (_INTEGER, _STRING),
            Col.INTERACTION: (_STRING,), Col.COUNT: (_INTEGER,)}


def check_model(
    directory: str | Path,
    manifest: dict[str, Any],
    vocab: pl.DataFrame,
    vectors_in: np.ndarray,
    vectors_out: np.ndarray,
    error: type[RecsError] = ArtifactError,
    manifest_path: Path | None = None,
) -> None:
    """Raise ``error`` naming the file and field of the first rule the model breaks (see the module doc).

    ``error`` is ArtifactError for a model read from disk and ConfigError for one about to be saved
    (training produced it from the options and data given). ``manifest_path`` is the manifest the
    fields are read from: the model directory's, also for a group model in ``groups/<entity>/``.
    """
    directory = Path(directory)
    _check_manifest(manifest_path or directory / MANIFEST, manifest, error)
    _check_vocab(directory / TOKENS_FILE, vocab, error)
    for name, vectors in ((VECTORS_IN, vectors_in), (VECTORS_OUT, vectors_out)):
        _check_vectors(directory / name, vectors, vocab, error)
    if vectors_in.shape != vectors_out.shape:
        raise error(f"{directory / VECTORS_OUT}: shape {vectors_out.shape}, but {VECTORS_IN} has "
                    f"{vectors_in.shape}; both hold one row per token of the same width")
    dim = manifest.get("config", {}).get("dim")
    if dim is not None and dim != vectors_in.shape[1]:
        raise error(f"{manifest_path or directory / MANIFEST}: field 'config.dim' is {dim}, but the vectors in "
                    f"{directory} have {vectors_in.shape[1]} columns")


def _check_manifest(path: Path, manifest: dict[str, Any], error: type[RecsError]) -> None:
    for key in ("config", "counts"):
        if key in manifest and not isinstance(manifest[key], dict):
            raise error(f"{path}: field {key!r} must be an object, got {json_type(manifest[key])}")
    config, counts = manifest.get("config", {}), manifest.get("counts", {})
    a = config.get("ns_exponent")
    if a is not None and not (_is_number(a) and math.isfinite(a)):
        raise error(f"{path}: field 'config.ns_exponent' must be a finite number, got {a!r}")
    dim = config.get("dim")
    if dim is not None and not _is_count(dim):
        raise error(f"{path}: field 'config.dim' must be an integer, got {dim!r}")
    items = counts.get("items")
    if items is not None and not _is_count(items):
        raise error(f"{path}: field 'counts.items' must be null or an integer >= 0, got {items!r}")
    groups = _check_groups(path, manifest, error)
    table = manifest.get("item_table")
    if table is not None and not (isinstance(table, dict) and _is_count(table.get("rows"))):
        raise error(f"{path}: field 'item_table' must be an object with 'rows' (an integer >= 0), got {table!r}")
    files = manifest.get("files")
    if isinstance(files, dict):
        expected = [*MODEL_FILES, *(f"{GROUPS_DIR}/{g}/{name}" for g in groups for name in MODEL_FILES),
                    *([ITEMS_FILE] if table is not None else [])]
        missing = [name for name in expected if name not in files]
        if missing:
            raise error(f"{path}: field 'files' does not list {', '.join(missing)}; the record is not of this model")


def _check_groups(path: Path, manifest: dict[str, Any], error: type[RecsError]) -> list[str]:
    """The entities of the manifest's ``groups`` field, checked (module doc); [] when it has none."""
    groups = manifest.get("groups", {})
    if not isinstance(groups, dict):
        raise error(f"{path}: field 'groups' must be an object of entity -> {{counts, timings}}, "
                    f"got {json_type(groups)}")
    for entity, entry in groups.items():
        if entity not in ENTITIES:  # a directory name: nothing but the known columns
            raise error(f"{path}: field 'groups' names {entity!r}; group models are of {', '.join(ENTITIES)}")
        counts = entry.get("counts") if isinstance(entry, dict) else None
        if not isinstance(counts, dict):
            raise error(f"{path}: field 'groups.{entity}.counts' must be an object, got {json_type(counts)}")
        items = counts.get("items")
        if items is not None and not _is_count(items):
            raise error(f"{path}: field 'groups.{entity}.counts.items' must be null or an integer >= 0, "
                        f"got {items!r}")
    return list(groups)


def group_manifest(manifest: dict[str, Any], entity: str) -> dict[str, Any]:
    """A group model's own manifest, from its model's (checked by ``check_model`` first)."""
    entry = manifest["groups"][entity]
    return {"entity": entity, "config": manifest.get("config", {}), "counts": entry["counts"],
            "timings": entry.get("timings", {})}


def check_groups(directory: Path, manifest: dict[str, Any], groups: dict[str, Any],
                 error: type[RecsError] = ArtifactError) -> None:
    """Every group model (``{entity: EmbeddingModel}``) by the rules of the item model, its messages
    naming ``groups/<entity>/`` files and the model's manifest; a model written with groups must be read
    with all of them, and the other way round."""
    named = set(manifest.get("groups", {}))
    if named != set(groups):
        raise error(f"{directory / MANIFEST}: field 'groups' names {sorted(named)}, but the group models are "
                    f"{sorted(groups)}")
    for entity, g in groups.items():
        check_model(group_dir(directory, entity), {"config": manifest.get("config", {})}, g.vocab, g.vectors_in,
                    g.vectors_out, error, manifest_path=directory / MANIFEST)


def check_item_table(path: Path, items: pl.DataFrame, vocab: pl.DataFrame, rows: int | None,
                     error: type[RecsError] = ArtifactError) -> None:
    """``items.parquet`` by the rules of the module doc; ``rows`` is what the manifest recorded (None: not checked)."""
    found = ", ".join(items.columns)
    for col in (Col.ITEM, Col.COUNT):
        if col not in items.columns:
            raise error(f"{path}: no column {col!r} (columns: {found})")
    groups = [c for c in GROUP_COLUMNS if c in items.columns]
    if not groups:
        raise error(f"{path}: no column {Col.SHOP!r} or {Col.CATEGORY!r} (columns: {found}); an item table "
                    "files items under their groups")
    for col in (Col.ITEM, *groups):
        if _kind(items.schema[col]) not in (_INTEGER, _STRING):
            raise error(f"{path}: column {col!r} has type {items.schema[col]}, expected integers or strings")
    if items.schema[Col.ITEM] != vocab.schema[Col.ITEM]:
        raise error(f"{path}: column 'item_id' has type {items.schema[Col.ITEM]}, but {TOKENS_FILE} has "
                    f"{vocab.schema[Col.ITEM]}; both come from one sessions file")
    if _kind(items.schema[Col.COUNT]) != _INTEGER:
        raise error(f"{path}: column 'count' has type {items.schema[Col.COUNT]}, expected an integer")
    if items[Col.ITEM].null_count():
        raise error(f"{path}: column 'item_id' is null in row {int(items[Col.ITEM].is_null().arg_max())}")
    low = items[Col.COUNT].fill_null(0) < 1
    if low.any():
        row = int(low.arg_max())
        raise error(f"{path}: column 'count' must be at least 1; row {row} has {items[Col.COUNT][row]}")
    repeated = items[Col.ITEM].is_duplicated()
    if repeated.any():
        raise error(f"{path}: item {items[Col.ITEM][int(repeated.arg_max())]!r} has more than one row")
    if rows is not None and rows != items.height:
        raise error(f"{path}: {items.height} rows, but {MANIFEST} field 'item_table.rows' recorded {rows}")


def _check_vocab(path: Path, vocab: pl.DataFrame, error: type[RecsError]) -> None:
    found = ", ".join(vocab.columns)
    for col, kinds in _COLUMNS.items():
        if col not in vocab.columns:
            raise error(f"{path}: no column {col!r} (columns: {found})")
        kind = _kind(vocab.schema[col])
        if kind not in kinds:
            raise error(f"{path}: column {col!r} has type {vocab.schema[col]}, expected {' or '.join(kinds)}")
        if vocab[col].null_count():
            raise error(f"{path}: column {col!r} is null in row {int(vocab[col].is_null().arg_max())}")
    if vocab.height == 0:
        raise error(f"{path}: no tokens")
    # strict=False: a UInt64 id beyond Int64 becomes null, which ne_missing counts as wrong
    wrong = vocab[Col.TOKEN_ID].cast(pl.Int64, strict=False).ne_missing(pl.int_range(vocab.height, eager=True))
    if wrong.any():
        row = int(wrong.arg_max())
        raise error(f"{path}: column 'token_id' must number the rows 0..{vocab.height - 1} in order (a token's "
                    f"vectors are row token_id); row {row} has {vocab[Col.TOKEN_ID][row]}")
    low = vocab[Col.COUNT] < 1
    if low.any():
        row = int(low.arg_max())
        raise error(f"{path}: column 'count' must be at least 1; row {row} has {vocab[Col.COUNT][row]}")
    blank = vocab[Col.INTERACTION] == ""
    if blank.any():
        raise error(f"{path}: column 'interaction' is empty in row {int(blank.arg_max())}")


def _check_vectors(path: Path, vectors: np.ndarray, vocab: pl.DataFrame, error: type[RecsError]) -> None:
    if vectors.dtype != np.float32:
        raise error(f"{path}: dtype {vectors.dtype}, expected float32")
    if vectors.ndim != 2:
        raise error(f"{path}: shape {vectors.shape}, expected a 2-D array (one row per token x dim)")
    rows, dim = vectors.shape
    if dim == 0:
        raise error(f"{path}: shape {vectors.shape}, 0 columns; vectors need at least one dimension")
    if rows != vocab.height:
        raise error(f"{path}: {rows} rows, but {TOKENS_FILE} has {vocab.height} tokens (row = token_id)")
    for lo in range(0, rows, _FINITE_BLOCK):
        finite = np.isfinite(vectors[lo : lo + _FINITE_BLOCK]).all(axis=1)
        if not finite.all():
            row = lo + int(np.argmin(finite))
            raise error(f"{path}: row {row} (token {vocab[Col.TOKEN][row]!r}) has a NaN or inf value; "
                        f"vectors must be finite")


def _kind(dtype: pl.DataType) -> str:
    return _INTEGER if dtype.is_integer() else _STRING if dtype == pl.String else str(dtype)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
