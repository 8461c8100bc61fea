"""The record class of every table: its columns as typed attributes (`store.records`).

Each class is checked against its table (`tables`, the schema of record and of the migrations) when it is
made; the types are checked against the table's by `tests/test_store_records.py`.
"""

from __future__ import annotations

from typing import Any

from emulator import tables
from emulator.store.records import Record

Json = dict[str, Any]


class Clock(Record, mapped=tables.ClockRow):
    """The offset of every tenant's clock (one row)."""
    id: int
    offset_seconds: int


class TenantClock(Record, mapped=tables.TenantClockRow):
    """A tenant's own clock offset."""
    tenant: str
    offset_seconds: int


class Assistant(Record, mapped=tables.AssistantRow):
    """An assistant."""
    seq: int
    id: str
    tenant: str
    created_at: int
    name: str | None
    description: str | None
    model: str
    instructions: str | None
    tools: list[Any]
    tool_resources: Json
    metadata_: Json
    temperature: float | None
    top_p: float | None
    response_format: Any
    reasoning_effort: str | None


class Thread(Record, mapped=tables.ThreadRow):
    """A thread."""
    seq: int
    id: str
    tenant: str
    created_at: int
    last_active_at: int
    tool_resources: Json
    metadata_: Json
    active_run_id: str | None


class Message(Record, mapped=tables.MessageRow):
    """A message of a thread."""
    seq: int
    id: str
    tenant: str
    created_at: int
    thread_id: str
    role: str
    content: list[Any]
    attachments: list[Any]
    metadata_: Json
    status: str
    assistant_id: str | None
    run_id: str | None
    completed_at: int | None
    incomplete_at: int | None
    incomplete_details: Json | None


class File(Record, mapped=tables.FileRow):
    """An uploaded file."""
    seq: int
    id: str
    tenant: str
    created_at: int
    bytes: int
    filename: str
    purpose: str
    status: str
    expires_at: int | None
    storage_path: str


class Run(Record, mapped=tables.RunRow):
    """A run."""
    seq: int
    id: str
    tenant: str
    created_at: int
    thread_id: str
    assistant_id: str
    status: str
    model: str
    instructions: str
    tools: list[Any]
    tool_resources: Json
    metadata_: Json
    temperature: float | None
    top_p: float | None
    max_prompt_tokens: int | None
    max_completion_tokens: int | None
    truncation_strategy: Json
    tool_choice: Any
    parallel_tool_calls: bool
    response_format: Any
    reasoning_effort: str | None
    started_at: int | None
    expires_at: int | None
    cancelled_at: int | None
    failed_at: int | None
    completed_at: int | None
    required_action: Json | None
    last_error: Json | None
    incomplete_details: Json | None
    prompt_tokens: int
    completion_tokens: int
    pending_turn: Json | None
    observations: int
    lease_until: float | None
    unfinished_work: str | None
    interruptions: int
    due_at: float | None


class RunStep(Record, mapped=tables.RunStepRow):
    """A run step."""
    seq: int
    id: str
    tenant: str
    created_at: int
    run_id: str
    thread_id: str
    assistant_id: str
    type: str
    status: str
    step_details: Json
    last_error: Json | None
    usage: Json | None
    metadata_: Json
    cancelled_at: int | None
    completed_at: int | None
    expired_at: int | None
    failed_at: int | None


class ScriptedTurn(Record, mapped=tables.ScriptedTurnRow):
    """A model turn queued by a test."""
    seq: int
    id: str
    tenant: str
    created_at: int
    match: Json
    turn: Json
    consumed_at: int | None
    consumed_by_run: str | None
    request: Json | None


class FaultRule(Record, mapped=tables.FaultRuleRow):
    """A fault injection rule."""
    seq: int
    id: str
    tenant: str
    created_at: int
    rule: Json
    hits: int
    fired: int


class TenantSettings(Record, mapped=tables.TenantSettingsRow):
    """A tenant's control settings (rate limits, latency profile)."""
    tenant: str
    rate_limits: Json | None
    latency: Json | None


class RateCounter(Record, mapped=tables.RateCounterRow):
    """A one-minute window of a tenant's requests and tokens."""
    tenant: str
    bucket: str
    window_start: int
    requests: int
    tokens: int


class VectorStore(Record, mapped=tables.VectorStoreRow):
    """A vector store."""
    seq: int
    id: str
    tenant: str
    created_at: int
    name: str | None
    description: str | None
    metadata_: Json
    expires_after: Json | None
    last_active_at: int
    expires_at: int | None
    expired_at: int | None


class VectorStoreFileBatch(Record, mapped=tables.VectorStoreFileBatchRow):
    """A vector store file batch."""
    seq: int
    id: str
    tenant: str
    created_at: int
    vector_store_id: str
    cancelled_at: int | None


class VectorStoreFile(Record, mapped=tables.VectorStoreFileRow, key=("vector_store_id", "id")):
    """A file of a vector store (its parsed text, `content`, is read apart)."""
    seq: int
    id: str
    tenant: str
    created_at: int
    vector_store_id: str
    store_seq: int
    batch_id: str | None
    status: str
    last_error: Json | None
    chunking_strategy: Json
    attributes: Json
    filename: str
    usage_bytes: int
    chunk_count: int
    term_count: int
    observations: int


class VectorStoreChunk(Record, mapped=tables.VectorStoreChunkRow, key=("file_seq", "position")):
    """A chunk of a vector store file."""
    seq: int
    file_seq: int
    position: int
    text: str
    tokens: int
    length: int


class VectorStorePosting(Record, mapped=tables.VectorStorePostingRow):
    """One (term, file) entry of a vector store's inverted index."""
    store_seq: int
    term: str
    file_seq: int
    df: int
    postings: bytes
