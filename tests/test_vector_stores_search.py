"""`POST /v1/vector_stores/{id}/search`: relevance, filters, limits, thresholds, determinism, and equality with an
independent brute-force BM25 over the same chunks (so the order is the same on SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import random
import re

import httpx
import pytest
from openai import BadRequestError, OpenAI
from openai.types.vector_store_search_response import VectorStoreSearchResponse

from emulator import tokens
from emulator.ingest.chunking import CHUNK_ENCODING
from tests.oracle import check_fields, conforms
from tests.vector_stores_support import upload

FILLER = (
    "The committee reviewed the annual budget and discussed the schedule for the coming year. Members agreed that "
    "the report should be circulated before the next meeting, and that the minutes would be published online. "
)


def make_store(client: OpenAI, documents: dict[str, tuple[str, dict | None]], **create: object) -> str:
    store = client.vector_stores.create(**create)  # type: ignore[arg-type]
    for name, (text, attributes) in documents.items():
        done = client.vector_stores.files.create_and_poll(
            upload(client, name, text), vector_store_id=store.id, attributes=attributes
        )
        assert done.status == "completed"
    return store.id


def test_rare_terms_rank_their_chunk_first(client: OpenAI, http: httpx.Client) -> None:
    store = make_store(
        client,
        {
            "minutes.txt": (FILLER * 6, None),
            "budget.txt": (
                FILLER * 3 + "The treasurer flagged an anomaly in the quinoa procurement ledger. " + FILLER * 3,
                None,
            ),
            "other.txt": ("Quinoa is a grain. " + FILLER * 2, None),
        },
    )
    raw = http.post(f"/vector_stores/{store}/search", json={"query": "quinoa procurement anomaly"}).json()
    check_fields(raw, "VectorStoreSearchResultsPage")
    assert raw["object"] == "vector_store.search_results.page" and raw["search_query"] == ["quinoa procurement anomaly"]
    assert (raw["has_more"], raw["next_page"]) == (False, None)
    for item in raw["data"]:
        check_fields(item, "VectorStoreSearchResultItem")
        conforms(item, VectorStoreSearchResponse, "VectorStoreSearchResultItem")
    first = raw["data"][0]
    assert first["filename"] == "budget.txt" and "quinoa procurement ledger" in first["content"][0]["text"]
    assert raw["data"][1]["filename"] == "other.txt", "one matching term beats none"
    assert {item["filename"] for item in raw["data"]} == {"budget.txt", "other.txt"}, "chunks with no term are not hits"
    scores = [item["score"] for item in raw["data"]]
    assert scores == sorted(scores, reverse=True) and all(0 < score <= 1 for score in scores)


def test_same_query_same_order_and_scores(client: OpenAI) -> None:
    store = make_store(client, {f"d{i}.txt": ((FILLER + f"token{i % 3} ") * 4, None) for i in range(6)})
    first = client.vector_stores.search(store, query="token1 committee budget", max_num_results=20)
    second = client.vector_stores.search(store, query="token1 committee budget", max_num_results=20)
    assert [(h.file_id, h.content[0].text, h.score) for h in first.data] == [
        (h.file_id, h.content[0].text, h.score) for h in second.data
    ]
    assert len(first.data) == 6


def test_max_num_results_default_and_bounds(client: OpenAI, http: httpx.Client) -> None:
    store = make_store(client, {f"f{i}.txt": (f"shared word and number {i}", None) for i in range(13)})
    assert len(client.vector_stores.search(store, query="shared").data) == 10
    assert len(client.vector_stores.search(store, query="shared", max_num_results=3).data) == 3
    assert len(client.vector_stores.search(store, query="shared", max_num_results=50).data) == 13
    for bad, message in (
        (0, "Invalid 'max_num_results': integer below minimum value. Expected a value >= 1, but got 0 instead."),
        (51, "Invalid 'max_num_results': integer above maximum value. Expected a value <= 50, but got 51 instead."),
    ):
        response = http.post(f"/vector_stores/{store}/search", json={"query": "shared", "max_num_results": bad})
        assert response.status_code == 400
        assert response.json()["error"]["message"] == message


def test_score_threshold(client: OpenAI, http: httpx.Client) -> None:
    store = make_store(
        client,
        {
            "strong.txt": ("walrus walrus walrus tusk", None),
            "weak.txt": ("walrus " + FILLER * 3, None),
            "none.txt": (FILLER, None),
        },
    )
    every = client.vector_stores.search(store, query="walrus tusk")
    assert [h.filename for h in every.data] == ["strong.txt", "weak.txt"]
    cut = (every.data[0].score + every.data[1].score) / 2
    kept = client.vector_stores.search(store, query="walrus tusk", ranking_options={"score_threshold": cut})
    assert [h.filename for h in kept.data] == ["strong.txt"] and kept.data[0].score >= cut
    assert client.vector_stores.search(store, query="walrus", ranking_options={"score_threshold": 1.0}).data == []
    for ranker in ("none", "auto", "default-2024-11-15"):
        same = client.vector_stores.search(store, query="walrus tusk", ranking_options={"ranker": ranker})
        assert [h.filename for h in same.data] == ["strong.txt", "weak.txt"]
    bad = http.post(f"/vector_stores/{store}/search", json={"query": "x", "ranking_options": {"score_threshold": 1.5}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "ranking_options.score_threshold"


def test_query_lists_and_rewrite(client: OpenAI) -> None:
    store = make_store(client, {"a.txt": ("pelican harbour", None), "b.txt": ("flamingo lagoon", None)})
    both = client.vector_stores.search(store, query=["pelican", "flamingo"])
    assert both.search_query == ["pelican", "flamingo"]
    assert {h.filename for h in both.data} == {"a.txt", "b.txt"}
    rewritten = client.vector_stores.search(store, query="Where's the PELICAN?!", rewrite_query=True)
    assert rewritten.search_query == ["where s the pelican"]
    assert [h.filename for h in rewritten.data] == ["a.txt"]
    assert client.vector_stores.search(store, query="?!").data == []


ATTRIBUTED = {
    "2021.txt": ("harvest report alpha", {"year": 2021, "region": "north", "final": True}),
    "2022.txt": ("harvest report beta", {"year": 2022, "region": "south", "final": False}),
    "2023.txt": ("harvest report gamma", {"year": 2023, "region": "north", "final": True}),
    "plain.txt": ("harvest report delta", None),
}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"type": "eq", "key": "region", "value": "north"}, {"2021.txt", "2023.txt"}),
        ({"type": "ne", "key": "region", "value": "north"}, {"2022.txt", "plain.txt"}),
        ({"type": "gt", "key": "year", "value": 2021}, {"2022.txt", "2023.txt"}),
        ({"type": "gte", "key": "year", "value": 2022}, {"2022.txt", "2023.txt"}),
        ({"type": "lt", "key": "year", "value": 2022}, {"2021.txt"}),
        ({"type": "lte", "key": "year", "value": 2022.0}, {"2021.txt", "2022.txt"}),
        ({"type": "eq", "key": "final", "value": True}, {"2021.txt", "2023.txt"}),
        ({"type": "in", "key": "year", "value": [2021, 2022]}, {"2021.txt", "2022.txt"}),
        ({"type": "nin", "key": "region", "value": ["north"]}, {"2022.txt", "plain.txt"}),
        ({"type": "eq", "key": "year", "value": "2021"}, set()),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "region", "value": "north"},
                    {"type": "gt", "key": "year", "value": 2021},
                ],
            },
            {"2023.txt"},
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "year", "value": 2022},
                    {
                        "type": "and",
                        "filters": [
                            {"type": "eq", "key": "final", "value": True},
                            {"type": "lt", "key": "year", "value": 2022},
                        ],
                    },
                ],
            },
            {"2021.txt", "2022.txt"},
        ),
    ],
)
def test_attribute_filters(client: OpenAI, filters: dict, expected: set[str]) -> None:
    store = make_store(client, ATTRIBUTED)
    found = client.vector_stores.search(store, query="harvest", filters=filters)  # type: ignore[arg-type]
    assert {hit.filename for hit in found.data} == expected
    for hit in found.data:
        assert hit.attributes == (ATTRIBUTED[hit.filename][1] or {})


def test_updated_attributes_are_searched(client: OpenAI) -> None:
    store = make_store(client, {"x.txt": ("harvest", {"stage": "draft"})})
    [file] = list(client.vector_stores.files.list(vector_store_id=store))
    client.vector_stores.files.update(file.id, vector_store_id=store, attributes={"stage": "final"})
    found = client.vector_stores.search(
        store, query="harvest", filters={"type": "eq", "key": "stage", "value": "final"}
    )
    assert [hit.attributes for hit in found.data] == [{"stage": "final"}]


def test_detached_and_deleted_content_is_not_searched(client: OpenAI) -> None:
    store = make_store(client, {"kept.txt": ("permanent marmot", None)})
    gone = upload(client, "gone.txt", "ephemeral marmot")
    client.vector_stores.files.create_and_poll(gone, vector_store_id=store)
    assert {h.filename for h in client.vector_stores.search(store, query="marmot").data} == {"kept.txt", "gone.txt"}
    client.vector_stores.files.delete(gone, vector_store_id=store)
    assert [h.filename for h in client.vector_stores.search(store, query="marmot").data] == ["kept.txt"]
    assert client.vector_stores.search(store, query="ephemeral").data == []


# ------------------------------------------------------------------------- the same ranking as brute-force BM25

K1, B = 1.2, 0.75


def brute_force(chunks: list[tuple[tuple[int, int], str]], query: str, k: int) -> list[tuple[float, str]]:
    """An independent BM25 over every chunk: (normalised score, chunk text), ordered like the emulator."""

    def words(text: str) -> list[str]:
        return [word[:64] for word in re.findall(r"\w+", text.lower())]

    bags = [(key, text, words(text)) for key, text in chunks]
    n = len(bags)
    avg = sum(len(bag) for _, _, bag in bags) / n
    query_terms = sorted(set(words(query)))
    df = {term: sum(1 for _, _, bag in bags if term in bag) for term in query_terms}
    idf = {term: math.log(1.0 + (n - df[term] + 0.5) / (df[term] + 0.5)) for term in query_terms if df[term]}
    scale = math.fsum(value * (K1 + 1.0) for value in idf.values())
    scored = []
    for key, text, bag in bags:
        parts = []
        for term in idf:
            tf = bag.count(term)
            if tf:
                norm = K1 * (1.0 - B + B * len(bag) / avg)
                parts.append(idf[term] * tf * (K1 + 1.0) / (tf + norm))
        if parts:
            scored.append((math.fsum(parts), key, text))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [(min(1.0, raw / scale), text) for raw, _, text in scored[:k]]


def test_ranking_equals_brute_force_bm25(client: OpenAI) -> None:
    rng = random.Random(20240817)
    vocabulary = [f"w{i}" for i in range(400)]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    strategy = {"type": "static", "static": {"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 30}}
    store = client.vector_stores.create()
    chunks: list[tuple[tuple[int, int], str]] = []
    for file_index in range(12):
        text = " ".join(rng.choices(vocabulary, weights, k=rng.randint(40, 400)))
        if file_index in (3, 9):
            text = "duplicate paragraph for ties " + text[:200]
        client.vector_stores.files.create_and_poll(
            upload(client, f"doc{file_index}.txt", text),
            vector_store_id=store.id,
            chunking_strategy=strategy,  # type: ignore[arg-type]
        )
        pieces = tokens.split_into_chunks(text, CHUNK_ENCODING, 100, 30)
        chunks += [((file_index, position), piece) for position, (piece, _) in enumerate(pieces)]
    assert len(chunks) > 40
    queries = ["w0 w1", "w350 w2", "w7 w123 w399 w0", "duplicate ties", "w5", "w77 w78 w79 w80 w81"]
    queries += [" ".join(rng.sample(vocabulary, rng.randint(1, 5))) for _ in range(10)]
    for query in queries:
        for k in (1, 5, 50):
            found = client.vector_stores.search(store.id, query=query, max_num_results=k)
            expected = brute_force(chunks, query, k)
            assert [hit.content[0].text for hit in found.data] == [text for _, text in expected], query
            assert [hit.score for hit in found.data] == pytest.approx([score for score, _ in expected], rel=1e-12)


def test_search_of_an_unknown_store_is_404(client: OpenAI) -> None:
    with pytest.raises(Exception) as missing:
        client.vector_stores.search("vs_unknown", query="x")
    assert getattr(missing.value, "status_code", None) == 404


def test_search_requires_a_query(http: httpx.Client, client: OpenAI) -> None:
    store = client.vector_stores.create()
    response = http.post(f"/vector_stores/{store.id}/search", json={})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Missing required parameter: 'query'."
    with pytest.raises(BadRequestError):
        client.vector_stores.search(store.id, query=[])
