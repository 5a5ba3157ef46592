"""Every candidate-generation method recs knows, by the name ``recs compare --methods`` and
``recs build-index --method`` take.

A ``MethodSpec`` names a method, its Table 1 label and section, and how to build its unfitted
generator from a ``MethodConfig`` (``recs.config``, with the other configs). Builders are named
functions with keyword arguments, so what each method reads from the shared config is visible at a
glance. Order is Table 1 order, that of ``recs.config.METHOD_NAMES``, the names a config accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from recs.candidates.base import CandidateGenerator
from recs.candidates.baselines import (
    ALSCandidates,
    CooccurrenceCandidates,
    CoPurchaseCandidates,
    CoVisitationCandidates,
    ItemEmbeddingCandidates,
    SameGroupCandidates,
)
from recs.candidates.blend import BlendCandidates
from recs.candidates.embedding import EmbeddingCandidates
from recs.columns import Col
from recs.config import BLEND, METHOD_NAMES, CoocConfig, MethodConfig, TrainConfig, check_methods
from recs.progress import NullProgress, Progress

NO_INTERACTION, INTERACTION, PEER, LEARNED = "no-interaction", "interaction", "public peer", "learned blend"
SAME_GROUP = "same group"  # no learning: the item's shop or category, by its members' carts and clicks
OURS = "ours"


Builder = Callable[[MethodConfig, Progress], CandidateGenerator]


@dataclass(frozen=True)
class MethodSpec:
    name: str
    label: str
    group: str  # NO_INTERACTION, INTERACTION, PEER, SAME_GROUP or LEARNED (Table 1 sections)
    build: Builder
    # counts-based methods answer from co-occurrence counts and never read --score, --m or --ef-*
    searches_vectors: bool = True
    # the method reads a catalogue (build-index --sessions TRAIN --catalog FILE) for the items' groups
    takes_catalog: bool = False
    # a column of the sessions the method cannot do without (the blend leaves such a source out of its
    # default sources on a log without it, and says so)
    needs_column: str | None = None


def unregularized(cfg: TrainConfig) -> TrainConfig:
    """The same training config with co-occurrence regularization off (the ablations)."""
    return replace(cfg, cooc=CoocConfig(k=0, horizon=cfg.cooc.horizon, same_item=cfg.cooc.same_item))


def _embedding(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return ItemEmbeddingCandidates(train_config=unregularized(cfg.train), index_config=cfg.index, progress=progress,
                                   name="embedding")


def _embedding_reg(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return ItemEmbeddingCandidates(train_config=cfg.train, index_config=cfg.index, progress=progress,
                                   name="embedding-reg")


def _mf(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return ALSCandidates(config=cfg.als, index_config=cfg.index, interaction_aware=False, progress=progress, name="mf")


def _co_purchase(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return CoPurchaseCandidates(progress=progress)


def _ours(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return EmbeddingCandidates(train_config=cfg.train, index_config=cfg.index, progress=progress, name=OURS)


def _ours_noreg(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return EmbeddingCandidates(train_config=unregularized(cfg.train), index_config=cfg.index, progress=progress,
                               name="ours-noreg")


def _interaction_mf(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return ALSCandidates(config=cfg.als, index_config=cfg.index, interaction_aware=True, progress=progress,
                         name="interaction-mf")


def _co_occurrence(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return CooccurrenceCandidates(progress=progress)


def _co_visitation(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return CoVisitationCandidates(config=cfg.covisit)


def _same_shop(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return SameGroupCandidates(column=Col.SHOP, name="same-shop")


def _same_category(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return SameGroupCandidates(column=Col.CATEGORY, name="same-category")


def _blend(cfg: MethodConfig, progress: Progress) -> CandidateGenerator:
    return BlendCandidates(methods=cfg, progress=progress)


METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in (
        MethodSpec(name="embedding", label="Embedding", group=NO_INTERACTION, build=_embedding),
        MethodSpec(name="embedding-reg", label="Embedding + co-occurrence reg.", group=NO_INTERACTION,
                   build=_embedding_reg),
        MethodSpec(name="mf", label="Matrix factorization (ALS)", group=NO_INTERACTION, build=_mf),
        MethodSpec(name="co-purchase", label="Co-purchase (cosine)", group=NO_INTERACTION, build=_co_purchase,
                   searches_vectors=False),
        MethodSpec(name=OURS, label="Ours: interaction emb. + co-occurrence reg.", group=INTERACTION, build=_ours),
        MethodSpec(name="ours-noreg", label="Ours without regularization", group=INTERACTION, build=_ours_noreg),
        MethodSpec(name="interaction-mf", label="Interaction MF (ALS)", group=INTERACTION, build=_interaction_mf),
        MethodSpec(name="co-occurrence", label="Co-occurrence (item, interaction)", group=INTERACTION,
                   build=_co_occurrence, searches_vectors=False),
        MethodSpec(name="co-visitation", label="Co-visitation (OTTO-style)", group=PEER, build=_co_visitation,
                   searches_vectors=False),
        MethodSpec(name="same-shop", label="Same shop (the cart-page control)", group=SAME_GROUP, build=_same_shop,
                   searches_vectors=False, takes_catalog=True, needs_column=Col.SHOP),
        MethodSpec(name="same-category", label="Same category", group=SAME_GROUP, build=_same_category,
                   searches_vectors=False, takes_catalog=True, needs_column=Col.CATEGORY),
        MethodSpec(name=BLEND, label="Blend: LambdaRank over the sources' union", group=LEARNED, build=_blend),
    )
}


if tuple(METHODS) != METHOD_NAMES:  # a method added here and not there (or the order changed) fails at import
    raise ImportError(f"recs.config.METHOD_NAMES {METHOD_NAMES} != the registry's methods {tuple(METHODS)}")


def method_spec(name: str, option: str = "--method") -> MethodSpec:
    """The spec of a method by name, or a ConfigError naming the option and every known name."""
    check_methods((name,), option)
    return METHODS[name]


def build_method(name: str, cfg: MethodConfig | None = None, progress: Progress | None = None) -> CandidateGenerator:
    """An unfitted generator of the method ``name``."""
    return method_spec(name).build(cfg or MethodConfig(), progress or NullProgress())
