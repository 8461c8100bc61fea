"""File ingestion for vector stores: parse a stored upload into text, then cut the text into token chunks.

`parsers.extract_text(filename, data)` returns the text or raises `IngestError` with the real API's
`last_error.code` (`unsupported_file` / `invalid_file`); `chunking.chunk_text(text, max_tokens, overlap)`
returns the chunks with their token counts. Nothing here touches the database.
"""
