"""The tables of vector stores as Core `Table`s, for the statements of `store.vector_store*` (a mapped class's
`__table__` is only a `FromClause` to a type checker, which `insert`, `update` and `delete` do not take)."""

from __future__ import annotations

from sqlalchemy import Table

from emulator.tables import (
    Base,
    VectorStoreChunkRow,
    VectorStoreFileBatchRow,
    VectorStoreFileRow,
    VectorStorePostingRow,
    VectorStoreRow,
)

VECTOR_STORES: Table = Base.metadata.tables[VectorStoreRow.__tablename__]
VECTOR_STORE_FILES: Table = Base.metadata.tables[VectorStoreFileRow.__tablename__]
VECTOR_STORE_FILE_BATCHES: Table = Base.metadata.tables[VectorStoreFileBatchRow.__tablename__]
VECTOR_STORE_CHUNKS: Table = Base.metadata.tables[VectorStoreChunkRow.__tablename__]
VECTOR_STORE_POSTINGS: Table = Base.metadata.tables[VectorStorePostingRow.__tablename__]
