"""``recs build-index``: candidate sets of one method, written atomically into INDEX_DIR.

Two ways in, one writer (``write_index``): ``build_index`` takes our trained model (MODEL_DIR);
``build_method_index`` fits any method of ``recs.candidates.registry`` on a training sessions file.
Either way the directory is the same format, so ``recs eval-hitrate`` (and every later reader)
treats a baseline exactly as it treats ours.

INDEX_DIR layout::

    manifest.json                            format, config, engine, method (name, settings), what it was
                                             built from (model or sessions, with fingerprint), counts, timings
    indexes/<target>.<score>.faiss           our model only: faiss.write_index files (faiss's own format,
                                             no pickle); rows as in recs.candidates.scoring.target_side.
                                             The Spark search ships them to its executors; kept for a
                                             later command that searches past the written tables
    indexes/<target>.<score>.shard-<i>.faiss with --engine spark --shards N instead: one per contiguous
                                             range of those rows (manifest: indexes.<target>.shards)
    candidates/<source>_to_<target>.parquet  item_id, candidate_item_id, rank, score
    candidates/<source>_to_<target>/part-00000.parquet ...
                                             the same table in parts, as ``--engine spark`` writes it
                                             (one per query partition, in row order); the set's
                                             manifest entry then says ``parts``: n

Two layouts of a candidate set: one file (the single-machine search), or a directory of parts (the
Spark search, whose executors each write the part of the queries they searched; a directory keeps
the parts together and apart from other sets, and counting them in the manifest means a reader opens
exactly what the writer recorded). Every reader goes through ``load_candidates``, which scans either
as one table, so ``eval-hitrate`` and ``recommend`` do not know which engine built the index.
``manifest.json``'s ``files`` record lists every part; ``recs check`` verifies them as any file.

Format versions: ``INDEX_VERSION`` 2 is the one that may hold partitioned sets; an index with only
single-file sets is stamped 1, as before, so an older recs still reads what the default engine
writes, and refuses a partitioned index with its "format version 2, this recs reads version 1"
message rather than a misleading "missing file". This recs reads both (``INDEX_VERSIONS``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import faiss
import polars as pl

from recs.artifacts import (
    atomic_dir,
    fingerprint_json,
    preflight_artifact,
    read_manifest,
    record_files,
    unreadable,
    write_manifest,
)
from recs.candidates.base import CandidateGenerator, describe, write_blocks
from recs.candidates.baselines import SameGroupCandidates
from recs.candidates.catalog import catalog_for, read_catalog
from recs.candidates.embedding import EmbeddingCandidates
from recs.candidates.index_check import (
    candidate_files,
    candidates_file,
    check_candidates_schema,
    check_index_manifest,
    set_name,
)
from recs.candidates.registry import OURS, MethodConfig, method_spec
from recs.candidates.rollup import RollUp
from recs.checks import check_interactions
from recs.columns import Col
from recs.config import (
    ENGINES,
    ROLLUP_AUTO,
    ROLLUP_MEAN,
    ROLLUP_OFF,
    ROLLUP_TRAINED,
    IndexConfig,
    IndexEngineConfig,
    config_dict,
)
from recs.embeddings.model import EmbeddingModel
from recs.errors import ArtifactError, ConfigError, OutputError, RecsError
from recs.names import NAME_RULE, is_safe_name
from recs.overlap import file_record
from recs.progress import NullProgress, Progress
from recs.sessions.files import fingerprint_sessions
from recs.sessions.io import read_sessions
from recs.sessions.times import DEFAULT_TIME_UNIT
from recs.spark.uri import is_uri

INDEX_FORMAT = "recs.index"
INDEX_VERSION = 2  # the newest: partitioned candidate sets (``parts``); see the module docstring
SINGLE_FILE_VERSION = 1  # stamped on an index whose sets are all single files: older recs read it
INDEX_VERSIONS = (SINGLE_FILE_VERSION, INDEX_VERSION)
ENGINE_LOCAL = ENGINES[0]  # this process searches (faiss over OpenMP threads); the default
# hashes a written faiss index while the search runs (write_faiss_indexes); hashlib releases the GIL
_HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recs-hash")


class SetWriter(Protocol):
    """A search engine that writes our model's indexes and candidate sets itself, in parts
    (``recs.spark.search.SparkSearch``); ``write_index`` uses it instead of its own search, inside
    ``with writer:`` (entering starts the engine; leaving drops what it staged)."""

    def __enter__(self) -> SetWriter: ...

    def __exit__(self, *exc: object) -> None: ...

    def describe(self) -> dict[str, Any]:
        """The manifest's ``engine`` field: which engine, and its resolved settings."""

    def write_indexes(self, tmp: Path, gen: EmbeddingCandidates, pairs: Iterable[tuple[str, str]], k: int,
                      timings: dict[str, float]) -> dict[str, Any]:
        """Build and write the faiss index(es) of every target into ``tmp/indexes``; the manifest's
        ``indexes`` field."""

    def write_set(self, tmp: Path, gen: EmbeddingCandidates, source: str, target: str, k: int) -> int:
        """Write the candidate set ``source`` -> ``target`` as ``index_check.part_file`` parts into
        ``tmp``; return how many parts."""


