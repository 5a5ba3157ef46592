"""The modules of ``recs recommend``: which of a history's events trigger which candidate set.

A module is a tuple of trigger rules (``Rule``); each rule picks the last ``n`` distinct items of a
history with one of its interactions and reads each one's list from the first of its sets that has
one (the cart page's fallback from the cart vector's list to the click vector's).

=========  ===========================================  =========================================
module     triggers                                     list of each trigger
=========  ===========================================  =========================================
click      last 4 distinct clicked items (treatment 1)  click_to_cart
cart       last 4 distinct carted items (treatment 2)   cart_to_cart
both       the two above                                each its own
recent     last 100 distinct items, any interaction     click_to_cart of an item-level index
           (the paper's control)                        (the same list for every pair)
cart-page  the last carted item                         cart_to_purchase, else click_to_purchase
=========  ===========================================  =========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from recs.candidates.index_check import set_name
from recs.columns import Interaction
from recs.config import RecommendConfig
from recs.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    interactions: tuple[str, ...] | None  # None: any interaction
    n: int
    sets: tuple[str, ...]  # tried in order: the first that has a list for the item


def module_rules(cfg: RecommendConfig) -> tuple[Rule, ...]:
    click = Rule((Interaction.CLICK,), cfg.triggers, (set_name(Interaction.CLICK, Interaction.CART),))
    cart = Rule((Interaction.CART,), cfg.triggers, (set_name(Interaction.CART, Interaction.CART),))
    rules = {
        "click": (click,),
        "cart": (cart,),
        "both": (click, cart),
        "recent": (Rule(None, cfg.recent, (set_name(Interaction.CLICK, Interaction.CART),)),),
        "cart-page": (Rule((Interaction.CART,), 1, (set_name(Interaction.CART, Interaction.PURCHASE),
                                                     set_name(Interaction.CLICK, Interaction.PURCHASE))),),
    }
    return rules[cfg.module]


def check_sets(module: str, rules: tuple[Rule, ...], available: Mapping[str, object], where: str) -> None:
    """Every rule can read at least its first set (a cart page may lack the click fallback)."""
    for rule in rules:
        if rule.sets[0] not in available:
            source, target = rule.sets[0].split("_to_")
            raise ConfigError(
                f"module {module!r} reads candidate set {rule.sets[0]!r}, which {where} does not have "
                f"(it has {', '.join(available) or 'none'}); build it with "
                f"`recs build-index ... --pairs {source}:{target}`"
            )
