"""The retrieval engine in process (no server): MaxScore top-k equals exhaustive BM25 on random corpora, the
attribute filter semantics, the posting codec, the tokenizer and the parsers' failure codes."""

from __future__ import annotations

import contextlib
import io
import math
import os
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session

from emulator import limits, migrate
from emulator.db import Database
from emulator.ingest import parsers
from emulator.search import bm25, filters, search_chunks, terms
from emulator.store import vector_store_index as index
from emulator.tables import VectorStoreFileRow, VectorStoreRow
from tests.server import postgres_database

TENANT = "t" * 32


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """An in-process database: SQLite, or a fresh PostgreSQL database when EMULATOR_TEST_DATABASE_URL is set."""
    with contextlib.ExitStack() as stack:
        admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
        url = stack.enter_context(postgres_database(admin_url)) if admin_url else f"sqlite:///{tmp_path / 'engine.db'}"
        database = Database.connect(url)
        migrate.upgrade(database.engine)
        try:
            with database.transaction() as active:
                yield active
        finally:
            database.dispose()


def add_store(session: Session, store_id: str) -> VectorStoreRow:
    row = VectorStoreRow(id=store_id, tenant=TENANT, created_at=0, metadata_={}, last_active_at=0)
    session.add(row)
    session.flush()
    return row


def add_file(session: Session, store: VectorStoreRow, name: str, chunk_texts: list[str], attributes: dict) -> int:
    indexed = []
    for text in chunk_texts:
        counts, length = terms.term_frequencies(text)
        indexed.append(index.IndexedChunk(text, len(text), length, dict(counts)))
    row = VectorStoreFileRow(
        id=f"file-{name}",
        tenant=TENANT,
        vector_store_id=store.id,
        store_seq=store.seq,
        created_at=0,
        status="completed",
        chunking_strategy={},
        attributes=attributes,
        filename=name,
        usage_bytes=0,
        chunk_count=len(indexed),
        term_count=sum(chunk.length for chunk in indexed),
        observations=0,
    )
    session.add(row)
    session.flush()
    index.write_file(session, store_seq=store.seq, file_seq=row.seq, chunks=indexed)
    return row.seq


def exhaustive(corpus, query, k, threshold, keep):  # type: ignore[no-untyped-def]
    """Score every chunk (the definition), with the engine's tie-break (file seq, position)."""
    n = len(corpus)
    avg = sum(length for _, _, _, length in corpus) / n
    wanted = sorted(set(terms.terms(query)))
    df = {t: sum(1 for _, _, counts, _ in corpus if t in counts) for t in wanted}
    idf = {t: bm25.idf(n, df[t]) for t in wanted if df[t]}
    if not idf:
        return []
    scale = math.fsum(bm25.upper_bound(value) for value in idf.values())
    results = []
    for key, text, counts, length in corpus:
        if not keep(key[0]):
            continue
        parts = [bm25.TermWeight(idf[t], avg)(counts[t], length) for t in idf if counts.get(t)]
        if parts:
            raw = math.fsum(parts)
            if raw / scale >= threshold:
                results.append((raw, key, text))
    results.sort(key=lambda item: (-item[0], item[1]))
    return [(text, min(1.0, raw / scale)) for raw, key, text in results[:k]]


@pytest.mark.parametrize("seed", range(6))
def test_maxscore_equals_exhaustive_bm25(session: Session, seed: int) -> None:
    rng = random.Random(seed)
    vocabulary = [f"t{i}" for i in range(rng.choice([30, 200, 1000]))]
    zipf = [1 / (rank + 1) ** rng.choice([0.8, 1.0, 1.3]) for rank in range(len(vocabulary))]
    stores = [add_store(session, f"vs_{seed}_{i}") for i in range(2)]
    corpus = []
    colours = {}
    for number in range(rng.randint(5, 25)):
        store = stores[number % 2]
        texts = [" ".join(rng.choices(vocabulary, zipf, k=rng.randint(1, 60))) for _ in range(rng.randint(1, 30))]
        if number % 5 == 0 and corpus:
            texts[0] = corpus[-1][1]  # an identical chunk: a tie broken by (file, position)
        colour = rng.choice(["red", "green", "blue"])
        file_seq = add_file(session, store, f"{seed}-{number}", texts, {"colour": colour, "n": number})
        colours[file_seq] = colour
        if store is stores[0]:
            corpus += [
                ((file_seq, position), text, Counter(terms.terms(text)), len(terms.terms(text)))
                for position, text in enumerate(texts)
            ]
    for _ in range(25):
        query = " ".join(rng.choices(vocabulary, k=rng.randint(1, 6)))
        k = rng.choice([1, 3, 10, 50])
        threshold = rng.choice([0.0, 0.0, 0.1, 0.3])
        spec = rng.choice([None, {"type": "eq", "key": "colour", "value": "red"}])
        hits = search_chunks(session, TENANT, [stores[0].id], query, k, threshold, spec)
        keep = (lambda _seq: True) if spec is None else (lambda seq: colours[seq] == "red")
        expected = exhaustive(corpus, query, k, threshold, keep)
        assert [hit.text for hit in hits] == [text for text, _ in expected], (seed, query, k, threshold, spec)
        assert [hit.score for hit in hits] == [score for _, score in expected]
        assert all(hit.vector_store_id == stores[0].id for hit in hits)


