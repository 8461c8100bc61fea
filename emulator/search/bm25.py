"""Okapi BM25, the scoring of `emulator.search` (pure arithmetic; the same floats on every database).

    idf(t)        = ln(1 + (N - df + 0.5) / (df + 0.5))
    w(t, chunk)   = idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_length))
    score(chunk)  = sum of w(t, chunk) over the distinct query terms t in the chunk (math.fsum: exact, order-free)

N is the number of chunks of the searched stores, df the number of those chunks holding t, length a chunk's
number of terms and avg_length the mean. `w(t, chunk) < upper_bound(t) = idf(t) * (k1 + 1)` for every chunk,
which normalises scores into 0..1: `normalized = score / sum(upper_bound(t) for the query terms found in the
stores)`. A chunk holding every query term once, at average length, scores 1 / (k1 + 1) = 0.45; more
occurrences push it towards 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

K1 = 1.2
B = 0.75


def idf(n_chunks: int, df: int) -> float:
    return math.log(1.0 + (n_chunks - df + 0.5) / (df + 0.5))


def upper_bound(term_idf: float) -> float:
    return term_idf * (K1 + 1.0)


@dataclass(frozen=True)
class TermWeight:
    """w(t, chunk) for one term, with the per-term constants computed once."""

    idf: float
    avg_length: float

    def __call__(self, tf: int, length: int) -> float:
        norm = K1 * (1.0 - B + B * length / self.avg_length) if self.avg_length > 0 else K1
        return self.idf * tf * (K1 + 1.0) / (tf + norm)
