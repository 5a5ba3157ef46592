"""Group-interaction models: the item pipeline on shops or categories (``--entity``, paper sec. 5.3.3).

A listing with no events has no token and so no vector. Its shop (or category) usually has many:
trained with the very same pipeline as items (tokenize -> co-occurrence pairs -> gensim, the same
TrainConfig), ``shop:click`` and ``shop:cart`` tokens give every group a Click-to-Cart and a
Cart-to-Cart vector that a new listing can borrow (``recs.candidates.rollup``). Only the token's
item is replaced: the sessions, their order and their interactions are the item model's, so both
models describe the same behaviour at two grains.

Events whose group is null are left out (a session keeps the rest, in order); a session with no
group at all is simply absent from the group's corpus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from recs.columns import Col
from recs.errors import ConfigError, InputError
from recs.progress import Bar, Progress

GROUPS_DIR = "groups"  # MODEL_DIR/groups/<entity>/ holds each group model's tokens and vectors


def group_dir(directory: str | Path, entity: str) -> Path:
    """Where the files of one group model live inside a model directory."""
    return Path(directory) / GROUPS_DIR / entity


def check_entity_columns(sessions: pl.DataFrame, entities: tuple[str, ...], where: str = "sessions") -> None:
    """Each asked entity is a column of the sessions, holding integer or string ids, with a value somewhere.

    Checked right after the sessions are read, before minutes of item training: a column that is
    not there (a log without shops) is a ConfigError naming it and the columns present.
    """
    for entity in entities:
        if entity not in sessions.columns:
            raise ConfigError(f"--entity {entity}: {where} has no column {entity!r}; columns present: "
                              f"{', '.join(sessions.columns)}")
        dtype = sessions.schema[entity]
        if not (dtype.is_integer() or dtype == pl.String):
            raise ConfigError(f"--entity {entity}: column {entity!r} of {where} has type {dtype}, expected "
                              "integer or string ids")
        if sessions[entity].null_count() == sessions.height:
            raise ConfigError(f"--entity {entity}: column {entity!r} of {where} is null in every row; "
                              "there is nothing to train on")


def entity_sessions(sessions: pl.DataFrame, entity: str) -> pl.DataFrame:
    """The sessions with ``item_id`` replaced by ``entity`` (its dtype kept); rows with no value dropped.

    ``sessions`` are canonical (sorted by session and time), and a filter keeps row order, so each
    session's events stay in the order they happened.
    """
    return (
        sessions.select(Col.SESSION, pl.col(entity).alias(Col.ITEM), Col.INTERACTION, Col.TIMESTAMP)
        .filter(pl.col(Col.ITEM).is_not_null())
    )


class _Labelled:
    """A Progress whose stages are named after the group model they belong to ("shop_id: training")."""

    def __init__(self, inner: Progress, label: str) -> None:
        self.inner, self.label = inner, label

    def stage(self, name: str, total: int | None = None, unit: str = "it") -> AbstractContextManager[Bar]:
        return self.inner.stage(f"{self.label}: {name}", total=total, unit=unit)


Fit = Callable[[pl.DataFrame, Progress], Any]  # sessions -> EmbeddingModel, the item pipeline with its config


def train_groups(sessions: pl.DataFrame, entities: tuple[str, ...], fit: Fit, progress: Progress) -> dict[str, Any]:
    """One model per entity: ``fit`` (the item pipeline, with the item model's resolved config) on
    ``entity_sessions``. Returns ``{entity: EmbeddingModel}`` in the order asked; each model's manifest
    is ``{"entity", "config", "counts", "timings"}``.

    ``fit`` is passed in rather than imported: the pipeline lives in ``recs.embeddings.train``, which
    calls this module, and a group model must be trained exactly as the item model was.
    """
    models: dict[str, Any] = {}
    for entity in entities:
        with _reworded(entity):
            model = fit(entity_sessions(sessions, entity), _Labelled(progress, entity))
        model.manifest = {"entity": entity, **model.manifest}
        models[entity] = model
    return models


@contextmanager
def _reworded(entity: str) -> Iterator[None]:
    """An InputError of the pipeline ("only 1 token(s) occur ...") says it is about the group model."""
    try:
        yield
    except InputError as e:
        raise InputError(f"--entity {entity}: {e}") from None


def groups_manifest(groups: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The item model manifest's ``groups`` field: what each group model was trained on and how long it took."""
    return {entity: {"counts": m.manifest.get("counts", {}), "timings": m.manifest.get("timings", {})}
            for entity, m in groups.items()}
