"""``Recommender``: per-user lists (the paper's user-to-item and cart-page modules, sec. 5.4) from one
index directory's candidate sets, for one history or a batch of users.

A history is a user's events (item, interaction, time). Its triggers are picked by the module's
rules (``recs.recommend.modules``), each trigger's list is read from the compact store
(``recs.recommend.store``) and the lists are merged by ``recs.recommend.merge``. One history and a
batch go through the same numpy merge; only the picking of triggers differs (a loop over a single
history's events, a polars query over a block of users), and a property test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from recs.artifacts import reading_artifact
from recs.columns import Col, Interaction
from recs.config import RecommendConfig
from recs.errors import ConfigError
from recs.recommend.merge import Merged, Triggers, merge
from recs.recommend.modules import Rule, check_sets, module_rules
from recs.recommend.store import CandidateSet, CandidateStore

TRIGGER_ITEM, TRIGGER_INTERACTION, CANDIDATE_SET = "trigger_item_id", "trigger_interaction", "candidate_set"
OUTPUT_COLUMNS = (Col.RANK, Col.CANDIDATE, Col.SCORE, TRIGGER_ITEM, TRIGGER_INTERACTION, CANDIDATE_SET)
_POS, _RULE = "_pos", "_rule"

Event = tuple[Any, str, Any]  # (item id, interaction, time)


@dataclass(frozen=True)
class Recommendations:
    """One history's list, best first; every row says which trigger and candidate set produced it."""

    items: np.ndarray
    scores: np.ndarray
    trigger_items: np.ndarray
    trigger_interactions: list[str]
    candidate_sets: list[str]
    # the same provenance once per trigger (recs serve's columnar answer sends it so): row i came from
    # trigger ``trigger[i]``, whose item, interaction and set are ``triggers[0..2][trigger[i]]``
    trigger: np.ndarray | None = None
    triggers: tuple[np.ndarray, list[str], list[str]] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame({
            Col.RANK: np.arange(1, len(self.items) + 1, dtype=np.int32), Col.CANDIDATE: self.items,
            Col.SCORE: self.scores, TRIGGER_ITEM: self.trigger_items,
            TRIGGER_INTERACTION: pl.Series(self.trigger_interactions, dtype=pl.String),
            CANDIDATE_SET: pl.Series(self.candidate_sets, dtype=pl.String),
        })

    def to_dicts(self) -> list[dict[str, Any]]:
        """JSON-ready rows (what ``recs serve`` answers)."""
        items, triggers = self.items.tolist(), self.trigger_items.tolist()
        scores = self.scores.astype(np.float64).round(6).tolist()
        return [{Col.RANK: i + 1, Col.CANDIDATE: items[i], Col.SCORE: scores[i], TRIGGER_ITEM: triggers[i],
                 TRIGGER_INTERACTION: self.trigger_interactions[i], CANDIDATE_SET: self.candidate_sets[i]}
                for i in range(len(items))]


