"""Training corpora for gensim: sessions as token-id sentences, and regularization pairs.

gensim's ``corpus_file`` mode reads a plain text file (one sentence per line, space-separated words)
from C threads without the GIL; the ``iterable`` mode streams Python lists. Words are token ids
written as decimal strings, the shortest text that round-trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl

from recs.columns import Col

# gensim truncates sentences longer than this (MAX_WORDS_IN_BATCH); we split them instead.
MAX_SENTENCE = 10_000


def session_lines(sequences: pl.DataFrame) -> pl.DataFrame:
    """One ``line`` per session (per MAX_SENTENCE words of it), in the sessions' order of first
    appearance; each Spark task writes its sessions' lines with this too (``recs.spark.corpus``)."""
    chunked = sequences.with_columns((pl.col(Col.POS).rank("ordinal").over(Col.SESSION) // MAX_SENTENCE).alias("_c"))
    return (
        chunked.group_by(Col.SESSION, "_c", maintain_order=True)
        .agg(pl.col(Col.TOKEN_ID).cast(pl.String).str.join(" ").alias("line"))
        .select("line")
    )


def write_session_corpus(sequences: pl.DataFrame, path: Path) -> int:
    """Write one line per session; returns the number of words written."""
    session_lines(sequences).write_csv(path, include_header=False, quote_style="never")
    return sequences.height


def write_pair_corpus(pairs: pl.DataFrame, path: Path) -> int:
    """Write one two-word line per (p, q) pair; returns the number of words written."""
    pairs.select(pl.concat_str([pl.col("p").cast(pl.String), pl.col("q").cast(pl.String)], separator=" ")).write_csv(
        path, include_header=False, quote_style="never"
    )
    return 2 * pairs.height


class SessionIterable:
    """Re-iterable corpus of sessions for gensim's iterable mode, built from flat numpy arrays.

    Holds one int array of token ids and one of offsets (not a Python list per session); lists are
    made on the fly as gensim asks for each sentence.
    """

    def __init__(self, sequences: pl.DataFrame) -> None:
        self.tokens = sequences[Col.TOKEN_ID].to_numpy()
        sess = sequences[Col.SESSION].rank("dense").to_numpy()
        bounds = np.flatnonzero(np.r_[True, sess[1:] != sess[:-1], True])
        self.offsets = bounds
        n_words = int(self.tokens.max()) + 1 if self.tokens.size else 0
        self.words = np.array([str(i) for i in range(n_words)], dtype=object)

    def __iter__(self) -> Iterator[list[str]]:
        words, tokens, off = self.words, self.tokens, self.offsets
        for a, b in pairwise(off):
            for c in range(a, b, MAX_SENTENCE):
                yield words[tokens[c : min(b, c + MAX_SENTENCE)]].tolist()

    def __len__(self) -> int:
        return len(self.offsets) - 1


class PairIterable:
    """Re-iterable corpus of (p, q) two-word sentences."""

    def __init__(self, pairs: pl.DataFrame, words: np.ndarray) -> None:
        self.p = pairs["p"].to_numpy()
        self.q = pairs["q"].to_numpy()
        self.words = words

    def __iter__(self) -> Iterator[list[str]]:
        w = self.words
        for p, q in zip(self.p.tolist(), self.q.tolist(), strict=True):
            yield [w[p], w[q]]

    def __len__(self) -> int:
        return len(self.p)
