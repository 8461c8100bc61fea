"""Chunking strategies: `auto` (800-token windows overlapping by 400) and `static`, over `emulator.tokens`.

Chunks are token windows of the file's text in `CHUNK_ENCODING` (cl100k_base, the tokenizer of OpenAI's
embedding models, which is what the real chunker counts in); see `tokens.split_into_chunks` for the window
rule. The stored strategy is always the explicit `{max_chunk_size_tokens, chunk_overlap_tokens}` pair, which is
also how the real API renders `auto` (as `static` 800/400).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulator import limits, tokens

CHUNK_ENCODING = "cl100k_base"


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: int


AUTO_STRATEGY: dict[str, int] = {
    "max_chunk_size_tokens": limits.CHUNK_AUTO_MAX_TOKENS,
    "chunk_overlap_tokens": limits.CHUNK_AUTO_OVERLAP_TOKENS,
}


def resolve_strategy(strategy: Any | None) -> dict[str, int]:
    """The explicit sizes of a request's `chunking_strategy` (None or auto: 800/400)."""
    if strategy is None or getattr(strategy, "type", "auto") == "auto":
        return dict(AUTO_STRATEGY)
    return {
        "max_chunk_size_tokens": strategy.static.max_chunk_size_tokens,
        "chunk_overlap_tokens": strategy.static.chunk_overlap_tokens,
    }


def chunk_text(text: str, max_tokens: int, overlap: int) -> list[Chunk]:
    return [Chunk(piece, count) for piece, count in tokens.split_into_chunks(text, CHUNK_ENCODING, max_tokens, overlap)]
