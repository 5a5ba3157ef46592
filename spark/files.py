"""Spark's output directories as this machine reads them."""

from __future__ import annotations

from pathlib import Path

from recs.sessions.files import is_skipped


def part_files(directory: Path, suffix: str) -> list[Path]:
    """Spark's output parts of ``directory`` in partition order (their names: ``part-00000-<job>...``),
    bookkeeping files (``_SUCCESS``, ``.crc``) left out."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not is_skipped(p.name) and p.name.endswith(suffix))
