"""Exact BM25 top-k over the inverted index (see `emulator.search` for the contract).

Every chunk of the searched stores gets a dense number (files in `seq` order, chunks in position order). The
posting lists of the query terms are read in one ordered query and scored with numpy into one array of chunk
scores, which selects the candidates: the chunks scoring within a relative 1e-9 of the k-th best. Those
candidates are then scored again, one by one, with `bm25.TermWeight` and `math.fsum` over the terms: the
reported scores and the order are exactly those of the definition, whatever the order in which a database
returned rows or numpy added floats. Ties are broken by (file seq, chunk position).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from emulator.search import bm25, filters, terms
from emulator.store import vector_store_search as reads

_NEAR = 1e-9
"""Candidates are the chunks within this relative distance of the k-th approximate score (and of the
threshold): numpy's sums can differ from the exact ones in the last bits only."""

Key = tuple[int, int]
"""(file seq, chunk position): the tie-break order, the same on every database."""


@dataclass(frozen=True)
class Hit:
    vector_store_id: str
    file_id: str
    filename: str
    attributes: dict[str, Any]
    score: float
    text: str
    tokens: int
    position: int


def query_terms(query: str | Sequence[str]) -> list[str]:
    texts = [query] if isinstance(query, str) else list(query)
    return sorted({term for text in texts for term in terms.terms(text)})


@dataclass
class _Corpus:
    """The completed files of the searched stores, laid out densely."""

    file_seqs: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    total_length: int
    offset: dict[int, int]

    @property
    def n_chunks(self) -> int:
        return int(self.counts.sum()) if len(self.counts) else 0

    def key(self, dense: int) -> Key:
        slot = int(np.searchsorted(self.starts, dense, side="right")) - 1
        return int(self.file_seqs[slot]), int(dense - self.starts[slot])


@dataclass
class _TermPostings:
    weight: bm25.TermWeight
    dense: np.ndarray
    """Sorted dense chunk numbers holding the term."""
    tf: np.ndarray
    length: np.ndarray

    def exact(self, dense: int) -> float | None:
        at = int(np.searchsorted(self.dense, dense))
        if at < len(self.dense) and self.dense[at] == dense:
            return self.weight(int(self.tf[at]), int(self.length[at]))
        return None


def _corpus(session: Session, store_ids: Sequence[str]) -> _Corpus:
    files = reads.corpus(session, store_ids)
    file_seqs = np.array([file.seq for file in files], dtype=np.int64)
    counts = np.array([file.chunk_count for file in files], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64) if files else counts
    offset = {int(seq): int(start) for seq, start in zip(file_seqs, starts, strict=True)}
    return _Corpus(file_seqs, starts, counts, sum(file.term_count for file in files), offset)


def _allowed_mask(session: Session, corpus: _Corpus, store_ids: Sequence[str], spec: dict[str, Any]) -> np.ndarray:
    attributes = reads.attributes(session, store_ids)
    allowed = {seq for seq, values in attributes.items() if filters.matches(spec, values)}
    per_file = np.array([int(seq) in allowed for seq in corpus.file_seqs], dtype=bool)
    return np.repeat(per_file, corpus.counts)


def _read_postings(
    session: Session, store_seqs: Sequence[int], wanted: Sequence[str], corpus: _Corpus
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per term: dense chunk numbers (sorted), term frequencies and chunk lengths."""
    grouped: dict[str, tuple[list[bytes], list[int]]] = {}
    for term, file_seq, blob in reads.postings(session, store_seqs, wanted):
        start = corpus.offset.get(file_seq)
        if start is None:
            continue
        blobs, starts = grouped.setdefault(term, ([], []))
        blobs.append(blob)
        starts.append(start)
    found = {}
    for term, (blobs, starts) in grouped.items():
        triples = np.frombuffer(b"".join(blobs), dtype="<u4").reshape(-1, 3)
        sizes = [len(blob) // 12 for blob in blobs]
        dense = np.repeat(np.array(starts, dtype=np.int64), sizes) + triples[:, 0]
        order = np.argsort(dense, kind="stable")
        found[term] = (dense[order], triples[order, 1], triples[order, 2])
    return found


def _ranked(
    corpus: _Corpus,
    postings: dict[str, _TermPostings],
    k: int,
    floor_raw: float,
    allowed: np.ndarray | None,
) -> list[tuple[float, Key]]:
    scores = np.zeros(corpus.n_chunks, dtype=np.float64)
    for item in postings.values():
        tf = item.tf.astype(np.float64)
        norm = bm25.K1 * (1.0 - bm25.B + bm25.B * item.length.astype(np.float64) / item.weight.avg_length)
        scores[item.dense] += item.weight.idf * tf * (bm25.K1 + 1.0) / (tf + norm)
    if allowed is not None:
        scores[~allowed] = 0.0
    matching = int(np.count_nonzero(scores))
    if matching == 0:
        return []
    bar = 0.0
    if matching > k:
        bar = float(np.partition(scores, len(scores) - k)[len(scores) - k])
    bar = max(bar, floor_raw) * (1.0 - _NEAR)
    candidates = np.nonzero((scores >= bar) & (scores > 0))[0]
    exact = []
    for dense in candidates.tolist():
        parts = [value for name in sorted(postings) if (value := postings[name].exact(dense)) is not None]
        score = math.fsum(parts)
        if score >= floor_raw:
            exact.append((score, corpus.key(dense)))
    exact.sort(key=lambda item: (-item[0], item[1]))
    return exact[:k]


def search_chunks(
    session: Session,
    tenant: str,
    vector_store_ids: Sequence[str],
    query: str | Sequence[str],
    max_num_results: int,
    score_threshold: float = 0.0,
    filters: dict[str, Any] | None = None,
) -> list[Hit]:
    wanted = query_terms(query)
    stores = reads.store_seqs(session, tenant, vector_store_ids) if wanted else {}
    if not stores:
        return []
    store_seqs = sorted(stores.values())
    store_ids = sorted(stores)
    corpus = _corpus(session, store_ids)
    n_chunks = corpus.n_chunks
    if n_chunks == 0:
        return []
    found = _read_postings(session, store_seqs, wanted, corpus)
    if not found:
        return []
    avg_length = corpus.total_length / n_chunks
    postings = {
        term: _TermPostings(bm25.TermWeight(bm25.idf(n_chunks, len(dense)), avg_length), dense, tf, length)
        for term, (dense, tf, length) in found.items()
    }
    scale = math.fsum(bm25.upper_bound(item.weight.idf) for item in postings.values())
    allowed = _allowed_mask(session, corpus, store_ids, filters) if filters is not None else None
    ranked = _ranked(corpus, postings, max_num_results, score_threshold * scale, allowed)
    return _hits(session, ranked, scale, score_threshold)


def _hits(session: Session, ranked: list[tuple[float, Key]], scale: float, score_threshold: float) -> list[Hit]:
    if not ranked:
        return []
    chunks = reads.chunks(session, [key for _, key in ranked])
    files = reads.hit_files(session, [key[0] for _, key in ranked])
    hits = []
    for raw, key in ranked:
        score = min(1.0, raw / scale)
        if score < score_threshold:
            continue
        chunk, file = chunks[key], files[key[0]]
        hits.append(
            Hit(file.vector_store_id, file.id, file.filename, file.attributes, score, chunk.text, chunk.tokens, key[1])
        )
    return hits
