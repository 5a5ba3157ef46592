"""The Python API a notebook uses: ``recs.train``, ``recs.build_index``, ``recs.open_index``,
``recs.Recommender`` and ``recs.evaluate``, re-exported by ``recs/__init__.py``.

Each is a thin layer over the library function its CLI command calls, so a number got here is the
number the command prints: ``recs.train`` is ``recs.embeddings.train.train`` (``recs
train-embeddings``), ``recs.build_index`` is ``recs.candidates.build.build_index`` (``recs
build-index``), ``recs.Recommender`` is ``recs.recommend.recommender.Recommender`` (``recs
recommend``), ``recs.evaluate`` is ``recs.eval.report.evaluate_index`` (``recs eval-hitrate``).
What this module adds is what a notebook needs and a command does not: frames as well as paths in, one
object per artifact with lookups on it (``model["42:cart"]``, ``model.similar(...)``), settings as
keyword arguments named after the config fields (``dim=64``), typed results, and progress through
Python ``logging`` (``recs.progress.LoggingProgress``; pass ``progress=`` for another ``Progress``).

Heavy libraries (gensim, faiss, scipy) are imported by the functions that use them, not here, so that
``import recs`` and this module stay cheap.

An index built here is written by the same writer as ``recs build-index``, into a temporary directory
that lives as long as the ``Index`` object (a model not yet saved is saved beside it first, so the
index's manifest records a temporary model path and the model's fingerprint); ``Index.save(path)``
copies it to a normal INDEX_DIR, atomically.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import polars as pl

from recs.columns import Col, Interaction
from recs.config import EvalConfig, IndexConfig, RecommendConfig, TrainConfig
from recs.errors import ConfigError, NotInModelError
from recs.progress import LoggingProgress, Progress
from recs.sessions.times import DEFAULT_TIME_UNIT

if TYPE_CHECKING:
    from recs.embeddings.model import EmbeddingModel
    from recs.recommend.recommender import Event, Recommendations

Sessions = pl.DataFrame | str | Path  # a canonical sessions frame, or a file / directory / glob of them
_C = TypeVar("_C")


def _configured(cfg: _C, fields: dict[str, Any], what: str) -> _C:
    """``cfg`` with ``fields`` (keyword arguments of a facade call) set, and None meaning "the default".
    An unknown name is a ConfigError listing the known ones, not dataclasses' TypeError."""
    given = {k: v for k, v in fields.items() if v is not None}
    known = {f.name for f in dataclasses.fields(cfg)}  # type: ignore[arg-type]
    unknown = sorted(set(given) - known)
    if unknown:
        raise ConfigError(f"{what} has no setting {', '.join(map(repr, unknown))}; its settings are "
                          f"{', '.join(sorted(known))}")
    return dataclasses.replace(cfg, **given)  # type: ignore[type-var]


def _sessions_frame(sessions: Sessions, time_unit: str, where: str) -> pl.DataFrame:
    """Validated canonical sessions from a frame or a path, as every command reads them."""
    from recs.sessions.io import read_sessions, validate_sessions

    if isinstance(sessions, pl.DataFrame):
        return validate_sessions(sessions, where=where, time_unit=time_unit)
    if isinstance(sessions, str | Path):
        return read_sessions(sessions, time_unit=time_unit)
    raise ConfigError(f"{where}: a polars DataFrame of sessions or a path to them, not {type(sessions).__name__}")


# ---- the model -------------------------------------------------------------------------------------