def test_search_spans_stores_and_respects_tenants(session: Session) -> None:
    first, second = add_store(session, "vs_one"), add_store(session, "vs_two")
    add_file(session, first, "a", ["shared lynx"], {})
    add_file(session, second, "b", ["shared lynx lynx"], {})
    both = search_chunks(session, TENANT, ["vs_one", "vs_two"], "lynx", 10)
    assert [hit.filename for hit in both] == ["b", "a"]
    assert search_chunks(session, "someone-else", ["vs_one", "vs_two"], "lynx", 10) == []
    assert search_chunks(session, TENANT, ["vs_missing"], "lynx", 10) == []
    assert search_chunks(session, TENANT, ["vs_one"], "...", 10) == []


def test_posting_codec_round_trips() -> None:
    triples = [(0, 1, 5), (7, 300, 70_000), (2**32 - 1, 2, 3)]
    assert list(index.unpack(index.pack(triples))) == triples


def test_tokenizer_is_unicode_lowercase_words() -> None:
    assert terms.terms("Émile's naïve café, 42x! 東京_駅") == ["émile", "s", "naïve", "café", "42x", "東京_駅"]
    assert terms.terms("a" * 100) == ["a" * 64]
    assert terms.rewrite_query("  What's the REFUND-policy?? ") == "what s the refund policy"


ATTRS = {"year": 2023, "ratio": 0.5, "name": "alpha", "draft": False}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "eq", "key": "year", "value": 2023}, True),
        ({"type": "eq", "key": "year", "value": 2023.0}, True),
        ({"type": "eq", "key": "year", "value": "2023"}, False),
        ({"type": "ne", "key": "year", "value": "2023"}, True),
        ({"type": "eq", "key": "draft", "value": False}, True),
        ({"type": "eq", "key": "draft", "value": 0}, False),
        ({"type": "gt", "key": "ratio", "value": 0.25}, True),
        ({"type": "lte", "key": "ratio", "value": 0.25}, False),
        ({"type": "gte", "key": "name", "value": "alpha"}, True),
        ({"type": "lt", "key": "name", "value": "beta"}, True),
        ({"type": "gt", "key": "draft", "value": True}, False),
        ({"type": "gt", "key": "missing", "value": 1}, False),
        ({"type": "ne", "key": "missing", "value": 1}, True),
        ({"type": "in", "key": "name", "value": ["alpha", "beta"]}, True),
        ({"type": "nin", "key": "name", "value": ["alpha"]}, False),
        ({"type": "nin", "key": "missing", "value": ["alpha"]}, True),
        ({"type": "and", "filters": []}, True),
        ({"type": "or", "filters": []}, False),
        (
            {
                "type": "or",
                "filters": [{"type": "eq", "key": "year", "value": 1}, {"type": "eq", "key": "name", "value": "alpha"}],
            },
            True,
        ),
    ],
)
def test_filter_semantics(spec: dict, expected: bool) -> None:
    assert filters.matches(spec, ATTRS) is expected


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("x.png", b"\x89PNG", "unsupported_file"),
        ("x.doc", b"\xd0\xcf\x11\xe0", "unsupported_file"),
        ("x", b"no extension", "unsupported_file"),
        ("x.txt", b"", "invalid_file"),
        ("x.txt", b"\xff\xfe\x00", "invalid_file"),
        ("x.txt", b"bin\x00ary", "invalid_file"),
        ("x.pdf", b"%PDF-garbage", "invalid_file"),
        ("x.pptx", b"PK\x03\x04garbage", "invalid_file"),
        ("x.html", b"<html><script>only()</script></html>", "invalid_file"),
    ],
)
def test_parser_failures(name: str, data: bytes, code: str) -> None:
    with pytest.raises(parsers.IngestError) as failure:
        parsers.extract_text(name, data)
    assert failure.value.code == code and failure.value.message


def test_text_encodings_and_pptx() -> None:
    assert parsers.extract_text("a.txt", "\ufeffhé".encode()) == "hé"
    assert parsers.extract_text("a.md", "hé".encode("utf-16")) == "hé"
    import pptx

    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Quarterly pangolin review"
    slide.placeholders[1].text = "Scales are keratin"
    buffer = io.BytesIO()
    deck.save(buffer)
    text = parsers.extract_text("deck.pptx", buffer.getvalue())
    assert "Quarterly pangolin review" in text and "Scales are keratin" in text


def test_a_store_holds_at_most_10000_files(session: Session) -> None:
    from emulator.context import Ctx
    from emulator.errors import InvalidRequest
    from emulator.ids import IdFactory
    from emulator.services import vector_store_ingest
    from emulator.settings import Settings

    store = add_store(session, "vs_full")
    full = [
        {
            "id": f"file-{i}",
            "tenant": TENANT,
            "vector_store_id": store.id,
            "store_seq": store.seq,
            "created_at": 0,
            "status": "in_progress",
            "chunking_strategy": {},
            "attributes": {},
            "filename": "f",
            "usage_bytes": 0,
            "chunk_count": 0,
            "term_count": 0,
            "observations": 0,
        }
        for i in range(limits.VECTOR_STORE_MAX_FILES)
    ]
    session.execute(insert(VectorStoreFileRow), full)
    ctx = Ctx(session=session, tenant=TENANT, settings=Settings(), ids=IdFactory(1))
    vector_store_ingest.require_room(ctx, store, ["file-0", "file-9999"])  # re-attaching takes no room
    with pytest.raises(InvalidRequest) as refused:
        vector_store_ingest.require_room(ctx, store, ["file-0", "file-new"])
    assert refused.value.message == (
        "Vector store vs_full can hold at most 10000 files; it has 10000 and this request adds 1."
    )
