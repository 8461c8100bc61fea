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

from sqlalchemy import delete, func, insert, select, tuple_
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
    values = array(_UINT32)
    for triple in triples:
        values.extend(triple)
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
    session.execute(
        insert(VectorStoreChunkRow),
        [
            {
                "file_seq": file_seq,
                "position": position,
                "text": chunk.text,
                "tokens": chunk.tokens,
                "length": chunk.length,
            }
            for position, chunk in enumerate(chunks)
        ],
    )
    by_term: dict[str, list[tuple[int, int, int]]] = {}
    for position, chunk in enumerate(chunks):
        for term, tf in chunk.term_counts.items():
            by_term.setdefault(term, []).append((position, tf, chunk.length))
    if by_term:
        session.execute(
            insert(VectorStorePostingRow),
            [
                {
                    "store_seq": store_seq,
                    "term": term,
                    "file_seq": file_seq,
                    "df": len(triples),
                    "postings": pack(triples),
                }
                for term, triples in sorted(by_term.items())
            ],
        )


def remove_files(session: Session, file_seqs: Sequence[int]) -> None:
    for batch in _batches(list(file_seqs)):
        session.execute(delete(VectorStorePostingRow).where(VectorStorePostingRow.file_seq.in_(batch)))
        session.execute(delete(VectorStoreChunkRow).where(VectorStoreChunkRow.file_seq.in_(batch)))


def remove_store(session: Session, store_seq: int) -> None:
    session.execute(delete(VectorStorePostingRow).where(VectorStorePostingRow.store_seq == store_seq))
    files = select(VectorStoreFileRow.seq).where(VectorStoreFileRow.store_seq == store_seq)
    session.execute(delete(VectorStoreChunkRow).where(VectorStoreChunkRow.file_seq.in_(files)))


def corpus_size(session: Session, store_ids: Sequence[str]) -> tuple[int, int]:
    """(number of chunks, total length in terms) of the completed files of the stores."""
    row = session.execute(
        select(
            func.coalesce(func.sum(VectorStoreFileRow.chunk_count), 0),
            func.coalesce(func.sum(VectorStoreFileRow.term_count), 0),
        ).where(VectorStoreFileRow.vector_store_id.in_(store_ids), VectorStoreFileRow.status == "completed")
    ).one()
    return int(row[0]), int(row[1])


def document_frequencies(session: Session, store_seqs: Sequence[int], terms: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for batch in _batches(sorted(terms)):
        rows = session.execute(
            select(VectorStorePostingRow.term, func.sum(VectorStorePostingRow.df))
            .where(VectorStorePostingRow.store_seq.in_(store_seqs), VectorStorePostingRow.term.in_(batch))
            .group_by(VectorStorePostingRow.term)
        )
        found.update({term: int(df) for term, df in rows})
    return found


def postings(
    session: Session, store_seqs: Sequence[int], terms: Sequence[str], file_seqs: Sequence[int] | None = None
) -> Iterator[tuple[str, int, bytes]]:
    """`(term, file_seq, blob)` for the terms in the stores, optionally only in the given files."""
    query = select(VectorStorePostingRow.term, VectorStorePostingRow.file_seq, VectorStorePostingRow.postings).where(
        VectorStorePostingRow.store_seq.in_(store_seqs), VectorStorePostingRow.term.in_(list(terms))
    )
    if file_seqs is None:
        yield from session.execute(query)
        return
    for batch in _batches(sorted(file_seqs)):
        yield from session.execute(query.where(VectorStorePostingRow.file_seq.in_(batch)))


def chunks(session: Session, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], VectorStoreChunkRow]:
    """The chunk rows for `(file_seq, position)` keys."""
    found: dict[tuple[int, int], VectorStoreChunkRow] = {}
    for start in range(0, len(keys), _IN_BATCH):
        batch = list(keys[start : start + _IN_BATCH])
        rows = session.scalars(
            select(VectorStoreChunkRow).where(
                tuple_(VectorStoreChunkRow.file_seq, VectorStoreChunkRow.position).in_(batch)
            )
        )
        found.update({(row.file_seq, row.position): row for row in rows})
    return found


def file_text(session: Session, file_seq: int) -> list[VectorStoreChunkRow]:
    return list(
        session.scalars(
            select(VectorStoreChunkRow)
            .where(VectorStoreChunkRow.file_seq == file_seq)
            .order_by(VectorStoreChunkRow.position)
        )
    )
