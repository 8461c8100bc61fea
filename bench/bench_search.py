#!/usr/bin/env python
"""Vector store figures: ingestion throughput and search latency (figures only, no assertions).

    python bench/bench_search.py [--database-url URL] [--sizes 10000,100000] [--words-per-chunk 450]
                                 [--queries 300] [--ingest-mb 8]

1. Ingestion: synthetic English-like .txt files (Zipf words) go through the real path,
   `services.vector_store_ingest.ingest` (decode, tiktoken chunking at auto 800/400, term counts, chunk and
   posting inserts), in one thread: MB of text per second per core, with the share spent in tiktoken chunking.
2. Search: a store of N chunks is seeded straight into the tables (`store.vector_store_index.write_file`, 100
   chunks per file, the shape ingestion produces), then queries of 2 to 4 words (one common word, the others
   drawn from the Zipf vocabulary) are timed through `search.search_chunks` in process, and through the full
   HTTP route (`POST /v1/vector_stores/{id}/search`, in-process ASGI client: routing, validation, a write
   transaction for last_active_at, rendering). p50 / p99 / mean in milliseconds.

SQLite by default (a temp file); `--database-url postgresql://...` runs against a fresh database created on that
server and dropped afterwards. Nothing is fetched from the network.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import itertools
import random
import re
import statistics
import sys
import sysconfig
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator import migrate
from emulator.context import Ctx, tenant_of
from emulator.db import Database
from emulator.ids import IdFactory
from emulator.ingest import chunking
from emulator.search import search_chunks, terms
from emulator.services import vector_store_ingest
from emulator.settings import Settings
from emulator.store import vector_store_index as index
from emulator.tables import FileRow, VectorStoreFileRow, VectorStoreRow

API_KEY = "sk-bench-search"
TENANT = tenant_of(API_KEY)
CHUNKS_PER_FILE = 100
VOCABULARY_SIZE = 50_000


def english_words() -> list[str]:
    """Real English words ranked by frequency, from the docstrings of the standard library (offline)."""
    counts: Counter[str] = Counter()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        for doc in re.findall(r'"""(.*?)"""', path.read_text(errors="ignore"), re.S):
            counts.update(word.lower() for word in re.findall(r"[A-Za-z]{2,}", doc))
    return [word for word, _ in counts.most_common()]


class Words:
    """A Zipf(1.07) vocabulary of 50,000 words, sampled with a seeded generator: the head is real English
    (ranked by frequency in the standard library's docstrings, so tokenization is realistic), the tail is
    pseudo-words (rare names, identifiers)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        letters = "etaoinshrdlucmfwypvbgkqjxz"
        self.words = english_words()[:VOCABULARY_SIZE]
        seen = set(self.words)
        while len(self.words) < VOCABULARY_SIZE:
            length = self.rng.choice((2, 3, 4, 5, 5, 6, 6, 7, 8, 9, 10, 12))
            word = "".join(self.rng.choices(letters, weights=range(26, 0, -1), k=length))
            if word not in seen:
                seen.add(word)
                self.words.append(word)
        self.cumulative = list(itertools.accumulate(1 / (rank + 1) ** 1.07 for rank in range(VOCABULARY_SIZE)))

    def sample(self, count: int) -> list[str]:
        return self.rng.choices(self.words, cum_weights=self.cumulative, k=count)

    def rank_range(self, low: int, high: int) -> str:
        return self.words[self.rng.randrange(low, high)]

    def text(self, count: int) -> str:
        out = []
        for start in range(0, count, 12):
            sentence = self.sample(min(12, count - start))
            sentence[0] = sentence[0].capitalize()
            out.append(" ".join(sentence) + ".")
        return " ".join(out)


@contextlib.contextmanager
def database(url: str | None) -> Iterator[tuple[Database, str]]:
    """A fresh, migrated database: a new PostgreSQL database under `url`, else a SQLite file (in a temp dir
    unless `url` names one)."""
    with contextlib.ExitStack() as stack:
        if url and url.startswith("postgres"):
            from emulator.testing import postgres_database

            fresh = stack.enter_context(postgres_database(url))
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-search-"))
            fresh = url or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        db = Database.connect(fresh)
        stack.callback(db.dispose)
        migrate.upgrade(db.engine)
        yield db, fresh


def make_store(db: Database, store_id: str) -> VectorStoreRow:
    with db.transaction() as session:
        row = VectorStoreRow(id=store_id, tenant=TENANT, created_at=0, metadata_={}, last_active_at=0)
        session.add(row)
        session.flush()
        return row


def bench_ingestion(db: Database, words: Words, megabytes: float, files_dir: Path) -> None:
    settings = Settings(data_dir=files_dir)
    store = make_store(db, "vs_ingest")
    files_dir.mkdir(parents=True, exist_ok=True)
    documents = []
    total = 0
    number = 0
    while total < megabytes * 1_000_000:
        text = words.text(words.rng.randint(20_000, 60_000))
        path = files_dir / f"doc{number}.txt"
        path.write_text(text)
        documents.append((f"file-bench{number}", path, len(text.encode())))
        total += len(text.encode())
        number += 1
    with db.transaction() as session:
        for file_id, path, size in documents:
            session.add(
                FileRow(
                    id=file_id,
                    tenant=TENANT,
                    created_at=0,
                    bytes=size,
                    filename=path.name,
                    purpose="assistants",
                    status="processed",
                    expires_at=None,
                    storage_path=str(path),
                )
            )
            session.add(
                VectorStoreFileRow(
                    id=file_id,
                    tenant=TENANT,
                    vector_store_id=store.id,
                    store_seq=store.seq,
                    created_at=0,
                    status="in_progress",
                    chunking_strategy=dict(chunking.AUTO_STRATEGY),
                    attributes={},
                    filename=path.name,
                    usage_bytes=0,
                    chunk_count=0,
                    term_count=0,
                    observations=0,
                )
            )
    chunk_seconds = 0.0
    started = time.perf_counter()
    chunks = 0
    for file_id, path, _ in documents:
        with db.transaction() as session:
            ctx = Ctx(session=session, tenant=TENANT, settings=settings, ids=IdFactory(1))
            row = session.query(VectorStoreFileRow).filter_by(vector_store_id=store.id, id=file_id).one()
            vector_store_ingest.ingest(ctx, row)
            assert row.status == "completed", row.last_error
            chunks += row.chunk_count
        before = time.perf_counter()
        chunking.chunk_text(path.read_text(), 800, 400)
        chunk_seconds += time.perf_counter() - before
    elapsed = time.perf_counter() - started - chunk_seconds
    mb = total / 1_000_000
    print(f"ingestion: {len(documents)} files, {mb:.1f} MB of text, {chunks} chunks (auto 800/400)")
    print(f"  end to end (decode, chunk, term counts, inserts): {mb / elapsed:.2f} MB/s per core ({elapsed:.1f} s)")
    print(
        f"  of which tiktoken chunking alone:               {mb / chunk_seconds:.2f} MB/s per core "
        f"({chunk_seconds / elapsed:.0%} of the time)"
    )


def seed(db: Database, words: Words, store: VectorStoreRow, n_chunks: int, words_per_chunk: int) -> float:
    started = time.perf_counter()
    made = 0
    number = 0
    while made < n_chunks:
        count = min(CHUNKS_PER_FILE, n_chunks - made)
        texts = [words.text(words_per_chunk) for _ in range(count)]
        indexed = []
        for text in texts:
            counts, length = terms.term_frequencies(text)
            indexed.append(index.IndexedChunk(text, 0, length, dict(counts)))
        with db.transaction() as session:
            row = VectorStoreFileRow(
                id=f"file-seed{store.seq}-{number}",
                tenant=TENANT,
                vector_store_id=store.id,
                store_seq=store.seq,
                created_at=0,
                status="completed",
                chunking_strategy=dict(chunking.AUTO_STRATEGY),
                attributes={"n": number},
                filename=f"seed{number}.txt",
                usage_bytes=sum(len(t.encode()) for t in texts),
                chunk_count=count,
                term_count=sum(c.length for c in indexed),
                observations=0,
            )
            session.add(row)
            session.flush()
            index.write_file(session, store_seq=store.seq, file_seq=row.seq, chunks=indexed)
        made += count
        number += 1
    return time.perf_counter() - started


def queries(words: Words, count: int) -> list[str]:
    out = []
    for _ in range(count):
        picked = [words.rank_range(0, 50)]
        picked += [
            words.sample(1)[0] if words.rng.random() < 0.5 else words.rank_range(200, 20_000)
            for _ in range(words.rng.randint(1, 3))
        ]
        words.rng.shuffle(picked)
        out.append(" ".join(picked))
    return out


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, bisect.bisect_left(range(len(ordered)), fraction * len(ordered)))]

    return (
        f"p50 {at(0.50) * 1000:6.1f} ms   p99 {at(0.99) * 1000:6.1f} ms   "
        f"mean {statistics.fmean(ordered) * 1000:6.1f} ms"
    )


