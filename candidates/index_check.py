"""The one validator of an index directory, applied by its readers (``load_index_manifest``,
``load_candidates``).

An index manifest names the files a reader opens, so a hand-edited or foreign one must not turn into
a KeyError, a TypeError in the middle of scoring, or a read outside the directory. Each rule names the
file and the field.

Rules:

* ``manifest.json``: ``config`` an object with ``k`` an integer >= 1 and ``score`` a name;
  ``candidate_sets`` a non-empty object of name -> object with ``source`` and ``target``; names,
  sources and targets are letters, digits, ``_`` and ``-`` (they make file names), a set's name is
  ``<source>_to_<target>``; a set's ``parts``, when present, is an integer 1 .. 100,000; its files
  (``candidate_files``: ``candidates/<name>.parquet``, or with ``parts`` n the n files
  ``candidates/<name>/part-00000.parquet`` .. ``part-<n-1>.parquet``) resolve inside the directory
  (no symlink out) and, when the manifest has a ``files`` record, are listed in it; ``indexes``, when
  present, an object keyed by such names (empty for a method without a faiss index);
  ``training_catalogue_items`` and ``catalogue_items`` null or an integer >= 0; ``model`` (an index of
  our trained model) and ``sessions`` (a method fitted on training sessions), when present, objects
  whose ``path`` is a string; ``method``, when present, an object whose ``name`` is a method name and
  ``config`` an object.
* ``candidates/<name>.parquet``, and each part of a partitioned set: columns item_id and
  candidate_item_id, both integers or both strings, rank an integer, score a float; the parts of one
  set have one schema, and all of them exist (a lazy reader would otherwise fail in mid-scan).

Two layouts of a candidate set, one table to every reader (``recs.candidates.build.load_candidates``):
one file, as the single-machine search writes it, or a directory of parts, as ``--engine spark``
writes it (one part per query partition, written by the executors in parallel). A partitioned set
says so with ``parts`` in its manifest entry, so a reader opens exactly the files the writer
recorded, never whatever else a directory listing would show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from recs.artifacts import MANIFEST, json_type
from recs.columns import Col
from recs.config import MAX_QUERY_PARTITIONS
from recs.errors import ArtifactError
from recs.names import NAME_RULE, inside, is_safe_name

CANDIDATES_DIR = "candidates"
MAX_PARTS = MAX_QUERY_PARTITIONS  # one part per query partition of the Spark search


def set_name(source: str, target: str) -> str:
    """The name of the candidate set ``source`` -> ``target`` (``click_to_cart``), also its file's stem."""
    return f"{source}_to_{target}"


def candidates_file(name: str) -> str:
    """A candidate set's file, relative to the index directory."""
    return f"{CANDIDATES_DIR}/{name}.parquet"


def part_file(name: str, part: int) -> str:
    """Part ``part`` of a partitioned candidate set, relative to the index directory."""
    return f"{CANDIDATES_DIR}/{name}/part-{part:05d}.parquet"


def candidate_files(name: str, info: dict[str, Any]) -> list[str]:
    """The files of candidate set ``name`` (relative to the index directory), in row order: its one
    file, or the ``info["parts"]`` parts of a partitioned set (``info`` is its manifest entry)."""
    parts = info.get("parts")
    return [candidates_file(name)] if parts is None else [part_file(name, i) for i in range(parts)]


