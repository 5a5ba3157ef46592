"""Spark's output directories as this machine reads them, and the URIs Spark is given for local paths."""

from __future__ import annotations

import os
from pathlib import Path

from recs.sessions.files import is_skipped


def part_files(directory: Path, suffix: str) -> list[Path]:
    """Spark's output parts of ``directory`` in partition order (their names: ``part-00000-<job>...``),
    bookkeeping files (``_SUCCESS``, ``.crc``) left out."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not is_skipped(p.name) and p.name.endswith(suffix))


def local_uri(path: str | Path) -> str:
    """A local path as the ``file://`` URI Spark is given for it: absolute by this Python process's working
    directory, and with the ``file`` scheme.

    Spark qualifies a bare path itself, against the JVM's working directory (fixed when the JVM started:
    a notebook or test that changed directory since gets another one) and the cluster's default file
    system (``fs.defaultFS``: on a Hadoop cluster ``/shared/x`` means HDFS). Either way Spark would read or
    write somewhere other than where this process reads and writes. Not percent-escaped: Spark parses
    the text as Hadoop's ``Path(String)`` does, which escapes it itself.
    """
    return "file://" + os.path.abspath(path)