class Model:
    """A trained model: one vector per (item, interaction) token, looked up as ``model["42:cart"]``.

    Wraps ``recs.embeddings.model.EmbeddingModel`` (``.embedding``), the object every library function
    takes. ``directory`` is where it was saved or loaded from (None until then)."""

    def __init__(self, embedding: EmbeddingModel, directory: str | Path | None = None) -> None:
        self.embedding = embedding
        self.directory = Path(directory) if directory is not None else None
        self._rows: dict[str, int] | None = None

    @classmethod
    def load(cls, directory: str | Path) -> Model:
        """Read a MODEL_DIR (``recs train-embeddings --out``), checked as every reader checks it."""
        from recs.embeddings.model import EmbeddingModel

        return cls(EmbeddingModel.load(directory), directory)

    def save(self, directory: str | Path) -> Path:
        """Write the model as a MODEL_DIR (atomically; ``recs check`` verifies it); returns its path."""
        self.embedding.save(directory)
        self.directory = Path(directory)
        return self.directory

    @property
    def interactions(self) -> list[str]:
        return self.embedding.interactions

    @property
    def manifest(self) -> dict[str, Any]:
        """The model's manifest: the resolved training config, counts, timings."""
        return self.embedding.manifest

    @property
    def vocab(self) -> pl.DataFrame:
        """token_id, token, item_id, interaction, count: one row per vector."""
        return self.embedding.vocab

    def _token_rows(self) -> dict[str, int]:
        if self._rows is None:  # built on first lookup: a dict of a million tokens is not free
            vocab = self.embedding.vocab
            self._rows = dict(zip(vocab[Col.TOKEN].to_list(), vocab[Col.TOKEN_ID].to_list(), strict=True))
        return self._rows

    def __len__(self) -> int:
        return self.embedding.vocab.height

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and token in self._token_rows()

    def __iter__(self) -> Iterator[str]:
        return iter(self.embedding.vocab[Col.TOKEN].to_list())

    def __getitem__(self, token: str) -> np.ndarray:
        """The input vector of a token ``"<item>:<interaction>"`` (a copy, float32), as gensim's
        ``KeyedVectors`` answers ``wv["..."]``; a token not in the model is a KeyError naming it."""
        row = self._token_rows().get(token) if isinstance(token, str) else None
        if row is None:
            raise NotInModelError(f"no token {token!r} in the model (tokens are '<item>:<interaction>'; "
                                  f"interactions: {', '.join(self.interactions)})")
        return np.array(self.embedding.vectors_in[row], dtype=np.float32)

    def similar(self, item: Any, source: str = Interaction.CLICK, target: str = Interaction.CART, k: int = 10,
                **index_fields: Any) -> pl.DataFrame:
        """The ``k`` best ``target`` candidates of ``item``'s ``source`` token: rank, candidate_item_id,
        score, best first. The rows ``recs build-index`` writes for that item (the same scoring, ``score``
        ``prob`` by default; any IndexConfig field as a keyword, e.g. ``score="cosine"``), searched
        exactly for this one query instead of through the HNSW graph.

        An item with no token at all is a KeyError naming it; with ``backoff`` (the default) an item
        without a ``source`` token is asked through its other tokens, as build-index asks it."""
        from recs.candidates.embedding import EmbeddingCandidates
        from recs.candidates.registry import OURS

        cfg = _configured(IndexConfig(), {**index_fields, "k": k}, "IndexConfig")
        dtype = self.embedding.vocab.schema[Col.ITEM]
        asked = pl.Series(Col.ITEM, [item]).cast(dtype, strict=False)  # "42" finds item 42, as everywhere
        if asked.null_count() or not self.embedding.vocab[Col.ITEM].is_in(asked.implode()).any():
            raise NotInModelError(f"no item {item!r} in the model (no token {item}:<interaction>)")
        gen = EmbeddingCandidates(index_config=cfg, model=self.embedding, name=OURS)
        rows = gen.candidates_of(source, target, k, asked)
        return rows.sort(Col.RANK).select(Col.RANK, Col.CANDIDATE, Col.SCORE)

    def __repr__(self) -> str:
        where = f", {self.directory}" if self.directory is not None else ""
        return f"<recs.Model {len(self):,} tokens, interactions {', '.join(self.interactions)}{where}>"


def train(sessions: Sessions, *, config: TrainConfig | None = None, progress: Progress | None = None,
          time_unit: str = DEFAULT_TIME_UNIT, **fields: Any) -> Model:
    """Train our model on sessions (a frame or a path); any TrainConfig field as a keyword
    (``recs.train(frame, dim=64, seed=0, workers=1)``: with one worker the vectors are bit-for-bit
    reproducible). ``recs train-embeddings`` without writing a directory: ``Model.save`` writes one.

    ``time_unit``: the unit of integer timestamps (as ``--time-unit``)."""
    from recs.embeddings.train import train as train_model

    cfg = _configured(config or TrainConfig(), fields, "TrainConfig")
    frame = _sessions_frame(sessions, time_unit, "sessions")
    return Model(train_model(frame, cfg, progress if progress is not None else LoggingProgress()))


# ---- the index -------------------------------------------------------------------------------------


