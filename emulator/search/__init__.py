"""Lexical retrieval over vector stores: deterministic BM25 on the emulator's own inverted index.

For the run executor (file_search tool) and the search endpoint:

    from emulator.search import Hit, search_chunks

    hits: list[Hit] = search_chunks(
        session,                 # the request's SQLAlchemy session (reads only)
        tenant,                  # ctx.tenant: stores of other tenants are never read
        vector_store_ids,        # list[str]; ids that are not the tenant's are skipped (validate them first)
        query,                   # str | list[str]; the terms of every query string are pooled
        max_num_results,         # int, 1..50
        score_threshold,         # float 0..1 on the normalized score; 0 keeps every matching chunk
        filters,                 # None | dict: a ComparisonFilter / CompoundFilter (see search.filters)
    )

Each `Hit` is one chunk: `vector_store_id, file_id, filename, attributes, score` (0..1), `text`, `tokens` (the
chunk's token count in `ingest.chunking.CHUNK_ENCODING`), `position` (its index in the file). Hits are ordered
by score, then by file attachment order and position: the same order on SQLite and PostgreSQL, because the
scores are computed in Python from integers read from the database (see `search.bm25`).

This function neither advances in-progress files, nor checks expiry, nor touches `last_active_at`: use
`emulator.services.vector_stores.search` (the endpoint's path) or `prepare_for_search` for that.
"""

from emulator.search.engine import Hit, search_chunks

__all__ = ["Hit", "search_chunks"]
