"""The search tokenizer: the same words, in the same order, on every database and every machine.

A term is a maximal run of Unicode word characters (`\\w+`: letters, digits, underscore, any script),
lowercased with `str.lower`, cut to `MAX_TERM_CHARS` characters. Indexing and querying use this one function.
"""

from __future__ import annotations

import re
from collections import Counter

MAX_TERM_CHARS = 64
_WORD = re.compile(r"\w+")


def terms(text: str) -> list[str]:
    return [word[:MAX_TERM_CHARS] for word in _WORD.findall(text.lower())]


def term_frequencies(text: str) -> tuple[Counter[str], int]:
    """The term counts of a text and its length in terms."""
    found = terms(text)
    return Counter(found), len(found)


_PUNCTUATION = re.compile(r"[^\w\s]+")


def rewrite_query(query: str) -> str:
    """`rewrite_query=true`, deterministically: lowercase, punctuation removed, whitespace collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", query.lower()).split())