class Index:
    """An INDEX_DIR: candidate sets per (source, target) interaction, as ``recs build-index`` writes them.

    From ``recs.build_index`` (a temporary directory, removed when the object goes) or
    ``recs.open_index`` (an existing directory, never removed)."""

    def __init__(self, directory: str | Path, _owned: tempfile.TemporaryDirectory[str] | None = None) -> None:
        from recs.candidates.build import load_index_manifest

        self.directory = Path(directory)
        self.manifest: dict[str, Any] = load_index_manifest(self.directory)  # checked before any field is used
        self._owned = _owned  # keeps a built index's temporary directory alive as long as this object

    @property
    def set_names(self) -> list[str]:
        """The candidate sets, e.g. ``["click_to_cart", "cart_to_cart"]``."""
        return list(self.manifest["candidate_sets"])

    @property
    def method(self) -> str:
        return str(self.manifest.get("method", {}).get("name", "ours"))

    def candidates(self, name: str) -> pl.DataFrame:
        """One candidate set's table: item_id, candidate_item_id, rank, score."""
        from recs.candidates.build import load_candidates

        return load_candidates(self.directory, name, manifest=self.manifest)  # type: ignore[return-value]

    def save(self, path: str | Path) -> Path:
        """Copy the index to ``path`` as a normal INDEX_DIR (atomically, as build-index writes one: an
        existing ``path`` is replaced only if it is an index or empty); returns ``path``."""
        from recs.artifacts import atomic_dir
        from recs.candidates.build import INDEX_FORMAT

        path = Path(path)
        if path.resolve() == self.directory.resolve():
            return path
        with atomic_dir(path, INDEX_FORMAT) as tmp:
            shutil.copytree(self.directory, tmp, dirs_exist_ok=True)
        return path

    def __repr__(self) -> str:
        return f"<recs.Index {self.method}: {', '.join(self.set_names)} at {self.directory}>"


def build_index(model: Model | str | Path, *, config: IndexConfig | None = None, progress: Progress | None = None,
                catalog: str | Path | None = None, **fields: Any) -> Index:
    """Our model's candidate sets (``recs build-index --model``); any IndexConfig field as a keyword
    (``pairs=(("click", "cart"),)``, ``k=100``). ``model``: a ``Model`` or a MODEL_DIR. The index lives
    in a temporary directory until ``Index.save(path)``."""
    from recs.candidates.build import build_index as build

    cfg = _configured(config or IndexConfig(), fields, "IndexConfig")
    owned = tempfile.TemporaryDirectory(prefix="recs-index-")
    try:
        if isinstance(model, Model):
            model_dir = model.directory
            if model_dir is None:  # build_index reads a MODEL_DIR: a model trained here is saved beside the index
                model_dir = Path(owned.name) / "model"
                model.embedding.save(model_dir)
        elif isinstance(model, str | Path):
            model_dir = Path(model)
        else:
            raise ConfigError(f"build_index takes a recs.Model or a model directory, not {type(model).__name__}")
        out = Path(owned.name) / "index"
        build(model_dir, out, cfg, progress if progress is not None else LoggingProgress(), None, catalog)
        return Index(out, owned)
    except BaseException:
        owned.cleanup()
        raise


def open_index(path: str | Path) -> Index:
    """An existing INDEX_DIR (any method's), its manifest checked."""
    return Index(path)


# ---- per-user lists ---------------------------------------------------------------------------------


class Recommender:
    """Per-user lists from an index (``recs recommend``): ``Recommender(index).recommend(history,
    module="click")``. Wraps ``recs.recommend.recommender.Recommender`` (``.engine``), which loads
    the index's candidate sets once into compact arrays.

    ``index``: an ``Index`` or an INDEX_DIR path; anything else is refused here, not later. Settings:
    a RecommendConfig, and/or any of its fields as keywords (``k=100``, ``module="both"``)."""

    def __init__(self, index: Index | str | Path, config: RecommendConfig | None = None, **fields: Any) -> None:
        from recs.recommend.recommender import Recommender as Engine

        if isinstance(index, Index):
            directory = index.directory
        elif isinstance(index, str | Path):
            directory = Path(index)
        else:
            raise ConfigError(f"Recommender takes a recs.Index (recs.build_index, recs.open_index) or an index "
                              f"directory, not {type(index).__name__}")
        self.index = index  # a built index's temporary directory lives as long as its recommender
        self.engine = Engine.open(directory, _configured(config or RecommendConfig(), fields, "RecommendConfig"))

    @property
    def set_names(self) -> tuple[str, ...]:
        return self.engine.set_names

    def recommend(self, history: Sequence[Event] | pl.DataFrame, at: Any = None, **overrides: Any
                  ) -> Recommendations:
        """One history's list: (item, interaction, time) events or a frame of item_id, interaction,
        timestamp. ``.to_frame()`` of the result: rank, candidate_item_id, score and the trigger and set
        each row came from. Overrides: any RecommendConfig field (module, k, merge, drop_bought, ...)."""
        _configured(self.engine.config, overrides, "RecommendConfig")  # an unknown name, said as such
        return self.engine.recommend(history, at, **overrides)

    def recommend_batch(self, events: pl.DataFrame, key: str = Col.USER, at: Any = None, **overrides: Any
                        ) -> pl.DataFrame:
        """Lists of every ``key`` (user_id or session_id) of a sessions frame, in one frame."""
        _configured(self.engine.config, overrides, "RecommendConfig")
        return self.engine.recommend_batch(events, key, at, **overrides)

    def candidates(self, item: Any, set_name: str = "click_to_cart", k: int = 200) -> pl.DataFrame:
        """One item's list in one set: rank, candidate_item_id, score."""
        return self.engine.candidates(item, set_name, k)