def candidates_path(index_dir: str | Path, source: str, target: str) -> Path:
    return Path(index_dir) / candidates_file(set_name(source, target))


def _check_pair_names(cfg: IndexConfig) -> None:
    """Interaction names become file names (``indexes/<target>...``, ``candidates/<source>_to_<target>...``):
    ``../x`` would write outside the index, so names are refused before anything is read."""
    for source, target in cfg.pairs:
        for name in (source, target):
            if not is_safe_name(name):
                raise ConfigError(f"--pairs {source}:{target}: interaction {name!r} cannot be used; "
                                  f"interaction names in --pairs are {NAME_RULE}")


def _check_pairs(present: Iterable[str], cfg: IndexConfig, where: str) -> None:
    """Every interaction of ``--pairs`` is in ``present`` (the model's, or the training sessions'),
    checked before a method is fitted or the index directory started; ``where`` names the source."""
    present = set(present)
    for source, target in cfg.pairs:
        check_interactions(f"--pairs {source}:{target}", (source, target), present, where, canonical=False)


def _checked(cfg: IndexConfig | None) -> IndexConfig:
    cfg = cfg or IndexConfig()
    cfg.validate()
    _check_pair_names(cfg)
    return cfg


def _engine(engine: IndexEngineConfig | None, method: str, progress: Progress, out: str | Path,
            work_dir: str | None = None) -> SetWriter | None:
    """The set writer of ``engine`` (None: this process searches, as it always has), checked before
    anything is read. Only our model's HNSW search runs on Spark; other methods count on one machine.
    ``work_dir``: ``--work-dir``, where Spark's executors write the parts (``recs.spark.work``)."""
    engine = engine or IndexEngineConfig()
    engine.validate()
    if work_dir is not None and engine.engine == ENGINE_LOCAL:
        raise ConfigError(f"--work-dir {work_dir} is for --engine spark (where Spark's executors write)")
    if engine.engine == ENGINE_LOCAL:
        return None
    if method != OURS:
        raise ConfigError(f"--engine {engine.engine} runs the HNSW search of --method {OURS}; "
                          f"--method {method} is built on one machine (leave --engine at {ENGINE_LOCAL})")
    from recs.spark.search import SparkSearch  # pyspark is an optional extra, imported only when asked for

    return SparkSearch(engine, progress, out, work_dir=work_dir)


