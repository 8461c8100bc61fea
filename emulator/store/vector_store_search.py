"""What a search reads: the searched stores, their completed files (the corpus), posting lists and chunk texts.

Searching one store is the common case (the search endpoint; a thread or an assistant has at most one store):
its statements are built once (`statements.prepared`). Searching several, and the posting lists of a query's
terms, take `IN (...)` lists built per call.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from emulator.store import statements
from emulator.store import vector_store_tables as tables

_STORES = tables.VECTOR_STORES.c
_FILES = tables.VECTOR_STORE_FILES.c
_CHUNKS = tables.VECTOR_STORE_CHUNKS.c
_POSTINGS = tables.VECTOR_STORE_POSTINGS.c
_CHUNKS_PER_QUERY = 100


@dataclass(frozen=True)
class CorpusFile:
    """A completed file of the searched stores: its chunks and the total length of their text in terms."""

    seq: int
    chunk_count: int
    term_count: int


@dataclass(frozen=True)
class HitFile:
    """What a hit tells of the file its chunk is in."""

    seq: int
    vector_store_id: str
    id: str
    filename: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: int


_STORE_SEQ = statements.prepared(
    select(_STORES.seq, _STORES.id).where(_STORES.tenant == bindparam("tenant"), _STORES.id == bindparam("store_id"))
)


def store_seqs(session: Session, tenant: str, store_ids: Sequence[str]) -> dict[str, int]:
    """The `seq` of each of the tenant's stores among `store_ids`, by id (others are left out)."""
    if len(store_ids) == 1:
        rows = statements.all_rows(session, _STORE_SEQ, {"tenant": tenant, "store_id": store_ids[0]})
    else:
        query = select(_STORES.seq, _STORES.id).where(_STORES.tenant == tenant, _STORES.id.in_(list(store_ids)))
        rows = statements.all_rows(session, query, {})
    return {str(row.id): int(row.seq) for row in rows}


def _of_completed(*columns: Any, one_store: bool, store_ids: Sequence[str] = ()) -> Select[Any]:
    where = _FILES.vector_store_id == bindparam("store_id") if one_store else _FILES.vector_store_id.in_(store_ids)
    return select(*columns).where(where, _FILES.status == "completed").order_by(_FILES.seq)


_CORPUS_COLUMNS = (_FILES.seq, _FILES.chunk_count, _FILES.term_count)
_CORPUS_ONE = statements.prepared(_of_completed(*_CORPUS_COLUMNS, one_store=True))
_ATTRIBUTES_COLUMNS = (_FILES.seq, _FILES.attributes)
_ATTRIBUTES_ONE = statements.prepared(_of_completed(*_ATTRIBUTES_COLUMNS, one_store=True))


def _completed(session: Session, store_ids: Sequence[str], columns: tuple[Any, ...], one: Select[Any]) -> Any:
    if len(store_ids) == 1:
        return statements.all_rows(session, one, {"store_id": store_ids[0]})
    return statements.all_rows(session, _of_completed(*columns, one_store=False, store_ids=list(store_ids)), {})


def corpus(session: Session, store_ids: Sequence[str]) -> list[CorpusFile]:
    """The completed files of the stores, in `seq` order."""
    rows = _completed(session, store_ids, _CORPUS_COLUMNS, _CORPUS_ONE)
    return [CorpusFile(int(row.seq), int(row.chunk_count), int(row.term_count)) for row in rows]


def attributes(session: Session, store_ids: Sequence[str]) -> dict[int, dict[str, Any]]:
    """The attributes of the stores' completed files, by file `seq` (what a search's filter reads)."""
    rows = _completed(session, store_ids, _ATTRIBUTES_COLUMNS, _ATTRIBUTES_ONE)
    return {int(row.seq): row.attributes or {} for row in rows}


def postings(session: Session, store_seqs: Sequence[int], terms: Sequence[str]) -> Iterator[tuple[str, int, bytes]]:
    """`(term, file_seq, blob)` for the terms in the stores, ordered by term, then file."""
    query = (
        select(_POSTINGS.term, _POSTINGS.file_seq, _POSTINGS.postings)
        .where(_POSTINGS.store_seq.in_(list(store_seqs)), _POSTINGS.term.in_(list(terms)))
        .order_by(_POSTINGS.term, _POSTINGS.file_seq)
    )
    for row in statements.all_rows(session, query, {}):
        yield row.term, row.file_seq, bytes(row.postings)


def chunks(session: Session, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], Chunk]:
    """The chunks at `(file_seq, position)` keys (the few dozen results of one search)."""
    found: dict[tuple[int, int], Chunk] = {}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), _CHUNKS_PER_QUERY):
        batch = wanted[start : start + _CHUNKS_PER_QUERY]
        query = select(_CHUNKS.file_seq, _CHUNKS.position, _CHUNKS.text, _CHUNKS.tokens).where(
            or_(*(and_(_CHUNKS.file_seq == file_seq, _CHUNKS.position == position) for file_seq, position in batch))
        )
        rows = statements.all_rows(session, query, {})
        found.update({(row.file_seq, row.position): Chunk(row.text, row.tokens) for row in rows})
    return found


def hit_files(session: Session, file_seqs: Sequence[int]) -> dict[int, HitFile]:
    """The files of a search's hits, by `seq`."""
    query = select(_FILES.seq, _FILES.vector_store_id, _FILES.id, _FILES.filename, _FILES.attributes).where(
        _FILES.seq.in_(sorted(set(file_seqs)))
    )
    return {
        int(row.seq): HitFile(int(row.seq), row.vector_store_id, row.id, row.filename, row.attributes or {})
        for row in statements.all_rows(session, query, {})
    }
