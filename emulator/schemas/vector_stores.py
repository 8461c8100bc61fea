"""Wire shapes of vector stores, their files, file batches and search (requests and renderers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from emulator import limits
from emulator.schemas.common import ChunkingStrategy, Metadata, StrictModel, bounded_pairs
from emulator.store.rows import VectorStore, VectorStoreFile, VectorStoreFileBatch
from emulator.store.vector_store_files import FileCounts
from emulator.store.vector_stores import StoreTally

# ---------------------------------------------------------------------------------------------------- requests


class ExpiresAfter(StrictModel):
    anchor: Literal["last_active_at"]
    days: Annotated[int, Field(ge=limits.VECTOR_STORE_EXPIRES_DAYS_MIN, le=limits.VECTOR_STORE_EXPIRES_DAYS_MAX)]


_check_attributes = bounded_pairs(
    "attributes",
    "attribute",
    max_pairs=limits.VECTOR_STORE_FILE_ATTRIBUTES_MAX_PAIRS,
    key_chars=limits.VECTOR_STORE_FILE_ATTRIBUTE_KEY_MAX_CHARS,
    value_chars=limits.VECTOR_STORE_FILE_ATTRIBUTE_VALUE_MAX_CHARS,
)


Attributes = Annotated[dict[str, str | int | float | bool] | None, AfterValidator(_check_attributes)]


class CreateVectorStore(StrictModel):
    name: str | None = None
    description: str | None = None
    file_ids: Annotated[list[str], Field(max_length=limits.VECTOR_STORE_CREATE_MAX_FILE_IDS)] | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class UpdateVectorStore(StrictModel):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata = None


class CreateVectorStoreFile(StrictModel):
    file_id: str
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


class UpdateVectorStoreFile(StrictModel):
    attributes: Attributes


BatchFileIds = Annotated[
    list[str], Field(min_length=limits.VECTOR_STORE_BATCH_MIN_FILES, max_length=limits.VECTOR_STORE_BATCH_MAX_FILES)
]
BatchFiles = Annotated[
    list[CreateVectorStoreFile],
    Field(min_length=limits.VECTOR_STORE_BATCH_MIN_FILES, max_length=limits.VECTOR_STORE_BATCH_MAX_FILES),
]


class CreateFileBatch(StrictModel):
    """Exactly one of `file_ids` and `files` (checked by the service, which names the parameter)."""

    file_ids: BatchFileIds | None = None
    files: BatchFiles | None = None
    chunking_strategy: ChunkingStrategy | None = None
    attributes: Attributes = None


ComparisonType = Literal["eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"]


class ComparisonFilter(StrictModel):
    type: ComparisonType
    key: str
    value: str | int | float | bool | list[str | int | float]


class CompoundFilter(StrictModel):
    type: Literal["and", "or"]
    filters: list[Annotated[ComparisonFilter | CompoundFilter, Field(discriminator="type")]]


SearchFilter = Annotated[ComparisonFilter | CompoundFilter, Field(discriminator="type")]


class SearchRankingOptions(StrictModel):
    ranker: Literal["none", "auto", "default-2024-11-15"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.0


class SearchVectorStore(StrictModel):
    query: str | Annotated[list[str], Field(min_length=1)]
    rewrite_query: bool = False
    max_num_results: Annotated[
        int, Field(ge=limits.SEARCH_MAX_NUM_RESULTS_MIN, le=limits.SEARCH_MAX_NUM_RESULTS_MAX)
    ] = limits.SEARCH_MAX_NUM_RESULTS_DEFAULT
    filters: SearchFilter | None = None
    ranking_options: SearchRankingOptions | None = None


# --------------------------------------------------------------------------------------------------- renderers


def render_file_counts(counts: FileCounts) -> dict[str, int]:
    return {
        "in_progress": counts.in_progress,
        "completed": counts.completed,
        "failed": counts.failed,
        "cancelled": counts.cancelled,
        "total": counts.total,
    }


@dataclass(frozen=True)
class StoreView:
    """A store with the aggregates over its files that its rendering needs."""

    row: VectorStore
    tally: StoreTally


def store_status(view: StoreView) -> str:
    if view.row.expired_at is not None:
        return "expired"
    return "in_progress" if view.tally.counts.in_progress else "completed"


def render_vector_store(view: StoreView) -> dict[str, Any]:
    row = view.row
    return {
        "id": row.id,
        "object": "vector_store",
        "created_at": row.created_at,
        "name": row.name or "",
        "usage_bytes": view.tally.usage_bytes,
        "file_counts": render_file_counts(view.tally.counts),
        "status": store_status(view),
        "expires_after": row.expires_after,
        "expires_at": row.expires_at,
        "last_active_at": row.last_active_at,
        "metadata": row.metadata_,
    }


def render_chunking_strategy(sizes: dict[str, int]) -> dict[str, Any]:
    return {"type": "static", "static": dict(sizes)}


def render_vector_store_file(row: VectorStoreFile) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "vector_store.file",
        "usage_bytes": row.usage_bytes,
        "created_at": row.created_at,
        "vector_store_id": row.vector_store_id,
        "status": row.status,
        "last_error": row.last_error,
        "chunking_strategy": render_chunking_strategy(row.chunking_strategy),
        "attributes": row.attributes or {},
    }


def render_file_batch(row: VectorStoreFileBatch, counts: FileCounts, status: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "vector_store.files_batch",
        "created_at": row.created_at,
        "vector_store_id": row.vector_store_id,
        "status": status,
        "file_counts": render_file_counts(counts),
    }


def render_file_content(text: str) -> dict[str, Any]:
    return {
        "object": "vector_store.file_content.page",
        "data": [{"type": "text", "text": text}],
        "has_more": False,
        "next_page": None,
    }


def render_search_page(search_query: list[str], hits: list[Any]) -> dict[str, Any]:
    return {
        "object": "vector_store.search_results.page",
        "search_query": search_query,
        "data": [
            {
                "file_id": hit.file_id,
                "filename": hit.filename,
                "score": hit.score,
                "attributes": hit.attributes,
                "content": [{"type": "text", "text": hit.text}],
            }
            for hit in hits
        ],
        "has_more": False,
        "next_page": None,
    }
