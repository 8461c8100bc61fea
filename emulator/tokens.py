"""The project's one tokenizer: tiktoken encodings loaded offline, token counts, chunking.

tiktoken's own `tiktoken.get_encoding("o200k_base")` downloads the BPE file from
openaipublic.blob.core.windows.net on first use (and caches it under TIKTOKEN_CACHE_DIR or the temp dir).
The emulator must never touch the network, so this module builds the `tiktoken.Encoding` itself:

* the BPE ranks come from the gzipped `<name>.tiktoken.gz` files shipped as this package's data
  (`emulator/encodings/`, OpenAI's files under tiktoken's MIT licence: see the LICENSE there); the file is
  decompressed in process, its SHA-256 is checked against the hash tiktoken itself pins for the download,
  and it is parsed exactly like `tiktoken.load.load_tiktoken_bpe` does (`<base64 token> <rank>` per line);
* `pat_str` and the special tokens are copied verbatim from `tiktoken_ext/openai_public.py`
  (tiktoken 0.14.0). They cannot be imported from there without calling a function that downloads;
  `tests/test_tokens.py` checks that the copies (and the hash) still equal tiktoken's definitions.

Nothing is read from or written to tiktoken's cache directory, and no environment variable is set.
Every part of the emulator must obtain encodings through `get_encoding` here, never through
`tiktoken.get_encoding` / `tiktoken.encoding_for_model` (those would try to download).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tiktoken

from emulator.db import require_worker_thread

__all__ = [
    "ENCODINGS",
    "PROMPT_PRIMING_TOKENS",
    "TOKENS_PER_MESSAGE",
    "count",
    "count_message",
    "decode",
    "encode",
    "get_encoding",
    "split_into_chunks",
    "token_windows",
]

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class _Spec:
    sha256: str
    """SHA-256 of the uncompressed `.tiktoken` file: the `expected_hash` of tiktoken_ext.openai_public."""
    pat_str: str
    special_tokens: dict[str, int]


_SPECS: dict[str, _Spec] = {
    "o200k_base": _Spec(
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str="|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        special_tokens={_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
    ),
    "cl100k_base": _Spec(
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
            r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            _ENDOFTEXT: 100257,
            _FIM_PREFIX: 100258,
            _FIM_MIDDLE: 100259,
            _FIM_SUFFIX: 100260,
            _ENDOFPROMPT: 100276,
        },
    ),
}

ENCODINGS: tuple[str, ...] = tuple(_SPECS)
"""The encoding names `get_encoding` supports."""

_ENCODINGS_DIR = Path(__file__).parent / "encodings"
_LOAD_LOCK = threading.Lock()


def _bpe_file(name: str) -> Path:
    """Path of `<name>.tiktoken.gz` in the package data."""
    path = _ENCODINGS_DIR / f"{name}.tiktoken.gz"
    if not path.is_file():
        raise RuntimeError(f"The emulator's package data has no encodings/{name}.tiktoken.gz (a broken install?).")
    return path


def _load_ranks(name: str, expected_sha256: str) -> dict[bytes, int]:
    path = _bpe_file(name)
    contents = gzip.decompress(path.read_bytes())
    actual = hashlib.sha256(contents).hexdigest()
    if actual != expected_sha256:
        raise RuntimeError(
            f"{path} does not hold the {name} ranks tiktoken expects: "
            f"sha256 {actual} of the uncompressed data, expected {expected_sha256}."
        )
    ranks: dict[bytes, int] = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@functools.cache
def _build(name: str) -> tiktoken.Encoding:
    spec = _SPECS[name]
    return tiktoken.Encoding(
        name,
        pat_str=spec.pat_str,
        mergeable_ranks=_load_ranks(name, spec.sha256),
        special_tokens=dict(spec.special_tokens),
    )


def get_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding `name` ("o200k_base" or "cl100k_base"), built once per process, offline.

    The lock makes concurrent first calls build the encoding once (0.1 to 0.5 s each); later calls are
    answered from `_BUILT` without taking the lock. A unit of work on the event loop does not build one: it
    moves to a worker thread. Unknown names raise ValueError.
    """
    encoding = _BUILT.get(name)
    if encoding is not None:
        return encoding
    if name not in _SPECS:
        raise ValueError(f"Unknown encoding {name!r}; supported: {', '.join(ENCODINGS)}.")
    require_worker_thread("building a tokenizer takes a few hundred milliseconds")
    with _LOAD_LOCK:
        encoding = _BUILT[name] = _build(name)
    return encoding


