"""A synthetic marketplace with *planted* structure, so tests know the right answers.

The world: items in a two-level category taxonomy and in shops, Zipf popularity inside each leaf
category, and for every leaf category a few *complementary* leaf categories (phone -> case, charger).
A session has an intent category: the shopper clicks several items there (substitutes), may favorite
one, carts one or two of the clicked items, may go on to click and cart items of a complementary
category, purchases some carted items, and clicks a little noise. Shoppers also *browse*: some of
their intent-phase clicks land in a sibling category (same top-level category) that they look at but
do not cart from, so what is clicked together is wider than what is carted after a click. Items differ
in *appeal*: how
often a click on them turns into a favorite or a cart (price, photos, shipping; lognormal), so, as in
real logs, the most clicked item of a category is not always the most carted. So a model that learns from the
log should put an item's *click* vector near *cart* vectors of its own category (Click-to-Cart:
substitutes) and its *cart* vector near cart vectors of complementary categories (Cart-to-Cart).

*View before cart* (``variant="view-before-cart"``, ``_view_before_cart_parts``): the same catalogue,
but a world where item-level methods are strong. Sessions click items of one small co-view cluster of
their category and cart only items they clicked, chosen by how much they were co-viewed, so what is
viewed together predicts what is carted as well as any cart-specific signal does. The default
``variant="planted"`` draws exactly what it always drew.

*New listings* (``new_items``, cold start): a share of the items is listed on the last day, so
every event of theirs before its start is dropped; a split at the last day then meets them in test
only, as a marketplace meets listings put up since the model was trained. They are chosen with a
random stream of their own, so the rest of the log is event for event the log without them, and
``new_items=0`` is the log this generator has always made.

Everything is vectorised numpy: one random draw per event kind for the whole log, one lexsort to
order events, no Python loop over sessions or events.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from recs.columns import Col, Interaction
from recs.config import SynthConfig  # defined with the other configs; imported from here as well
from recs.sessions.io import TIME_DTYPE


@dataclass(frozen=True)
class World:
    """The planted truth: what category each item is in and which categories complement which."""

    item_ids: np.ndarray  # external id of item index i
    item_category: np.ndarray  # leaf category index of item i
    item_shop: np.ndarray
    complements: np.ndarray  # [n_leaf, complements] leaf category indices
    top_of: np.ndarray  # top-level category of each leaf
    item_appeal: np.ndarray  # relative odds that a click on item i becomes a favorite or cart
    item_new: np.ndarray  # item i is listed on the last day (SynthConfig.new_items)
    item_listed_at: np.ndarray  # datetime64[us] (UTC): the log's start, or the last day's start for new items
    item_coview: np.ndarray | None = None  # co-view cluster of item i (variant "view-before-cart" only)

    def category_of(self) -> dict[int, int]:
        """External item id -> leaf category index."""
        return dict(zip(self.item_ids.tolist(), self.item_category.tolist(), strict=True))

    def frame(self) -> pl.DataFrame:
        """item_id, category, shop_id, and coview_cluster in the view-before-cart variant."""
        coview = {} if self.item_coview is None else {"coview_cluster": self.item_coview}
        return pl.DataFrame(
            {Col.ITEM: self.item_ids, Col.CATEGORY: self.item_category, Col.SHOP: self.item_shop, **coview}
        )

    def catalog(self) -> pl.DataFrame:
        """The world's catalogue, one row per item: item_id, shop_id, category, listed_at (UTC), so a
        cold-start roll-up can file every listing, seen or not, under its shop and category."""
        return pl.DataFrame({
            Col.ITEM: self.item_ids, Col.SHOP: self.item_shop, Col.CATEGORY: self.item_category,
            Col.LISTED_AT: self.item_listed_at,
        }).with_columns(pl.col(Col.LISTED_AT).dt.replace_time_zone("UTC").cast(TIME_DTYPE))


def _make_world(cfg: SynthConfig, rng: np.random.Generator) -> tuple[World, np.ndarray, np.ndarray]:
    n_leaf = cfg.top_categories * cfg.sub_categories
    n_items = cfg.items or max(200, cfg.events // 8)
    top_of = np.repeat(np.arange(cfg.top_categories), cfg.sub_categories)
    # Leaf sizes vary (some categories are big), every leaf gets at least a few items.
    weights = rng.dirichlet(np.full(n_leaf, 2.0))
    sizes = np.maximum(3, np.floor(weights * n_items)).astype(np.int64)
    item_category = np.repeat(np.arange(n_leaf), sizes)
    n_items = item_category.size
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    # Zipf popularity inside each leaf: cumulative weights laid out so that leaf c spans [c, c+1).
    rank_in_leaf = np.arange(n_items) - offsets[item_category]
    w = 1.0 / np.power(rank_in_leaf + 1.0, cfg.zipf_a)
    leaf_tot = np.bincount(item_category, weights=w)
    cum = np.cumsum(w) - np.repeat(np.cumsum(leaf_tot) - leaf_tot, sizes)
    cum = item_category + cum / leaf_tot[item_category]
    cum[offsets[1:] - 1] = np.arange(n_leaf) + 1.0  # exact right edges despite float error
    # Complements: leaves of *other* top-level categories, fixed per leaf.
    complements = np.empty((n_leaf, cfg.complements), dtype=np.int64)
    for c in range(n_leaf):  # n_leaf is ~100: a loop over categories, not events
        others = np.flatnonzero(top_of != top_of[c])
        complements[c] = rng.choice(others, size=cfg.complements, replace=False)
    # Shops specialise in one top-level category.
    n_shops = max(cfg.top_categories, int(n_items * cfg.shops_per_item))
    shop_top = np.arange(n_shops) % cfg.top_categories
    shops_by_top = [np.flatnonzero(shop_top == t) for t in range(cfg.top_categories)]
    item_top = top_of[item_category]
    pick = rng.random(n_items)
    item_shop = np.empty(n_items, dtype=np.int64)
    for t in range(cfg.top_categories):
        idx = np.flatnonzero(item_top == t)
        item_shop[idx] = shops_by_top[t][(pick[idx] * len(shops_by_top[t])).astype(np.int64)]
    # External ids carry no information about category or popularity.
    item_ids = rng.permutation(n_items).astype(np.int64) + 100_000
    leaf_pop = np.power(np.arange(1, n_leaf + 1, dtype=float), -0.6)
    leaf_pop = rng.permutation(leaf_pop / leaf_pop.sum())
    appeal = rng.lognormal(0.0, cfg.appeal_sigma, n_items)
    listed = np.full(n_items, np.datetime64(cfg.start, "us"))
    world = World(item_ids, item_category, item_shop, complements, top_of, appeal, np.zeros(n_items, bool), listed)
    return world, cum, leaf_pop


Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # session, sort key, item index, kind (0..3)
VIEW_BEFORE_CART = "view-before-cart"  # SynthConfig.variant where item-level methods are strong

NEW_ITEMS_STREAM = 1  # spawn key of the new listings' random stream: it never shifts the log's own draws


def _list_new_items(cfg: SynthConfig, world: World) -> tuple[World, np.datetime64]:
    """The world with ``round(new_items x items)`` items, drawn uniformly, listed at the last day's start."""
    last_day = np.datetime64(cfg.start, "D") + np.timedelta64(cfg.days - 1, "D")
    n_items = world.item_ids.size
    rng = np.random.default_rng([cfg.seed, NEW_ITEMS_STREAM])
    new = np.zeros(n_items, bool)
    new[rng.choice(n_items, size=round(cfg.new_items * n_items), replace=False)] = True
    listed = np.where(new, last_day.astype("datetime64[us]"), world.item_listed_at)
    return replace(world, item_new=new, item_listed_at=listed), last_day