class Recommender:
    """Answers ``recommend(history, module, k)`` from one index directory, loaded once, read-only."""

    def __init__(self, store: CandidateStore, config: RecommendConfig | None = None):
        self.store = store
        self.config = config or RecommendConfig()
        self.config.validate()

    @classmethod
    def open(cls, index_dir: str | Path, config: RecommendConfig | None = None) -> Recommender:
        """Load INDEX_DIR's candidate sets (any method's index) into memory. A file damaged after it was
        written (its data pages, not its footer) is one ArtifactError naming it (``reading_artifact``)."""
        with reading_artifact(index_dir):
            return cls(CandidateStore.open(index_dir), config)

    @property
    def set_names(self) -> tuple[str, ...]:
        return tuple(self.store.sets)

    def resolve(self, **overrides: Any) -> RecommendConfig:
        """The config with per-call overrides (module, k, merge, ...), checked."""
        cfg = replace(self.config, **{k: v for k, v in overrides.items() if v is not None})
        cfg.validate()
        return cfg

    def _rules(self, cfg: RecommendConfig) -> tuple[tuple[Rule, ...], tuple[CandidateSet, ...], list[list[int]]]:
        """The module's rules, the sets they read (deduplicated) and, per rule, its sets' positions."""
        rules = module_rules(cfg)
        check_sets(cfg.module, rules, self.store.sets, f"index {self.store.index_dir}")
        names = list(dict.fromkeys(s for r in rules for s in r.sets if s in self.store.sets))
        positions = [[names.index(s) for s in r.sets if s in self.store.sets] for r in rules]
        return rules, tuple(self.store.sets[n] for n in names), positions

    # ---- one history ------------------------------------------------------------------------------

    def recommend(self, history: Sequence[Event] | pl.DataFrame, at: Any = None, **overrides: Any
                  ) -> Recommendations:
        """The list for one history: a sequence of (item, interaction, time) or a frame with
        item_id, interaction, timestamp. Events are ordered by time (ties: as given); ``at`` keeps only
        events before it. Overrides: any RecommendConfig field (module, k, merge, drop_bought, ...)."""
        cfg = self.resolve(**overrides)
        items, inters = _ordered(history, at)
        rules, sets, positions = self._rules(cfg)
        event_codes = self.store.codes(items)
        picked = _pick_one(items, inters, event_codes.tolist(), rules)  # (item, interaction, position, rule)
        codes = event_codes[np.array([p[2] for p in picked], dtype=np.int64)]
        t_inter = [p[1] for p in picked]
        recency = np.argsort(-np.array([p[2] for p in picked], dtype=np.int64), kind="stable").argsort()
        set_index = _first_set(codes, [p[3] for p in picked], sets, positions)
        ok = set_index >= 0
        trig = Triggers(np.zeros(int(ok.sum()), dtype=np.int64), recency[ok].astype(np.int64), codes[ok],
                        set_index[ok])
        drop = None
        if cfg.drop_bought:
            bought = event_codes[np.array([i for i, x in enumerate(inters) if x == Interaction.PURCHASE],
                                          dtype=np.int64)]
            bought = bought[bought >= 0]
            drop = (np.zeros(len(bought), dtype=np.int64), bought)
        m = merge(trig, sets, cfg.k, cfg.merge, drop, per_trigger=_per_trigger(cfg, sets))
        # per trigger with a list (an item of the index: its own id, 42 for a "42" asked), then per row
        # by fancy indexing of the few triggers' values, not a Python loop over rows
        t_ids = self.store.item_ids(trig.code)
        t_inters = _objects(t_inter)[np.flatnonzero(ok)]
        t_sets = _objects([cs.name for cs in sets])[trig.set_index]
        return Recommendations(
            items=self.store.item_ids(m.cand), scores=m.score, trigger_items=t_ids[m.trigger],
            trigger_interactions=t_inters[m.trigger].tolist(), candidate_sets=t_sets[m.trigger].tolist(),
            trigger=m.trigger, triggers=(t_ids, t_inters.tolist(), t_sets.tolist()),
        )

    def candidates(self, item: Any, set_name: str, k: int = 200) -> pl.DataFrame:
        """Item ``item``'s list in one set (``GET /items/{id}/candidates``): rank, candidate, score."""
        cs = self.store.sets.get(set_name)
        if cs is None:
            raise ConfigError(f"no candidate set {set_name!r}; this index has {', '.join(self.store.sets)}")
        code = int(self.store.codes([item])[0])
        lo, hi = (int(cs.offsets[code]), int(cs.offsets[code + 1])) if code >= 0 else (0, 0)
        hi = min(hi, lo + k)
        return pl.DataFrame({Col.RANK: np.arange(1, hi - lo + 1, dtype=np.int32),
                             Col.CANDIDATE: self.store.item_ids(cs.cands[lo:hi]), Col.SCORE: cs.scores[lo:hi]})

    # ---- a batch of users -------------------------------------------------------------------------

    def recommend_batch(self, events: pl.DataFrame, key: str = Col.USER, at: Any = None, **overrides: Any
                        ) -> pl.DataFrame:
        """Lists for every ``key`` of ``events`` (canonical sessions columns; ``key`` user_id or
        session_id), in one frame: ``key`` then OUTPUT_COLUMNS. Events are ordered by time within a key
        (ties: the frame's order); ``at`` keeps only events before it (a timestamp of the frame's type)."""
        cfg = self.resolve(**overrides)
        rules, sets, positions = self._rules(cfg)
        ev = events.select(key, Col.ITEM, Col.INTERACTION, Col.TIMESTAMP).with_row_index("_row")
        if at is not None:
            ev = ev.filter(pl.col(Col.TIMESTAMP) < at)
        ev = ev.sort(key, Col.TIMESTAMP, "_row").with_columns(pl.int_range(pl.len()).over(key).alias(_POS))
        users = ev.select(pl.col(key).unique(maintain_order=True))
        user_index = users.with_row_index("_user")
        trig = _pick_batch(ev, rules, key).join(user_index, on=key)
        codes = self.store.code_frame(trig[Col.ITEM]).fill_null(-1).to_numpy()
        set_index = _first_set(codes, trig[_RULE].to_list(), sets, positions)
        trig = trig.with_columns(pl.Series("_code", codes), pl.Series("_set", set_index))
        trig = trig.filter(pl.col("_set") >= 0)
        triggers = Triggers(trig["_user"].to_numpy().astype(np.int64), trig["_recency"].to_numpy().astype(np.int64),
                            trig["_code"].to_numpy(), trig["_set"].to_numpy().astype(np.int64))
        drop = None
        if cfg.drop_bought:
            bought = ev.filter(pl.col(Col.INTERACTION) == Interaction.PURCHASE).join(user_index, on=key)
            codes_b = self.store.code_frame(bought[Col.ITEM]).fill_null(-1).to_numpy()
            ok = codes_b >= 0
            drop = (bought["_user"].to_numpy()[ok].astype(np.int64), codes_b[ok])
        return self._frame(merge(triggers, sets, cfg.k, cfg.merge, drop, per_trigger=_per_trigger(cfg, sets)), trig,
                           users[key], sets, key)

    def _frame(self, m: Merged, trig: pl.DataFrame, users: pl.Series, sets: tuple[CandidateSet, ...],
               key: str) -> pl.DataFrame:
        names = pl.Series([s.name for s in sets], dtype=pl.String)
        return pl.DataFrame({
            key: users.gather(m.user), Col.RANK: m.rank.astype(np.int32),
            Col.CANDIDATE: self.store.item_ids(m.cand), Col.SCORE: m.score,
            TRIGGER_ITEM: trig[Col.ITEM].gather(m.trigger),
            TRIGGER_INTERACTION: trig[Col.INTERACTION].gather(m.trigger),
            CANDIDATE_SET: names.gather(trig["_set"].gather(m.trigger)),
        })


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _per_trigger(cfg: RecommendConfig, sets: tuple[CandidateSet, ...]) -> int | None:
    """Rows read per trigger list. Past rank k a row can never make the top k (the list's own k rows
    before it, distinct candidates, come first: by rank in round-robin, by score when the list is
    ranked by score), so they are not gathered. With drop-bought a list can lose rows, and a list
    whose scores rise along it is not ranked by score: then lists are read whole."""
    if cfg.drop_bought or (cfg.merge == "score" and not all(s.ranked_by_score for s in sets)):
        return None
    return cfg.k