def build_index(
    model_dir: str | Path, out: str | Path, cfg: IndexConfig | None = None, progress: Progress | None = None,
    engine: IndexEngineConfig | None = None, catalog: str | Path | None = None, work_dir: str | None = None,
) -> dict[str, Any]:
    """Build our model's indexes and candidate sets for ``cfg.pairs``; return the index manifest.
    ``engine``: where the search runs (this process, or Spark: ``recs.spark.search``). ``catalog``: a
    catalogue file (``recs.candidates.catalog``) whose items without a vector are rolled up to their
    shop or category (``cfg.rollup``); without one, the training sessions' shop_id / category serve.
    ``work_dir``: with Spark, a URI every node reads and writes, where the executors write the parts
    when ``out`` is not on shared storage (``recs.spark.work``)."""
    if is_uri(out):  # an object store or HDFS: Spark's executors write it, its manifest commits it
        if catalog is not None:
            raise ConfigError(f"--catalog {catalog}: an index at a URI is built without a catalogue roll-up")
        if work_dir is not None:
            raise ConfigError(f"--work-dir {work_dir} with --out {out}: the executors write the index at the URI "
                              "itself; drop --work-dir")
        from recs.spark.store import build_index_at_uri

        return build_index_at_uri(model_dir, str(out), cfg, progress, engine)
    cfg = _checked(cfg)
    progress = progress or NullProgress()
    writer = _engine(engine, OURS, progress, out, work_dir)
    if catalog is not None and cfg.rollup == ROLLUP_OFF:
        raise ConfigError(f"--catalog {catalog} with --rollup off: the catalogue would not be used; drop one of them")
    if catalog is not None and writer is not None:
        raise ConfigError(f"--catalog {catalog}: the {engine.engine if engine else ''} engine does not roll items up; "
                          f"build a catalogue index with --engine {ENGINE_LOCAL}")
    inputs = [("--model", model_dir)] + ([("--catalog", catalog)] if catalog is not None else [])
    preflight_artifact(out, INDEX_FORMAT, inputs=inputs)
    model = EmbeddingModel.load(model_dir)
    gen = EmbeddingCandidates(index_config=cfg, model=model, progress=progress, name=OURS)
    _check_pairs(gen.interactions(), cfg, "the model")
    built_from: dict[str, Any] = {"model": {"path": str(model_dir), "fingerprint": fingerprint_json(model.manifest)}}
    rolled = _rollup(model, cfg, catalog, on_spark=writer is not None)
    trained = model.manifest.get("counts", {}).get("items")
    listable = trained
    if rolled is not None:
        gen.rollup, built_from["catalog"] = rolled
        known = model.items[Col.ITEM] if model.items is not None else model.vocab[Col.ITEM]
        listable = _listable_items(trained, known, rolled[0].catalog[Col.ITEM])
    return write_index(out, gen, cfg, built_from, trained, writer=writer, catalogue_items=listable)


def _listable_items(trained: int | None, known: pl.Series, listed: pl.Series) -> int | None:
    """How many items an index can list: the ``trained`` training items (``known``: their ids, as far
    as they are recorded) plus the catalogue's ``listed`` items that are not among them.

    The denominator of catalogue reach. A roll-up or a same-shop catalogue makes never-seen listings
    candidates, so counting them against the training items alone gave "shares" of 1.5 and more."""
    if trained is None:
        return None
    known = known.unique()
    if listed.dtype != known.dtype:  # ids of the other kind are compared as text, as everywhere in recs
        known, listed = known.cast(pl.String), listed.cast(pl.String)
    return trained + int((~listed.unique().is_in(known.implode())).sum())


def training_rollup(model: EmbeddingModel, cfg: IndexConfig) -> RollUp | None:
    """The roll-up ``build_index`` gives ``model`` without a catalogue, or None when it gives none. ``recs
    tune`` scores a trial's in-memory model with it, so that a setting such as ``min_count 2`` (whose
    dropped items build-index rolls up to their shop or category) is judged by the lists build-index writes."""
    rolled = _rollup(model, cfg, None, on_spark=False)
    return None if rolled is None else rolled[0]


def _all_have_tokens(model: EmbeddingModel, table: pl.DataFrame) -> bool:
    return table.join(model.vocab.select(Col.ITEM).unique(), on=Col.ITEM, how="anti").height == 0