# ---- evaluation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetResult:
    """One candidate set's purchase-intent hit rate (``recs eval-hitrate``'s column); ``row`` holds every
    number of the command's JSON row (re-finding and discovery splits, coverage, ...)."""

    name: str
    targets: int
    targets_with_trigger: int
    hits: int
    hit_rate: float  # NaN without a target with a trigger
    hit_rate_low: float | None  # the bootstrap interval; None with bootstrap=0
    hit_rate_high: float | None
    coverage: float
    mean_list_length: float
    row: dict[str, Any]


@dataclass(frozen=True)
class EvalResult:
    """What ``recs eval-hitrate --json`` writes, typed: one ``SetResult`` per candidate set."""

    sets: dict[str, SetResult]
    k: int
    score: str | None  # the score the lists were ranked by; None for a counts-based method
    method: str
    config: dict[str, Any]
    notes: list[str]

    def __getitem__(self, name: str) -> SetResult:
        return self.sets[name]

    @property
    def hit_rates(self) -> dict[str, float]:
        return {name: s.hit_rate for name, s in self.sets.items()}

    def to_frame(self) -> pl.DataFrame:
        """One row per candidate set, every number of the command's JSON."""
        return pl.DataFrame([s.row for s in self.sets.values()])


def _set_result(row: dict[str, Any]) -> SetResult:
    return SetResult(
        name=row["candidate_set"], targets=row["targets"], targets_with_trigger=row["targets_with_trigger"],
        hits=row["hits"], hit_rate=row["hit_rate"], hit_rate_low=row["hit_rate_low"],
        hit_rate_high=row["hit_rate_high"], coverage=row["coverage"], mean_list_length=row["mean_list_length"],
        row=row,
    )


def evaluate(index: Index | str | Path, test_sessions: Sessions, *, config: EvalConfig | None = None,
             sets: Sequence[str] | None = None, train_sessions: Sessions | None = None,
             any_trigger: bool = False, time_unit: str = DEFAULT_TIME_UNIT, seed: int | None = None,
             **fields: Any) -> EvalResult:
    """Score an index's candidate sets on test sessions (``recs eval-hitrate``); any EvalConfig field as
    a keyword (``triggers=4``, ``bootstrap=0`` for no intervals). ``train_sessions``: also the cold-start
    split (``--train``). Frames are written to a temporary parquet file and read back as the command
    reads its files, so they are checked and scored exactly as a file would be."""
    from recs.eval.intervals import DEFAULT_SEED
    from recs.eval.report import evaluate_index

    cfg = _configured(config or EvalConfig(), fields, "EvalConfig")
    directory = index.directory if isinstance(index, Index) else Path(index)
    with tempfile.TemporaryDirectory(prefix="recs-eval-") as tmp:

        def as_path(sessions: Sessions, name: str) -> str | Path:
            if isinstance(sessions, pl.DataFrame):
                path = Path(tmp) / f"{name}.parquet"
                sessions.write_parquet(path)
                return path
            return sessions

        test_path = as_path(test_sessions, "test")
        train_path = as_path(train_sessions, "train") if train_sessions is not None else None
        report = evaluate_index(directory, test_path, cfg, list(sets) if sets else None, time_unit=time_unit,
                                any_trigger=any_trigger, train_path=train_path,
                                seed=DEFAULT_SEED if seed is None else seed)
    return EvalResult(sets={r["candidate_set"]: _set_result(r) for r in report["results"]}, k=report["k"],
                      score=report["score"], method=report["method"], config=report["config"],
                      notes=list(report["notes"]))
