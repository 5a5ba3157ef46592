"""One copy of a loaded index for every worker of ``recs serve --workers N``.

The process that loads the index (polars reads the parquet tables, ~8 s at 1M planted events) writes
the store's numpy arrays once as ``.npy`` files into a private temporary directory; each worker maps
them read-only (``np.load(mmap_mode="r")``). The N workers then share one copy of the arrays in the
page cache (~500 MB for the 1M-event index's 4 sets of 200 per item) instead of holding N, start in
about a second instead of reloading the tables, and never run polars in a forked process: the workers
are spawned (uvicorn's multiprocess supervisor), and only read numpy arrays.

The directory holds ``store.json`` (the index's path and manifest, each set's name, interactions and
arrays) and the arrays; ``recs.serve.server`` removes it when the server stops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recs.errors import ArtifactError
from recs.recommend.store import CandidateSet, CandidateStore

META = "store.json"
ARRAYS = ("offsets", "cands", "scores")


def export_store(store: CandidateStore, directory: Path) -> Path:
    """Write ``store``'s arrays into ``directory`` (a new, private one); returns it."""
    sets: list[dict[str, Any]] = []
    np.save(directory / "ids.npy", store.ids)
    for i, (name, cs) in enumerate(store.sets.items()):
        files = {a: f"set{i}.{a}.npy" for a in ARRAYS}
        for a, file in files.items():
            np.save(directory / file, getattr(cs, a))
        sets.append({"name": name, "source": cs.source, "target": cs.target, "ranked_by_score": cs.ranked_by_score,
                     "files": files})
    meta = {"index_dir": str(store.index_dir), "manifest": store.manifest, "ids": "ids.npy", "sets": sets}
    (directory / META).write_text(json.dumps(meta))
    return directory


def open_store(directory: Path) -> CandidateStore:
    """The store ``export_store`` wrote, its arrays mapped read-only (shared with every other worker)."""
    try:
        meta = json.loads((directory / META).read_text())

        def load(file: str) -> np.ndarray:  # a plain ndarray view: np.memmap costs a Python call per slice
            return np.asarray(np.load(directory / file, mmap_mode="r", allow_pickle=False))

        sets = {s["name"]: CandidateSet(s["name"], s["source"], s["target"],
                                        *(load(s["files"][a]) for a in ARRAYS), s["ranked_by_score"])
                for s in meta["sets"]}
        return CandidateStore(Path(meta["index_dir"]), meta["manifest"], load(meta["ids"]), sets)
    except (OSError, ValueError, KeyError) as e:
        raise ArtifactError(f"{directory}: the shared copy of the index is unreadable ({e})") from None
