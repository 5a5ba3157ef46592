"""The paper's baselines (sec. 5.3.1) and the strongest public peer, each a ``CandidateGenerator``.

| module            | methods                                                          |
|-------------------|------------------------------------------------------------------|
| ``item_embedding``| skip-gram on item-only tokens, with and without co-occurrence reg. |
| ``mf``            | implicit ALS on user x item and user x (item, interaction)        |
| ``counts``        | co-purchase cosine; (item, interaction) session co-occurrence     |
| ``covisit``       | OTTO-style type-weighted co-visitation                            |
| ``same_group``    | same shop / same category (the paper's cart-page control)         |
"""

from recs.candidates.baselines.common import ITEM_ONLY, OptionalDependencyError
from recs.candidates.baselines.counts import CooccurrenceCandidates, CoPurchaseCandidates
from recs.candidates.baselines.covisit import CoVisitationCandidates, CoVisitConfig
from recs.candidates.baselines.item_embedding import ItemEmbeddingCandidates
from recs.candidates.baselines.mf import ALSCandidates, ALSConfig
from recs.candidates.baselines.same_group import SameGroupCandidates

__all__ = [
    "ITEM_ONLY",
    "ALSCandidates",
    "ALSConfig",
    "CoPurchaseCandidates",
    "CoVisitConfig",
    "CoVisitationCandidates",
    "CooccurrenceCandidates",
    "ItemEmbeddingCandidates",
    "OptionalDependencyError",
    "SameGroupCandidates",
]
