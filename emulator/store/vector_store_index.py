"""The chunks and the inverted index of vector stores: the only SQL over `vector_store_chunks` and
`vector_store_postings`.

A posting list is one row per (store, term, file) whose `postings` blob packs little-endian uint32 triples
`(chunk position, term frequency, chunk length)` in position order; `df` counts the triples. Files are indexed
whole when they complete and unindexed whole when they leave, so nothing here updates a row in place.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from emulator.tables import VectorStoreChunkRow, VectorStoreFileRow, VectorStorePostingRow

_UINT32 = "I" if array("I").itemsize == 4 else "L"
_BIG_ENDIAN = sys.byteorder == "big"
_IN_BATCH = 500
"""Values per `IN (...)` list: well under SQLite's and PostgreSQL's bound-parameter limits."""


@dataclass(frozen=True)
class IndexedChunk:
    text: str
    tokens: int
    length: int
    term_counts: dict[str, int]


def pack(triples: Iterable[tuple[int, int, int]]) -> bytes:
    return _pack_flat([value for triple in triples for value in triple])


def _pack_flat(flat: list[int]) -> bytes:
    values = array(_UINT32, flat)
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tobytes()


def unpack(blob: bytes) -> Iterator[tuple[int, int, int]]:
    values = array(_UINT32)
    values.frombytes(blob)
    if _BIG_ENDIAN:
        values.byteswap()
    return zip(values[0::3], values[1::3], values[2::3], strict=True)


def _batches(values: Sequence[int] | Sequence[str], size: int = _IN_BATCH) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])


def write_file(session: Session, *, store_seq: int, file_seq: int, chunks: Sequence[IndexedChunk]) -> None:
    """Store a file's chunks and add them to its store's index (one bulk insert each)."""
    if not chunks:
        return
    _insert_many(
        session,
        VectorStoreChunkRow.__tablename__,
        ("file_seq", "position", "text", "tokens", "length"),
        [(file_seq, position, chunk.text, chunk.tokens, chunk.length) for position, chunk in enumerate(chunks)],
    )
    by_term: dict[str, list[int]] = {}
    for position, chunk in enumerate(chunks):
        for term, tf in chunk.term_counts.items():
            flat = by_term.get(term)
            if flat is None:
                by_term[term] = [position, tf, chunk.length]
            else:
                flat += (position, tf, chunk.length)
    if by_term:
        _insert_many(
            session,
            VectorStorePostingRow.__tablename__,
            ("store_seq", "term", "file_seq", "df", "postings"),
            [(store_seq, term, file_seq, len(flat) // 3, _pack_flat(flat)) for term, flat in sorted(by_term.items())],
        )


def _insert_many(session: Session, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """One DB-API `executemany` (the index writes tens of thousands of rows per file; ORM or Core bulk inserts
    spend most of their time building parameters)."""
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    connection.exec_driver_sql(sql, rows)


def remove_files(session: Session, file_seqs: Sequence[int]) -> None:
    for batch in _batches(list(file_seqs)):
        session.execute(delete(VectorStorePostingRow).where(VectorStorePostingRow.file_seq.in_(batch)))
        session.execute(delete(VectorStoreChunkRow).where(VectorStoreChunkRow.file_seq.in_(batch)))


def remove_store(session: Session, store_seq: int) -> None:
    session.execute(delete(VectorStorePostingRow).where(VectorStorePostingRow.store_seq == store_seq))
    files = select(VectorStoreFileRow.seq).where(VectorStoreFileRow.store_seq == store_seq)
    session.execute(delete(VectorStoreChunkRow).where(VectorStoreChunkRow.file_seq.in_(files)))


def postings(
    session: Session, store_seqs: Sequence[int], terms: Sequence[str], *, ordered: bool = False
) -> Iterator[tuple[str, int, bytes]]:
    """`(term, file_seq, blob)` for the terms in the stores (ordered by term, then file, if asked)."""
    query = select(VectorStorePostingRow.term, VectorStorePostingRow.file_seq, VectorStorePostingRow.postings).where(
        VectorStorePostingRow.store_seq.in_(list(store_seqs)), VectorStorePostingRow.term.in_(list(terms))
    )
    if ordered:
        query = query.order_by(VectorStorePostingRow.term, VectorStorePostingRow.file_seq)
    for term, file_seq, blob in session.execute(query):
        yield term, file_seq, bytes(blob)


def chunk_texts(session: Session, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, int]]:
    """`(text, tokens)` of the chunks at `(file_seq, position)` keys (the few dozen results of one search)."""
    found: dict[tuple[int, int], tuple[str, int]] = {}
    wanted = sorted(set(keys))
    for start in range(0, len(wanted), 100):
        batch = wanted[start : start + 100]
        rows = session.execute(
            select(
                VectorStoreChunkRow.file_seq,
                VectorStoreChunkRow.position,
                VectorStoreChunkRow.text,
                VectorStoreChunkRow.tokens,
            ).where(
                or_(
                    *(
                        and_(VectorStoreChunkRow.file_seq == file_seq, VectorStoreChunkRow.position == position)
                        for file_seq, position in batch
                    )
                )
            )
        )
        found.update({(file_seq, position): (text, tokens) for file_seq, position, text, tokens in rows})
    return found
