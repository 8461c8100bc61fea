"""BM25 top-k over the inverted index, exact, with MaxScore pruning (see `emulator.search` for the contract).

Terms are taken from the rarest (highest upper bound) down. The chunks holding the "essential" terms are the
candidates: their partial scores come from full posting lists, and the remaining ("non-essential") terms are
looked up only in the candidates' files, best candidates first, until no remaining candidate can beat the
k-th best full score. A chunk holding only non-essential terms scores below the sum of their upper bounds;
when that sum cannot beat the k-th score either, the search is complete; otherwise the next term becomes
essential. The result equals scoring every chunk, at a fraction of the reads for queries with a rare term.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from emulator.search import bm25, filters, terms
from emulator.store import vector_store_index as index
from emulator.tables import VectorStoreFileRow, VectorStoreRow

_BLOCK = 64
"""Candidates completed per round of non-essential look-ups."""
_SLACK = 1e-9
"""Bounds are compared with this relative slack, so float rounding never prunes a chunk that could tie."""

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


class _TopK:
    """The k best (score, key) pairs seen, under the order score desc, key asc."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._heap: list[tuple[float, tuple[int, int]]] = []  # min-heap on (score, -key)

    def offer(self, score: float, key: Key) -> None:
        item = (score, (-key[0], -key[1]))
        if len(self._heap) < self.k:
            heapq.heappush(self._heap, item)
        elif item > self._heap[0]:
            heapq.heapreplace(self._heap, item)

    def floor(self) -> float:
        """The k-th best score so far, or -inf while fewer than k are known."""
        return self._heap[0][0] if len(self._heap) == self.k else -math.inf


def _allowed_files(session: Session, store_ids: Sequence[str], spec: dict[str, Any] | None) -> set[int] | None:
    if spec is None:
        return None
    rows = session.execute(
        select(VectorStoreFileRow.seq, VectorStoreFileRow.attributes).where(
            VectorStoreFileRow.vector_store_id.in_(store_ids), VectorStoreFileRow.status == "completed"
        )
    )
    return {seq for seq, attributes in rows if filters.matches(spec, attributes)}


def _ranked(
    session: Session,
    store_seqs: list[int],
    weights: dict[str, bm25.TermWeight],
    k: int,
    floor_raw: float,
    allowed: set[int] | None,
) -> list[tuple[float, Key]]:
    order = sorted(weights, key=lambda term: (-weights[term].idf, term))
    bounds = {term: bm25.upper_bound(weights[term].idf) for term in order}
    contributions: dict[Key, dict[str, float]] = {}
    complete: set[Key] = set()
    top = _TopK(k)
    essential = 0
    while essential < len(order):
        term = order[essential]
        essential += 1
        weight = weights[term]
        for _, file_seq, blob in index.postings(session, store_seqs, [term]):
            if allowed is not None and file_seq not in allowed:
                continue
            for position, tf, length in index.unpack(blob):
                contributions.setdefault((file_seq, position), {})[term] = weight(tf, length)
        rest = order[essential:]
        rest_bound = sum(bounds[name] for name in rest)
        essentials = order[:essential]
        for key in [key for key in contributions if key not in complete and not rest]:
            complete.add(key)
            top.offer(math.fsum(contributions[key].values()), key)
        if rest:
            _complete_candidates(
                session, store_seqs, weights, rest, rest_bound, essentials, contributions, complete, top, floor_raw
            )
        bar = max(top.floor(), floor_raw)
        if rest_bound <= bar * (1 - _SLACK):
            break
    scored = [(math.fsum(contributions[key].values()), key) for key in complete]
    scored = [(score, key) for score, key in scored if score >= floor_raw and score > 0]
    scored.sort(key=lambda item: (-item[0], item[1]))
    return scored[:k]


def _complete_candidates(
    session: Session,
    store_seqs: list[int],
    weights: dict[str, bm25.TermWeight],
    rest: list[str],
    rest_bound: float,
    essentials: list[str],
    contributions: dict[Key, dict[str, float]],
    complete: set[Key],
    top: _TopK,
    floor_raw: float,
) -> None:
    """Look up the non-essential terms for the best candidates until the rest cannot enter the top k."""

    def partial(key: Key) -> float:
        found = contributions[key]
        return sum(found.get(term, 0.0) for term in essentials)

    pending = sorted(
        ((partial(key), key) for key in contributions if key not in complete), key=lambda item: (-item[0], item[1])
    )
    start = 0
    while start < len(pending):
        bar = max(top.floor(), floor_raw)
        if pending[start][0] + rest_bound < bar * (1 - _SLACK):
            break
        block = [key for _, key in pending[start : start + _BLOCK]]
        start += _BLOCK
        wanted = set(block)
        for term, file_seq, blob in index.postings(session, store_seqs, rest, {key[0] for key in block}):
            weight = weights[term]
            for position, tf, length in index.unpack(blob):
                key = (file_seq, position)
                if key in wanted:
                    contributions[key][term] = weight(tf, length)
        for key in block:
            complete.add(key)
            top.offer(math.fsum(contributions[key].values()), key)


def search_chunks(
    session: Session,
    tenant: str,
    vector_store_ids: Sequence[str],
    query: str | Sequence[str],
    max_num_results: int,
    score_threshold: float = 0.0,
    filters: dict[str, Any] | None = None,
) -> list[Hit]:
    stores = [
        (seq, store_id)
        for seq, store_id in session.execute(
            select(VectorStoreRow.seq, VectorStoreRow.id).where(
                VectorStoreRow.tenant == tenant, VectorStoreRow.id.in_(list(vector_store_ids))
            )
        )
    ]
    wanted_terms = query_terms(query)
    if not stores or not wanted_terms:
        return []
    store_seqs = sorted(seq for seq, _ in stores)
    store_ids = sorted(store_id for _, store_id in stores)
    n_chunks, total_length = index.corpus_size(session, store_ids)
    if n_chunks == 0:
        return []
    frequencies = index.document_frequencies(session, store_seqs, wanted_terms)
    if not frequencies:
        return []
    avg_length = total_length / n_chunks
    weights = {term: bm25.TermWeight(bm25.idf(n_chunks, df), avg_length) for term, df in frequencies.items()}
    scale = math.fsum(bm25.upper_bound(weight.idf) for weight in weights.values())
    floor_raw = score_threshold * scale
    allowed = _allowed_files(session, store_ids, filters)
    if allowed is not None and not allowed:
        return []
    ranked = _ranked(session, store_seqs, weights, max_num_results, floor_raw, allowed)
    return _hits(session, ranked, scale, score_threshold)


def _hits(session: Session, ranked: list[tuple[float, Key]], scale: float, score_threshold: float) -> list[Hit]:
    if not ranked:
        return []
    chunk_rows = index.chunks(session, [key for _, key in ranked])
    file_rows = {
        row.seq: row
        for row in session.scalars(
            select(VectorStoreFileRow).where(VectorStoreFileRow.seq.in_(sorted({key[0] for _, key in ranked})))
        )
    }
    hits = []
    for raw, key in ranked:
        score = min(1.0, raw / scale)
        if score < score_threshold:
            continue
        chunk, file = chunk_rows[key], file_rows[key[0]]
        hits.append(
            Hit(
                vector_store_id=file.vector_store_id,
                file_id=file.id,
                filename=file.filename,
                attributes=file.attributes or {},
                score=score,
                text=chunk.text,
                tokens=chunk.tokens,
                position=chunk.position,
            )
        )
    return hits