def _rollup(model: EmbeddingModel, cfg: IndexConfig, catalog: str | Path | None,
            on_spark: bool) -> tuple[RollUp, dict[str, Any]] | None:
    """The roll-up of ``cfg.rollup`` and the manifest's ``catalog`` field, or None when there is
    nothing to roll up (no catalogue, and the training sessions had no shop_id / category or every
    item of theirs has a token, as with ``--min-count 1``) or the roll-up is off. So an index of a
    model without cold items is what it was before roll-up existed, column for column. The Spark
    search does not roll up (a catalogue is refused before this; the default ``mean`` is then not
    applied, and a model with items below ``--min-count`` gets no rows for them, as before)."""
    if cfg.rollup == ROLLUP_OFF:
        return None
    given = read_catalog(catalog) if catalog is not None else None
    table = catalog_for(model.items, given, model.vocab.schema[Col.ITEM], str(catalog or "the model's items"))
    if given is None and table is not None and _all_have_tokens(model, table):
        table = None  # the sessions' items all have a vector (--min-count cut none): nothing to roll up
    if table is None or on_spark:
        if cfg.rollup != ROLLUP_AUTO:
            why = "the Spark search does not roll up" if on_spark else (
                "no --catalog, and every item of the training sessions has a vector" if model.items is not None
                else "no --catalog, and the training sessions had no shop_id or category")
            raise ConfigError(f"--rollup {cfg.rollup}: {why}")
        return None
    representation = cfg.rollup
    if representation == ROLLUP_AUTO:  # the group models when trained (measured the better), else the means
        columns = [c for c in (Col.SHOP, Col.CATEGORY) if c in table.columns]
        representation = ROLLUP_TRAINED if all(c in model.groups for c in columns) else ROLLUP_MEAN
    rollup = RollUp(table, representation, cfg.rollup_per_group, dict(model.groups))
    rollup.check()
    field: dict[str, Any] = {"from": "file" if catalog is not None else "training sessions", "items": table.height,
                             "rollup": rollup.describe()}
    if catalog is not None:
        field |= {"path": str(catalog), "fingerprint": fingerprint_sessions(catalog)}
    return rollup, field


def build_method_index(
    method: str,
    sessions: str | Path,
    out: str | Path,
    cfg: IndexConfig | None = None,
    methods: MethodConfig | None = None,
    progress: Progress | None = None,
    time_unit: str = DEFAULT_TIME_UNIT,
    engine: IndexEngineConfig | None = None,
    catalog: str | Path | None = None,
) -> dict[str, Any]:
    """Fit ``method`` (a name ``recs compare`` knows) on the training sessions file and write its
    candidate sets for ``cfg.pairs``; return the index manifest.

    The method is built as ``compare`` builds it, from ``methods`` with its index settings replaced by
    ``cfg``, so the same settings give the same candidates here as there. An item-level method writes
    its one list once per pair. ``time_unit`` is the unit of integer timestamps (``read_sessions``).
    ``engine``: where our model's search runs (another method refuses Spark before anything is read).
    ``catalog``: a catalogue file (``recs.candidates.catalog``) for a method that files items by shop
    or category (``same-shop``, ``same-category``): its listings, seen in TRAIN or not, get lists.
    """
    spec = method_spec(method)
    cfg = _checked(cfg)
    progress = progress or NullProgress()
    writer = _engine(engine, spec.name, progress, out)
    if catalog is not None and not spec.takes_catalog:
        raise ConfigError(f"--catalog {catalog}: --method {spec.name} reads no catalogue (with --sessions, only "
                          "same-shop and same-category do; ours rolls one up with --model MODEL_DIR)")
    methods = replace(methods or MethodConfig(), index=cfg)
    methods.validate()
    inputs = [("--sessions", sessions)] + ([("--catalog", catalog)] if catalog is not None else [])
    preflight_artifact(out, INDEX_FORMAT, inputs=inputs)  # before minutes of fitting
    given = read_catalog(catalog) if catalog is not None else None
    train = read_sessions(sessions, time_unit=time_unit)
    _check_pairs(train[Col.INTERACTION].unique().to_list(), cfg, f"the training sessions {sessions}")
    gen = spec.build(methods, progress)
    if given is not None:
        assert isinstance(gen, SameGroupCandidates)  # spec.takes_catalog
        gen.catalog = given
    t = time.perf_counter()
    gen.fit(train)
    fit_s = time.perf_counter() - t
    built_from: dict[str, Any] = {"sessions": {"path": str(sessions), "fingerprint": fingerprint_sessions(sessions),
                                               "time_unit": time_unit}}
    trained = listable = train[Col.ITEM].n_unique()
    if catalog is not None:
        assert given is not None
        built_from["catalog"] = {"from": "file", "path": str(catalog), "fingerprint": fingerprint_sessions(catalog),
                                 "items": given.height}
        listable = _listable_items(trained, train[Col.ITEM], given[Col.ITEM])
    return write_index(out, gen, cfg, built_from, trained, {"fit_s": fit_s}, writer, catalogue_items=listable)