def check_index_manifest(index_dir: str | Path, manifest: dict[str, Any]) -> None:
    """Raise an ArtifactError naming the field of the first rule the manifest breaks (see the module doc)."""
    index_dir = Path(index_dir)
    where = index_dir / MANIFEST

    def fail(field: str, problem: str) -> ArtifactError:
        return ArtifactError(f"{where}: field {field!r} {problem}")

    config = manifest.get("config")
    if not isinstance(config, dict):
        raise fail("config", "is missing" if config is None else f"must be an object, got {json_type(config)}")
    k = config.get("k")
    if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
        raise fail("config.k", f"must be an integer >= 1, got {k!r}")
    if not is_safe_name(config.get("score")):
        raise fail("config.score", f"must be a score name, got {config.get('score')!r}")
    sets = manifest.get("candidate_sets")
    if sets is None:
        raise fail("candidate_sets", "is missing")
    if not isinstance(sets, dict):
        raise fail("candidate_sets", f"must be an object of name -> {{source, target, ...}}, got {json_type(sets)}")
    if not sets:
        raise fail("candidate_sets", "names no candidate set")
    files = manifest.get("files")
    for name, info in sets.items():
        if not is_safe_name(name):
            raise fail("candidate_sets", f"names a set {name!r}; set names are {NAME_RULE}")
        if not isinstance(info, dict):
            raise fail(f"candidate_sets.{name}", f"must be an object, got {json_type(info)}")
        for key in ("source", "target"):
            value = info.get(key)
            if key not in info:
                raise fail(f"candidate_sets.{name}.{key}", "is missing")
            if not is_safe_name(value):
                raise fail(f"candidate_sets.{name}.{key}", f"is {value!r}; interaction names are {NAME_RULE}")
        if name != set_name(info["source"], info["target"]):
            raise fail(f"candidate_sets.{name}", f"has source {info['source']!r} and target {info['target']!r}; "
                       f"its name must be {set_name(info['source'], info['target'])}")
        parts = info.get("parts")
        if parts is not None and not (isinstance(parts, int) and not isinstance(parts, bool)
                                      and 1 <= parts <= MAX_PARTS):
            raise fail(f"candidate_sets.{name}.parts", f"must be an integer 1 .. {MAX_PARTS:,}, got {parts!r}")
        for rel in candidate_files(name, info):
            inside(index_dir, rel, f"candidate set {name!r}")
            if isinstance(files, dict) and rel not in files:
                raise fail("files", f"does not list {rel}, a file of candidate set {name!r}")
    indexes = manifest.get("indexes", {})
    if not isinstance(indexes, dict) or not all(is_safe_name(t) for t in indexes):
        raise fail("indexes", f"must be an object keyed by interaction names ({NAME_RULE}), got {indexes!r}")
    for key in ("training_catalogue_items", "catalogue_items"):
        items = manifest.get(key)
        if items is not None and not (isinstance(items, int) and not isinstance(items, bool) and items >= 0):
            raise fail(key, f"must be null or an integer >= 0, got {items!r}")
    for source_field in ("model", "sessions"):
        source = manifest.get(source_field, {})
        if not isinstance(source, dict) or not isinstance(source.get("path", ""), str):
            raise fail(source_field, f"must be an object with a string 'path', got {source!r}")
    method = manifest.get("method", {"name": "ours", "config": {}})  # indexes written before it was recorded
    if not (isinstance(method, dict) and is_safe_name(method.get("name")) and isinstance(method.get("config"), dict)):
        raise fail("method", f"must be an object with a method 'name' and a 'config' object, got {method!r}")


def check_candidates_schema(path: Path, schema: pl.Schema) -> None:
    """Raise an ArtifactError naming the column if a candidate table cannot be scored as it is."""
    found = ", ".join(schema.names())
    for col in (Col.ITEM, Col.CANDIDATE, Col.RANK, Col.SCORE):
        if col not in schema:
            raise ArtifactError(f"{path}: no column {col!r} (columns: {found})")
    ids = {col: schema[col] for col in (Col.ITEM, Col.CANDIDATE)}
    for col, dtype in ids.items():
        if not (dtype.is_integer() or dtype == pl.String):
            raise ArtifactError(f"{path}: column {col!r} has type {dtype}, expected integer or string ids")
    if ids[Col.ITEM].is_integer() != ids[Col.CANDIDATE].is_integer():
        raise ArtifactError(f"{path}: column {Col.ITEM!r} has type {ids[Col.ITEM]} and {Col.CANDIDATE!r} "
                            f"{ids[Col.CANDIDATE]}; both must be integer ids or both string ids")
    if not schema[Col.RANK].is_integer():
        raise ArtifactError(f"{path}: column 'rank' has type {schema[Col.RANK]}, expected an integer")
    if not schema[Col.SCORE].is_float():
        raise ArtifactError(f"{path}: column 'score' has type {schema[Col.SCORE]}, expected a float")