def warm_up() -> None:
    """Build every encoding now (the server does it in a background thread at start)."""
    for name in ENCODINGS:
        get_encoding(name)


_BUILT: dict[str, tiktoken.Encoding] = {}


def encode(text: str, encoding: str) -> list[int]:
    """Token ids of `text`. Special-token strings such as "<|endoftext|>" are encoded as ordinary text."""
    return get_encoding(encoding).encode(text, disallowed_special=())


def decode(tokens: Sequence[int], encoding: str) -> str:
    """Text of `tokens`; bytes that are not valid UTF-8 (a cut inside a character) become U+FFFD."""
    return get_encoding(encoding).decode(list(tokens))


def count(text: str, encoding: str) -> int:
    """Number of tokens of `text`, with special-token strings counted as ordinary text."""
    return len(encode(text, encoding))


TOKENS_PER_MESSAGE = 3
"""Per-message overhead of the gpt-4o-style chat format: `<|start|>`, the separator and `<|end|>`."""

PROMPT_PRIMING_TOKENS = 3
"""Tokens added once per prompt: every reply is primed with `<|start|>assistant<|message|>`."""


def count_message(role: str, content_text: str, encoding: str) -> int:
    """Tokens that one chat message occupies in a prompt.

    The convention is the one OpenAI's cookbook ("How to count tokens with tiktoken") documents for
    gpt-4o / gpt-4o-mini / gpt-4 style chat models: each message costs `TOKENS_PER_MESSAGE` (3) plus the
    tokens of its role plus the tokens of its content, and the whole prompt costs `PROMPT_PRIMING_TOKENS`
    (3) more for the priming of the reply. So a prompt's tokens are
    `sum(count_message(role, text, enc) for each message) + PROMPT_PRIMING_TOKENS`.
    """
    return TOKENS_PER_MESSAGE + count(role, encoding) + count(content_text, encoding)


def token_windows(n_tokens: int, max_tokens: int, overlap: int) -> list[tuple[int, int]]:
    """Half-open `(start, end)` windows over `n_tokens` tokens: at most `max_tokens` tokens each, each
    window starting `max_tokens - overlap` tokens after the previous one, so that consecutive windows share
    exactly `overlap` tokens. Only the last window can be shorter, and it always adds at least one token
    the previous window did not have. No tokens, no windows.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")
    if not 0 <= overlap < max_tokens:
        raise ValueError(f"overlap must be at least 0 and below max_tokens ({max_tokens}), got {overlap}.")
    step = max_tokens - overlap
    windows: list[tuple[int, int]] = []
    start = 0
    while start < n_tokens:
        end = min(start + max_tokens, n_tokens)
        windows.append((start, end))
        if end == n_tokens:
            break
        start += step
    return windows


def split_into_chunks(text: str, encoding: str, max_tokens: int, overlap: int) -> list[tuple[str, int]]:
    """Cut `text` into token windows (see `token_windows`), returned as `(chunk_text, token_count)` pairs.

    `token_count` is the number of tokens in the window. `chunk_text` is always an exact slice of `text`
    (after tiktoken's own replacement of lone surrogates by U+FFFD). Where a window boundary falls inside a
    multi-byte character, the whole character goes to the window holding the token that starts inside it
    (the convention of tiktoken's `decode_with_offsets`), so no chunk carries U+FFFD debris and, with
    `overlap=0`, the chunks concatenate back to the text. (Only a window shorter than one character, with
    a max_tokens of 1 to 3, can thereby get an empty text.)
    Vector stores use max_tokens=800, overlap=400 for the `auto` strategy.
    """
    enc = get_encoding(encoding)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: tiktoken encodes them as U+FFFD, so do the same here
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        data = text.encode("utf-8")
    tokens = enc.encode(text, disallowed_special=())
    windows = token_windows(len(tokens), max_tokens, overlap)
    if not windows:
        return []

    # Byte offset of every token start, then the character offset of each window boundary.
    byte_starts = list(itertools.accumulate(map(len, enc.decode_tokens_bytes(tokens)), initial=0))
    boundaries = sorted({index for window in windows for index in window})
    char_at: dict[int, int] = {}
    previous_byte = previous_char = 0
    for index in boundaries:
        byte = byte_starts[index]
        while byte < len(data) and 0x80 <= data[byte] < 0xC0:  # back up to the start of the character
            byte -= 1
        previous_char += len(data[previous_byte:byte].decode("utf-8"))
        previous_byte = byte
        char_at[index] = previous_char
    return [(text[char_at[start] : char_at[end]], end - start) for start, end in windows]