def write_index(
    out: str | Path,
    gen: CandidateGenerator,
    cfg: IndexConfig,
    built_from: dict[str, Any],
    training_catalogue_items: int | None,
    timings: dict[str, float] | None = None,
    writer: SetWriter | None = None,
    catalogue_items: int | None = None,
) -> dict[str, Any]:
    """Write a fitted generator's candidate sets for ``cfg.pairs`` (and, for our model, its faiss
    indexes) into ``out`` atomically; return the manifest.

    ``catalogue_items``: the items the index can list (the training items plus a catalogue's listings
    they lack; default ``training_catalogue_items``), recorded as catalogue reach's denominator.

    ``built_from`` is the manifest field naming the input, ``{"model": ...}`` or ``{"sessions": ...}``,
    with its fingerprint. The caller has run ``preflight_artifact`` and ``_check_pairs``. ``writer``
    (our model only): an engine that searches and writes the sets in parts itself (``SetWriter``).
    """
    timings = dict(timings or {})
    sets: dict[str, Any] = {}
    indexes: dict[str, Any] = {}
    hashed: dict[str, Any] = {}  # records (or futures of them) of files hashed as written or in a thread
    if writer is not None and not isinstance(gen, EmbeddingCandidates):
        raise ConfigError(f"{gen.name}: only our model's HNSW search runs on another engine")
    with ExitStack() as stack, atomic_dir(out, INDEX_FORMAT) as tmp:
        if writer is not None:
            stack.enter_context(writer)  # the engine's session and scratch space, for this index only
        (tmp / "candidates").mkdir()
        if writer is not None:
            indexes = writer.write_indexes(tmp, gen, cfg.pairs, cfg.k, timings)
        elif isinstance(gen, EmbeddingCandidates):
            indexes = write_faiss_indexes(tmp, gen, cfg.pairs, cfg.k, timings, hashed)
        for source, target in cfg.pairs:
            name = set_name(source, target)
            t = time.perf_counter()
            if writer is None:
                record = write_blocks(gen.candidate_blocks(source, target, cfg.k), candidates_path(tmp, source, target))
                if record is not None:
                    hashed[Path(candidates_file(name)).as_posix()] = record
                entry: dict[str, Any] = {"source": source, "target": target}
            else:
                entry = {"source": source, "target": target,
                         "parts": writer.write_set(tmp, gen, source, target, cfg.k)}
            timings[f"search_{name}_s"] = time.perf_counter() - t
            scan = pl.scan_parquet([tmp / rel for rel in candidate_files(name, entry)])
            sets[name] = {**entry, **describe(scan), **gen.set_details(source, target)}
        extra = gen.save_files(tmp) if isinstance(gen, CandidateGenerator) else {}
        manifest = write_manifest(
            tmp,
            INDEX_FORMAT,
            SINGLE_FILE_VERSION if writer is None else INDEX_VERSION,
            config=config_dict(cfg),
            engine=writer.describe() if writer is not None else {"name": ENGINE_LOCAL},
            method={"name": gen.name, "config": gen.settings(), **({"files": extra} if extra else {})},
            **built_from,
            training_catalogue_items=training_catalogue_items,
            catalogue_items=catalogue_items if catalogue_items is not None else training_catalogue_items,
            indexes=indexes,
            candidate_sets=sets,
            timings=timings,
            files=record_files(tmp, {rel: r.result() if isinstance(r, Future) else r for rel, r in hashed.items()}),
        )
    return manifest


