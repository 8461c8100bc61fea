"""The chunks and the inverted index of vector stores: the writes and deletes of `vector_store_chunks` and
`vector_store_postings` (a search's reads are `store.vector_store_search`).

A posting list is one row per (store, term, file) whose `postings` blob packs little-endian uint32 triples
`(chunk position, term frequency, chunk length)` in position order; `df` counts the triples. Files are indexed
whole when they complete and unindexed whole when they leave, so nothing here updates a row in place.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from emulator.commits import write_changes
from emulator.store import statements
from emulator.store import vector_store_tables as tables

_UINT32 = "I" if array("I").itemsize == 4 else "L"
_BIG_ENDIAN = sys.byteorder == "big"


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


def write_file(session: Session, *, store_seq: int, file_seq: int, chunks: Sequence[IndexedChunk]) -> None:
    """Store a file's chunks and add them to its store's index (one bulk insert each)."""
    if not chunks:
        return
    _insert_many(
        session,
        tables.VECTOR_STORE_CHUNKS.name,
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
            tables.VECTOR_STORE_POSTINGS.name,
            ("store_seq", "term", "file_seq", "df", "postings"),
            [(store_seq, term, file_seq, len(flat) // 3, _pack_flat(flat)) for term, flat in sorted(by_term.items())],
        )


def _insert_many(session: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """One DB-API `executemany` (the index writes tens of thousands of rows per file; ORM or Core bulk inserts
    spend most of their time building parameters), after the unit of work's changed records, as any statement."""
    write_changes(session)
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    connection.exec_driver_sql(sql, rows)


_CHUNKS = tables.VECTOR_STORE_CHUNKS.c
_POSTINGS = tables.VECTOR_STORE_POSTINGS.c
_DELETE_FILE_POSTINGS = statements.prepared(
    delete(tables.VECTOR_STORE_POSTINGS).where(_POSTINGS.file_seq == bindparam("file_seq"))
)
_DELETE_FILE_CHUNKS = statements.prepared(
    delete(tables.VECTOR_STORE_CHUNKS).where(_CHUNKS.file_seq == bindparam("file_seq"))
)
_DELETE_STORE_POSTINGS = statements.prepared(
    delete(tables.VECTOR_STORE_POSTINGS).where(_POSTINGS.store_seq == bindparam("store_seq"))
)
_DELETE_STORE_CHUNKS = statements.prepared(
    delete(tables.VECTOR_STORE_CHUNKS).where(
        _CHUNKS.file_seq.in_(
            select(tables.VECTOR_STORE_FILES.c.seq).where(
                tables.VECTOR_STORE_FILES.c.store_seq == bindparam("store_seq")
            )
        )
    )
)


def remove_file(session: Session, file_seq: int) -> None:
    """Unindex a file: its postings and chunks go."""
    statements.execute(session, _DELETE_FILE_POSTINGS, {"file_seq": file_seq})
    statements.execute(session, _DELETE_FILE_CHUNKS, {"file_seq": file_seq})


def remove_store(session: Session, store_seq: int) -> None:
    """Unindex every file of a store (before its files are deleted: the chunks are found through them)."""
    statements.execute(session, _DELETE_STORE_POSTINGS, {"store_seq": store_seq})
    statements.execute(session, _DELETE_STORE_CHUNKS, {"store_seq": store_seq})
