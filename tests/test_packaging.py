"""The installed package exposes only `recs` and its sub-packages, never bare `cli` or `eval`."""

from __future__ import annotations

import subprocess
import sys


def test_only_recs_is_importable(tmp_path):
    code = (
        "import importlib.util as u, json\n"
        "names = ['cli', 'eval', 'embeddings', 'candidates', 'sessions', 'core']\n"
        "bare = {m: u.find_spec(m) is not None for m in names}\n"
        "import recs.cli.main, recs.eval.hitrate, recs.embeddings.train, recs.candidates.build, recs.sessions.io\n"
        "print(json.dumps(bare))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '{"cli": false, "eval": false, "embeddings": false, "candidates": false, ' \
                                 '"sessions": false, "core": false}'