def _ordered(history: Sequence[Event] | pl.DataFrame, at: Any) -> tuple[list[Any], list[str]]:
    """Items and interactions of one history in time order (stable), before ``at``."""
    if isinstance(history, pl.DataFrame):
        h = history.select(Col.ITEM, Col.INTERACTION, Col.TIMESTAMP)
        if at is not None:
            h = h.filter(pl.col(Col.TIMESTAMP) < at)
        h = h.sort(Col.TIMESTAMP, maintain_order=True)
        return h[Col.ITEM].to_list(), h[Col.INTERACTION].to_list()
    events = [e for e in history if at is None or e[2] < at]
    events = sorted(events, key=lambda e: e[2]) if events and events[0][2] is not None else events
    return [e[0] for e in events], [e[1] for e in events]


def _pick_one(items: list[Any], inters: list[str], codes: list[int], rules: tuple[Rule, ...]
              ) -> list[tuple[Any, str, int, int]]:
    """Per rule, the last ``n`` distinct items with one of its interactions: (item, interaction of its
    last such event, that event's position, rule). Items are distinct per rule as the index knows them
    (by code: 42 and "42" are one item, as in a batch's one-typed column); an unknown one by its text."""
    out: list[tuple[Any, str, int, int]] = []
    for r_idx, rule in enumerate(rules):
        seen: set[Any] = set()
        for pos in range(len(items) - 1, -1, -1):
            if rule.interactions is not None and inters[pos] not in rule.interactions:
                continue
            ident = codes[pos] if codes[pos] >= 0 else str(items[pos])
            if ident in seen:
                continue
            seen.add(ident)
            out.append((items[pos], inters[pos], pos, r_idx))
            if len(seen) == rule.n:
                break
    return out


def _pick_batch(ev: pl.DataFrame, rules: tuple[Rule, ...], key: str) -> pl.DataFrame:
    """``_pick_one`` for every key at once: key, item, interaction, _rule, _recency (0 = the key's
    most recent trigger over all rules; ties, one event picked by two rules, by rule order)."""
    parts = []
    for r_idx, rule in enumerate(rules):
        sel = ev if rule.interactions is None else ev.filter(pl.col(Col.INTERACTION).is_in(list(rule.interactions)))
        parts.append(
            sel.sort(key, _POS, descending=[False, True])
            .unique([key, Col.ITEM], keep="first", maintain_order=True)
            .filter(pl.int_range(pl.len()).over(key) < rule.n)
            .select(key, Col.ITEM, Col.INTERACTION, _POS, pl.lit(r_idx, pl.Int64).alias(_RULE))
        )
    trig = pl.concat(parts) if parts else ev.head(0)
    return trig.with_columns(
        pl.struct((-pl.col(_POS)).alias("p"), pl.col(_RULE).alias("r")).rank("ordinal").over(key)
        .cast(pl.Int64).sub(1).alias("_recency")
    )


def _first_set(codes: np.ndarray, rule_of: list[int], sets: tuple[CandidateSet, ...], positions: list[list[int]]
               ) -> np.ndarray:
    """Per trigger, the index of the first of its rule's sets that has a list for it; -1 for none."""
    out = np.full(len(codes), -1, dtype=np.int64)
    rules = np.asarray(rule_of, dtype=np.int64)
    for r_idx, pos_list in enumerate(positions):
        mine = rules == r_idx
        for s in pos_list:
            todo = mine & (out < 0)
            if not todo.any():
                break
            has = sets[s].has_list(codes[todo])
            idx = np.flatnonzero(todo)[has]
            out[idx] = s
    return out