def _draw_items(rng: np.random.Generator, cum: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """One popularity-weighted item from each given leaf category (inverse CDF, vectorised)."""
    u = leaves + rng.random(leaves.size) * (1 - 1e-12)
    return np.searchsorted(cum, u, side="right")


def _pick_by_weight(rng: np.random.Generator, weights: np.ndarray, first: np.ndarray, count: np.ndarray,
                    groups: np.ndarray) -> np.ndarray:
    """For each entry of ``groups``, a position in ``first[g] .. first[g] + count[g] - 1`` drawn with
    probability proportional to ``weights`` there (inverse CDF on one cumulative sum, vectorised)."""
    cw = np.concatenate([[0.0], np.cumsum(weights)])
    lo, hi = cw[first[groups]], cw[first[groups] + count[groups]]
    pos = np.searchsorted(cw, lo + rng.random(groups.size) * (hi - lo), side="right") - 1
    return np.clip(pos, first[groups], first[groups] + count[groups] - 1)


def _session_draws(cfg: SynthConfig, rng: np.random.Generator, world: World, leaf_pop: np.ndarray,
                   n_sess: int) -> tuple[np.ndarray, ...]:
    """What every variant draws per session first, in the order the generator always drew it (so a seed
    gives the same default log): intent leaf, intent clicks (heavy-tailed: most sessions a handful, a few
    hundreds), noise clicks, carts (one or two), favorite, complement leaf, its clicks and cart."""
    intent = rng.choice(leaf_pop.size, size=n_sess, p=leaf_pop)
    n_click = np.minimum(1 + np.floor(rng.pareto(1.5, n_sess) * 3.0), 450).astype(np.int64)
    n_noise = rng.poisson(cfg.noise_clicks, n_sess)
    carts = rng.random(n_sess) < cfg.p_cart
    n_cart = carts * (1 + (rng.random(n_sess) < cfg.p_second_cart))
    fav = rng.random(n_sess) < cfg.p_favorite
    comp = carts & (rng.random(n_sess) < cfg.p_complement)
    comp_leaf = world.complements[intent, rng.integers(0, world.complements.shape[1], n_sess)]
    n_comp_click = comp * (1 + rng.poisson(1.0, n_sess))
    comp_cart = comp & (rng.random(n_sess) < cfg.p_complement_cart)
    return intent, n_click, n_noise, n_cart, fav, comp_leaf, n_comp_click, comp_cart


def _repeat(sess: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each session ``counts`` times, with the event's index within its session."""
    s = np.repeat(sess, counts)
    j = np.arange(s.size) - np.repeat(np.cumsum(counts) - counts, counts)
    return s, j


def _planted_parts(cfg: SynthConfig, rng: np.random.Generator, world: World, cum: np.ndarray,
                   leaf_pop: np.ndarray, n_sess: int) -> list[Part]:
    """The default world's events as (session, sort key, item, kind) parts; the draws, in this order,
    are the ones this generator has always made."""
    n_leaf = leaf_pop.size
    sess = np.arange(n_sess)
    intent, n_click, n_noise, n_cart, fav, comp_leaf, n_comp_click, comp_cart = _session_draws(
        cfg, rng, world, leaf_pop, n_sess)

    # Event kinds as (session, key) with a sort key that places them in a plausible order:
    # intent clicks at 0..n, favorite/cart right after the click of the same item, complement
    # clicks after the intent phase, purchases last, noise anywhere.
    parts: list[Part] = []

    def rep(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _repeat(sess, counts)

    s_click, j_click = rep(n_click)
    # browsing: a click after the first may land in a sibling leaf of the same top-level category
    sub = cfg.sub_categories
    browse = (j_click > 0) & (rng.random(s_click.size) < cfg.p_browse) & (sub > 1)
    leaf = intent[s_click]
    sibling = (leaf // sub) * sub + (leaf % sub + 1 + rng.integers(0, max(sub - 1, 1), s_click.size)) % sub
    click_items = _draw_items(rng, cum, np.where(browse, sibling, leaf))
    parts.append((s_click, j_click.astype(float), click_items, np.zeros(s_click.size, np.int8)))
    first_click = np.cumsum(n_click) - n_click

    # carts: one or two of the clicked intent-category items, by appeal, placed right after that click
    click_appeal = world.item_appeal[click_items] * ~browse
    s_cart, j_cart = rep(n_cart)
    cart_pos = _pick_by_weight(rng, click_appeal, first_click, n_click, s_cart)
    pick = cart_pos - first_click[s_cart]
    cart_items = click_items[cart_pos]
    parts.append((s_cart, pick + 0.5 + 0.01 * j_cart, cart_items, np.full(s_cart.size, 2, np.int8)))

    s_fav = sess[fav]
    fpick = _pick_by_weight(rng, click_appeal, first_click, n_click, s_fav) - first_click[s_fav]
    parts.append((s_fav, fpick + 0.4, click_items[first_click[s_fav] + fpick], np.full(s_fav.size, 1, np.int8)))

    # complementary phase
    s_cc, j_cc = rep(n_comp_click)
    cc_items = _draw_items(rng, cum, comp_leaf[s_cc])
    parts.append((s_cc, n_click[s_cc] + 1.0 + j_cc, cc_items, np.zeros(s_cc.size, np.int8)))
    first_cc = np.cumsum(n_comp_click) - n_comp_click
    s_ccart = sess[comp_cart]
    cpick = _pick_by_weight(rng, world.item_appeal[cc_items], first_cc, n_comp_click, s_ccart) - first_cc[s_ccart]
    parts.append(
        (s_ccart, n_click[s_ccart] + 1.5 + cpick, cc_items[first_cc[s_ccart] + cpick],
         np.full(s_ccart.size, 2, np.int8))
    )

    # purchases of carted items, at the end of the session
    all_cart_s = np.concatenate([s_cart, s_ccart])
    all_cart_i = np.concatenate([cart_items, cc_items[first_cc[s_ccart] + cpick]])
    buy = rng.random(all_cart_s.size) < cfg.p_purchase
    parts.append((all_cart_s[buy], np.full(int(buy.sum()), 1e6) + np.arange(int(buy.sum())) * 1e-9,
                  all_cart_i[buy], np.full(int(buy.sum()), 3, np.int8)))

    # noise clicks: any category, anywhere in the session
    s_noise, _ = rep(n_noise)
    noise_leaf = rng.choice(n_leaf, size=s_noise.size, p=leaf_pop)
    span = n_click[s_noise] + n_comp_click[s_noise] + 1.0
    parts.append((s_noise, rng.random(s_noise.size) * span, _draw_items(rng, cum, noise_leaf),
                  np.zeros(s_noise.size, np.int8)))

    return parts


def _coview_clusters(cfg: SynthConfig, world: World) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """Each leaf category cut into co-view clusters of about ``coview_size`` items.

    Item ranks are dealt round-robin (rank r of a leaf with n clusters goes to cluster r mod n, as its
    (r // n)-th item), so every cluster has a head item and a tail; inside a cluster, items are drawn by
    Zipf on that in-cluster rank: comparable products, one a little more popular than the next. Returns
    (cluster of each item, items ordered by cluster then rank, their in-cluster weights, first position
    and size of each cluster in that order).
    """
    cat = world.item_category  # items are laid out leaf by leaf, by popularity rank inside a leaf
    sizes = np.bincount(cat, minlength=world.top_of.size)
    rank = np.arange(cat.size) - (np.cumsum(sizes) - sizes)[cat]
    n_cl = np.maximum(1, sizes // cfg.coview_size)
    cluster = (np.cumsum(n_cl) - n_cl)[cat] + rank % n_cl[cat]
    order = np.lexsort((rank, cluster))
    weights = 1.0 / np.power((rank // n_cl[cat])[order] + 1.0, cfg.zipf_a)
    count = np.bincount(cluster, minlength=int(n_cl.sum()))
    return cluster, order, weights, np.cumsum(count) - count, count


def _view_before_cart_parts(cfg: SynthConfig, rng: np.random.Generator, world: World, cum: np.ndarray,
                            leaf_pop: np.ndarray, n_sess: int) -> tuple[World, list[Part]]:
    """Events of the ``view-before-cart`` world, where what is viewed together predicts what is carted.

    The world (items, leaves, shops, complements, popularity) is the default one; the sessions differ:

    * A session opens on a popularity-drawn item of its intent leaf; that item's co-view cluster
      (``_coview_clusters``) is what the shopper compares: each later intent click stays in it with
      probability ``p_coview``, else lands anywhere in the leaf. No sibling-category browsing.
    * A cart (one or two) is of a clicked intent item, drawn over the intent *click events*, each
      weighted by how many of the session's intent clicks fell in its item's co-view cluster: the
      shopper carts among the items compared together, seldom the one-off glance, and an item clicked
      three times is three times as likely as one clicked once. The shopper decides after comparing:
      the cart comes after the intent clicks, right after a return click on the chosen item (none
      when it is the item just viewed). There is no per-item appeal: how often an item is carted
      follows from how it is viewed, so its cart rate adds nothing an item-level count does not know.
    * A carting session may go on to a complementary leaf: it clicks items of one co-view cluster
      there the same way and may cart one of those clicked items (never an unclicked one), again
      after a return click on it.
    * Favorites are of a clicked intent item, purchases of carted items at the end, noise clicks as in
      the default world.

    So every cart and purchase follows a click on the same item in the session, and for Click-to-Cart
    an item-level co-view count (co-visitation, item embeddings, ALS) sees all the structure there is;
    an interaction-aware model only splits each item into sparser tokens. One interaction-specific
    signal is kept because it is real: complements are visited only after a cart, so Cart-to-Cart still
    favours a model with cart vectors. On 200k events (seed 0, ``recs compare``, k=200) item embeddings
    with reg. hit 0.499 of Click-to-Cart targets, our model 0.491 (within noise), co-visitation 0.464,
    ALS 0.404; Cart-to-Cart 0.148 against ours 0.223. On the default world our model leads both.
    """
    n_leaf = leaf_pop.size
    cluster, order, weights, first_cl, count_cl = _coview_clusters(cfg, world)
    world = replace(world, item_coview=cluster)
    n_clusters = count_cl.size
    sess = np.arange(n_sess)
    intent, n_click, n_noise, n_cart, fav, comp_leaf, n_comp_click, comp_cart = _session_draws(
        cfg, rng, world, leaf_pop, n_sess)
    parts: list[Part] = []

    def rep(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _repeat(sess, counts)

    def browse(opening: np.ndarray, leaves: np.ndarray, s: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Click items: the session's opening item first, then its co-view cluster or, now and then, its leaf."""
        stay = rng.random(s.size) < cfg.p_coview
        mates = order[_pick_by_weight(rng, weights, first_cl, count_cl, cluster[opening][s])]
        return np.where(j == 0, opening[s], np.where(stay, mates, _draw_items(rng, cum, leaves[s])))

    def uniform_pick(counts: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Offset of one event drawn uniformly from each group's ``counts`` events."""
        return np.minimum((rng.random(groups.size) * counts[groups]).astype(np.int64), counts[groups] - 1)

    s_click, j_click = rep(n_click)
    click_items = browse(_draw_items(rng, cum, intent), intent, s_click, j_click)
    parts.append((s_click, j_click.astype(float), click_items, np.zeros(s_click.size, np.int8)))
    first_click = np.cumsum(n_click) - n_click

    def decide(s: np.ndarray, j: np.ndarray, counts: np.ndarray, items: np.ndarray, clicked_in: np.ndarray,
               end: np.ndarray) -> np.ndarray:
        """Carts of sessions ``s`` (``j``-th of theirs) drawn from the ``counts`` click ``items`` of their
        phase (the sessions ``clicked_in``), each click event weighted by the phase's clicks in its item's
        co-view cluster; placed after the phase's last click (key ``end``), after a return click on the item."""
        _, where, n_same = np.unique(clicked_in * n_clusters + cluster[items], return_inverse=True,
                                     return_counts=True)
        first = np.cumsum(counts) - counts
        pick = _pick_by_weight(rng, n_same[where].astype(float), first, counts, s) - first[s]
        chosen = items[first[s] + pick]
        back = (j > 0) | (pick < counts[s] - 1)
        key = end[s] + 0.5 + 0.1 * j
        parts.append((s[back], key[back], chosen[back], np.zeros(int(back.sum()), np.int8)))
        parts.append((s, key + 0.05, chosen, np.full(s.size, 2, np.int8)))
        return chosen

    s_cart, j_cart = rep(n_cart)
    cart_items = decide(s_cart, j_cart, n_click, click_items, s_click, n_click - 1.0)

    s_fav = sess[fav]
    fpick = uniform_pick(n_click, s_fav)
    parts.append((s_fav, fpick + 0.4, click_items[first_click[s_fav] + fpick], np.full(s_fav.size, 1, np.int8)))

    s_cc, j_cc = rep(n_comp_click)
    cc_items = browse(_draw_items(rng, cum, comp_leaf), comp_leaf, s_cc, j_cc)
    parts.append((s_cc, n_click[s_cc] + 1.0 + j_cc, cc_items, np.zeros(s_cc.size, np.int8)))
    s_ccart = sess[comp_cart]
    cc_cart_items = decide(s_ccart, np.zeros(s_ccart.size, np.int64), n_comp_click, cc_items, s_cc,
                           n_click + n_comp_click + 0.0)

    all_cart_s = np.concatenate([s_cart, s_ccart])
    all_cart_i = np.concatenate([cart_items, cc_cart_items])
    buy = rng.random(all_cart_s.size) < cfg.p_purchase
    n_buy = int(buy.sum())
    parts.append((all_cart_s[buy], np.full(n_buy, 1e6) + np.arange(n_buy) * 1e-9, all_cart_i[buy],
                  np.full(n_buy, 3, np.int8)))

    s_noise, _ = rep(n_noise)
    noise_leaf = rng.choice(n_leaf, size=s_noise.size, p=leaf_pop)
    span = n_click[s_noise] + n_comp_click[s_noise] + 1.0
    parts.append((s_noise, rng.random(s_noise.size) * span, _draw_items(rng, cum, noise_leaf),
                  np.zeros(s_noise.size, np.int8)))
    return world, parts


def generate(cfg: SynthConfig) -> tuple[pl.DataFrame, World]:
    """Generate about ``cfg.events`` events (exactly that many, the last session may be cut short).

    Returns the canonical sessions frame (with user_id, category, shop_id) and the planted World.
    With ``cfg.new_items`` the new listings' events before the last day are then dropped, so the
    log has fewer events (and a session may lose some or all of its events).
    """
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    world, cum, leaf_pop = _make_world(cfg, rng)
    # Mean events per session is about 7.5 with these defaults; draw a margin and cut at the end.
    n_sess = int(cfg.events / 6.0) + 50
    if cfg.variant == VIEW_BEFORE_CART:
        world, parts = _view_before_cart_parts(cfg, rng, world, cum, leaf_pop, n_sess)
    else:
        parts = _planted_parts(cfg, rng, world, cum, leaf_pop, n_sess)

    s_all = np.concatenate([p[0] for p in parts])
    k_all = np.concatenate([p[1] for p in parts])
    i_all = np.concatenate([p[2] for p in parts])
    t_all = np.concatenate([p[3] for p in parts])
    order = np.lexsort((k_all, s_all))
    s_all, i_all, t_all = s_all[order][: cfg.events], i_all[order][: cfg.events], t_all[order][: cfg.events]
    n_sess = int(s_all[-1]) + 1

    # Users and time: sessions spread over `days` days; events a few seconds to minutes apart.
    n_users = max(1, int(n_sess / cfg.sessions_per_user))
    user = rng.integers(0, n_users, n_sess)
    start = np.datetime64(cfg.start, "s").astype(np.int64)
    sess_start = start + rng.integers(0, cfg.days * 86_400 - 3_600, n_sess)
    gaps = np.ceil(rng.exponential(35.0, s_all.size)).astype(np.int64)
    new = np.r_[True, s_all[1:] != s_all[:-1]]
    gaps[new] = 0
    csum = np.cumsum(gaps)
    ts = sess_start[s_all] + csum - np.maximum.accumulate(np.where(new, csum, 0))
    if cfg.new_items:
        world, last_day = _list_new_items(cfg, world)
        keep = ~(world.item_new[i_all] & (ts < last_day.astype("datetime64[s]").astype(np.int64)))
        s_all, i_all, t_all, ts = s_all[keep], i_all[keep], t_all[keep], ts[keep]

    kinds = np.array([Interaction.CLICK, Interaction.FAVORITE, Interaction.CART, Interaction.PURCHASE])
    frame = pl.DataFrame(
        {
            Col.SESSION: s_all.astype(np.int64),
            Col.ITEM: world.item_ids[i_all],
            Col.INTERACTION: kinds[t_all],
            Col.TIMESTAMP: (ts * 1_000_000).astype("datetime64[us]"),
            Col.USER: user[s_all].astype(np.int64),
            Col.CATEGORY: world.item_category[i_all].astype(np.int64),
            Col.SHOP: world.item_shop[i_all].astype(np.int64),
        }
    ).with_columns(pl.col(Col.TIMESTAMP).dt.replace_time_zone("UTC").cast(TIME_DTYPE))
    return frame, world