def write_faiss_indexes(
    tmp: Path, gen: EmbeddingCandidates, pairs: Iterable[tuple[str, str]], k: int, timings: dict[str, float],
    hashed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Our model's HNSW index per target interaction, as ``indexes/<target>.<score>.faiss``; returns
    the manifest's ``indexes`` field. Named and described by the generator's own index settings, the
    ones its search used. Each file is hashed in a thread while the search runs (``hashed`` gets a
    future of its record, which ``write_index`` resolves for ``record_files``): faiss's own file writer
    is several times faster than its Python callback writer, so the file is written by path and read
    back from the page cache, off the critical path."""
    cfg = gen.index_config
    indexes: dict[str, Any] = {}
    (tmp / "indexes").mkdir()
    for target in dict.fromkeys(t for _, t in pairs):
        t = time.perf_counter()
        built = gen.target_index(target)
        side, hnsw = built.side, built.hnsw
        timings[f"index_{target}_s"] = time.perf_counter() - t
        path = tmp / "indexes" / f"{target}.{cfg.score}.faiss"
        try:
            faiss.write_index(hnsw.index, str(path))
        except RuntimeError as e:  # faiss reports a failed fwrite (disk full) as a RuntimeError
            raise OutputError(f"{path.name}: cannot write ({str(e).strip().splitlines()[0]})") from None
        if hashed is not None:
            hashed[path.relative_to(tmp).as_posix()] = _HASHER.submit(file_record, path)
        indexes[target] = {"rows": int(hnsw.index.ntotal), "backoff_rows": side.backoff,
                           "mips_to_l2_norm2": hnsw.mips_norm2,
                           "ef_search": hnsw.effective_ef_search(cfg, min(k + 1, int(hnsw.index.ntotal)))}
        if built.rolled is not None:  # rows past the side's stand for groups (recs.candidates.rollup)
            indexes[target]["group_rows"] = int(hnsw.index.ntotal) - len(side.items)
    return indexes


def load_index_manifest(index_dir: str | Path) -> dict[str, Any]:
    """The manifest of INDEX_DIR, checked (recs.candidates.index_check) before any field is used."""
    manifest = read_manifest(index_dir, INDEX_FORMAT, INDEX_VERSIONS)
    check_index_manifest(index_dir, manifest)
    return manifest


def load_candidates(
    index_dir: str | Path, name: str, lazy: bool = False, manifest: dict[str, Any] | None = None
) -> pl.DataFrame | pl.LazyFrame:
    """A candidate set of an index directory by name (``click_to_cart``); ``lazy`` scans it instead,
    so that a reader that filters (the hit rate) never holds the whole table. ``manifest``: the one
    ``load_index_manifest`` already returned for ``index_dir`` (checked), so it is not read again.

    Either layout (one file, or the parts of a partitioned set) comes back as one frame or scan,
    rows in the order written. Every part's footer is read here (a schema check per part, about a
    millisecond each), so a missing, broken or foreign part fails now, naming it, and not in the
    middle of a lazy reader's scan."""
    manifest = manifest if manifest is not None else load_index_manifest(index_dir)
    if name not in manifest["candidate_sets"]:
        raise ConfigError(f"{index_dir}: no candidate set {name!r}; it has {', '.join(manifest['candidate_sets'])}")
    # load_index_manifest resolved them: inside index_dir
    paths = [Path(index_dir) / rel for rel in candidate_files(name, manifest["candidate_sets"][name])]
    path = paths[0]
    try:
        schema = None
        for path in paths:
            part = pl.read_parquet_schema(path) if len(paths) > 1 else pl.scan_parquet(path).collect_schema()
            check_candidates_schema(path, pl.Schema(part))  # a missing or broken file fails here, with the path
            if schema is not None and part != schema:
                raise ArtifactError(f"{path}: columns {dict(part)} differ from the first part's {dict(schema)}; "
                                    "the parts of one candidate set have one schema")
            schema = part
        scan = pl.scan_parquet(paths[0] if len(paths) == 1 else paths)
        return scan if lazy else scan.collect()
    except RecsError:
        raise
    except Exception as e:  # any parser's failure on a damaged file (recs.artifacts.unreadable)
        raise unreadable(path, e, index_dir) from None


__all__ = ["INDEX_FORMAT", "build_index", "build_method_index", "candidates_path", "load_candidates", "write_index"]