def bench_search(db: Database, url: str, words: Words, sizes: list[int], words_per_chunk: int, n_queries: int) -> None:
    from starlette.testclient import TestClient

    from emulator.app import create_app

    for size in sizes:
        store = make_store(db, f"vs_search_{size}")
        seconds = seed(db, words, store, size, words_per_chunk)
        print(
            f"search: store of {size} chunks ({words_per_chunk} words each, {size // CHUNKS_PER_FILE} files), "
            f"seeded in {seconds:.0f} s"
        )
        asked = queries(words, n_queries)
        with db.transaction(write=False) as session:
            for query in asked[:20]:
                search_chunks(session, TENANT, [store.id], query, 10)
            timings = []
            for query in asked:
                started = time.perf_counter()
                search_chunks(session, TENANT, [store.id], query, 10)
                timings.append(time.perf_counter() - started)
        print(f"  search_chunks, top 10, in process:   {percentiles(timings)}")
        settings = Settings(database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="bench-search-app-")))
        with TestClient(create_app(settings)) as http:
            headers = {"Authorization": f"Bearer {API_KEY}"}
            for query in asked[:20]:
                http.post(f"/v1/vector_stores/{store.id}/search", json={"query": query}, headers=headers)
            timings = []
            for query in asked:
                started = time.perf_counter()
                response = http.post(f"/v1/vector_stores/{store.id}/search", json={"query": query}, headers=headers)
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
        print(f"  POST /v1/vector_stores/{{id}}/search: {percentiles(timings)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--words-per-chunk", type=int, default=450)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--ingest-mb", type=float, default=8.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    words = Words(args.seed)
    with database(args.database_url) as (db, url):
        print(f"database: {db.engine.dialect.name}")
        with tempfile.TemporaryDirectory(prefix="bench-search-files-") as tmp:
            if args.ingest_mb > 0:
                bench_ingestion(db, words, args.ingest_mb, Path(tmp))
        sizes = [int(size) for size in args.sizes.split(",") if size]
        bench_search(db, url, words, sizes, args.words_per_chunk, args.queries)


if __name__ == "__main__":
    main()
