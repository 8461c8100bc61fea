"""ORM tables: the state of record. Nothing lives only in a process.

Every row has an integer `seq` primary key, the keyset for pagination (creation order, stable when several
rows share a `created_at`), and a public string `id`. Every tenant-owned row carries `tenant`, a digest of
the caller's API key; queries always filter on it, so another tenant's id is indistinguishable from none.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SeqType = BigInteger().with_variant(Integer(), "sqlite")
"""SQLite only treats a column declared exactly INTEGER as the fast rowid alias."""

Json = dict[str, Any]


NullableJson = JSON(none_as_null=True)
"""A JSON column that may be empty: Python None is SQL NULL (plain JSON would store the text 'null')."""


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {Json: JSON, list[Any]: JSON}


class ObjectRow(Base):
    """An API object: `seq` (the pagination keyset), its public `id`, its `tenant` and `created_at`."""

    __abstract__ = True

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    tenant: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)


class ClockRow(Base):
    """The offset of every tenant's clock (one row): moved only by the operator key (`EMULATOR_ADMIN_KEY`)."""

    __tablename__ = "emulator_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[int] = mapped_column(BigInteger, default=0)


class TenantClockRow(Base):
    """A tenant's own clock offset, added to every tenant's (`ClockRow`); no row means none."""

    __tablename__ = "tenant_clocks"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    offset_seconds: Mapped[int] = mapped_column(BigInteger)


class AssistantRow(ObjectRow):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_tenant_seq", "tenant", "seq"),)

    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(128))
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tool_resources: Mapped[Json] = mapped_column(JSON, default=dict)
    metadata_: Mapped[Json] = mapped_column("metadata", JSON, default=dict)
    temperature: Mapped[float | None]
    top_p: Mapped[float | None]
    response_format: Mapped[Any] = mapped_column(NullableJson, nullable=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))


class ThreadRow(ObjectRow):
    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_last_active_at", "last_active_at"),)

    last_active_at: Mapped[int] = mapped_column(BigInteger)
    tool_resources: Mapped[Json] = mapped_column(JSON, default=dict)
    metadata_: Mapped[Json] = mapped_column("metadata", JSON, default=dict)
    active_run_id: Mapped[str | None] = mapped_column(String(64))
    """The run that holds the thread: set and cleared by conditional updates, so at most one at a time."""


class MessageRow(ObjectRow):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_thread_seq", "thread_id", "seq"),
        Index("ix_messages_thread_run_seq", "thread_id", "run_id", "seq"),
    )

    thread_id: Mapped[str] = mapped_column(String(64), ForeignKey("threads.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list[Any]] = mapped_column(JSON, default=list)
    attachments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metadata_: Mapped[Json] = mapped_column("metadata", JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="completed")
    assistant_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    incomplete_at: Mapped[int | None] = mapped_column(BigInteger)
    incomplete_details: Mapped[Json | None] = mapped_column(NullableJson)


class FileRow(ObjectRow):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_tenant_seq", "tenant", "seq"),)

    bytes: Mapped[int] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="processed")
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    storage_path: Mapped[str] = mapped_column(Text)


class RunRow(ObjectRow):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread_seq", "thread_id", "seq"),
        Index("ix_runs_due_at", "due_at", postgresql_where=text("due_at IS NOT NULL"),
              sqlite_where=text("due_at IS NOT NULL")),
    )

    thread_id: Mapped[str] = mapped_column(String(64), ForeignKey("threads.id", ondelete="CASCADE"))
    assistant_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    instructions: Mapped[str] = mapped_column(Text, default="")
    tools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    tool_resources: Mapped[Json] = mapped_column(JSON, default=dict)
    metadata_: Mapped[Json] = mapped_column("metadata", JSON, default=dict)
    temperature: Mapped[float | None]
    top_p: Mapped[float | None]
    max_prompt_tokens: Mapped[int | None]
    max_completion_tokens: Mapped[int | None]
    truncation_strategy: Mapped[Json] = mapped_column(JSON)
    tool_choice: Mapped[Any] = mapped_column(NullableJson, nullable=True)
    parallel_tool_calls: Mapped[bool]
    response_format: Mapped[Any] = mapped_column(NullableJson, nullable=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    required_action: Mapped[Json | None] = mapped_column(NullableJson)
    last_error: Mapped[Json | None] = mapped_column(NullableJson)
    incomplete_details: Mapped[Json | None] = mapped_column(NullableJson)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_turn: Mapped[Json | None] = mapped_column(NullableJson)
    """The stub model's answer not yet fully delivered (so a poll can finish what a stream started)."""
    observations: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[float | None]
    """While a stream drives the run, it holds this lease (wall seconds) and observers do not advance it."""
    unfinished_work: Mapped[str | None] = mapped_column(String(32))
    """Risky work of the run that started and has not finished (`runs.safety`): a code cell, say."""
    interruptions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """How many times the run's risky work was found interrupted by a crash (`runs.safety`)."""
    due_at: Mapped[float | None]
    """When a runner should next move the run (wall seconds; `runs.schedule`); None while it waits for a client
    (requires_action, a `polls:N` policy) or has ended. A runner's claim pushes it a few seconds on."""


class RunStepRow(ObjectRow):
    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_seq", "run_id", "seq"),)

    run_id: Mapped[str] = mapped_column(String(64), ForeignKey("runs.id", ondelete="CASCADE"))
    thread_id: Mapped[str] = mapped_column(String(64))
    assistant_id: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    step_details: Mapped[Json] = mapped_column(JSON)
    last_error: Mapped[Json | None] = mapped_column(NullableJson)
    usage: Mapped[Json | None] = mapped_column(NullableJson)
    metadata_: Mapped[Json] = mapped_column("metadata", JSON, default=dict)
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    failed_at: Mapped[int | None] = mapped_column(BigInteger)


class ScriptedTurnRow(ObjectRow):
    """A model turn queued by a test for the stub model to play instead of its default (issue: control)."""

    __tablename__ = "scripted_turns"
    __table_args__ = (Index("ix_scripted_turns_tenant_pending_seq", "tenant", "consumed_at", "seq"),)

    match: Mapped[Json] = mapped_column(JSON, default=dict)
    turn: Mapped[Json] = mapped_column(JSON)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)
    consumed_by_run: Mapped[str | None] = mapped_column(String(64))
    request: Mapped[Json | None] = mapped_column(NullableJson)
    """What the model was asked when it played this turn: prompt messages, tools, truncation result."""


class FaultRuleRow(ObjectRow):
    __tablename__ = "fault_rules"
    __table_args__ = (Index("ix_fault_rules_tenant_seq", "tenant", "seq"),)

    rule: Mapped[Json] = mapped_column(JSON)
    hits: Mapped[int] = mapped_column(BigInteger, default=0)
    """How many requests the rule matched (its probability draws are numbered by it, so replays agree)."""
    fired: Mapped[int] = mapped_column(BigInteger, default=0)


class TenantSettingsRow(Base):
    """Per-tenant control settings: rate limits and latency profile."""

    __tablename__ = "tenant_settings"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    rate_limits: Mapped[Json | None] = mapped_column(NullableJson)
    latency: Mapped[Json | None] = mapped_column(NullableJson)


class RateCounterRow(Base):
    """Fixed one-minute windows by the emulator clock: requests and tokens per tenant and bucket."""

    __tablename__ = "rate_counters"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket: Mapped[str] = mapped_column(String(160), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class VectorStoreRow(ObjectRow):
    """A vector store. Its file counts and usage are aggregates of `vector_store_files`, never counters."""

    __tablename__ = "vector_stores"
    __table_args__ = (Index("ix_vector_stores_tenant_seq", "tenant", "seq"),)

    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    metadata_: Mapped[Json] = mapped_column("metadata", JSON, default=dict)
    expires_after: Mapped[Json | None] = mapped_column(NullableJson)
    last_active_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    expired_at: Mapped[int | None] = mapped_column(BigInteger)
    """Set once the clock passes `expires_at`: an expired store never comes back."""


class VectorStoreFileBatchRow(ObjectRow):
    __tablename__ = "vector_store_file_batches"
    __table_args__ = (Index("ix_vector_store_file_batches_store_seq", "vector_store_id", "seq"),)

    vector_store_id: Mapped[str] = mapped_column(String(64), ForeignKey("vector_stores.id", ondelete="CASCADE"))
    cancelled_at: Mapped[int | None] = mapped_column(BigInteger)


class VectorStoreFileRow(Base):
    """A file attached to a vector store. Its public `id` is the file's id, unique within the store only."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        UniqueConstraint("vector_store_id", "id", name="uq_vector_store_files_store_id"),
        Index("ix_vector_store_files_store_seq", "vector_store_id", "seq"),
        Index("ix_vector_store_files_store_status_seq", "vector_store_id", "status", "seq"),
        Index("ix_vector_store_files_batch_seq", "batch_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(64))
    vector_store_id: Mapped[str] = mapped_column(String(64), ForeignKey("vector_stores.id", ondelete="CASCADE"))
    store_seq: Mapped[int] = mapped_column(BigInteger)
    batch_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[Json | None] = mapped_column(NullableJson)
    chunking_strategy: Mapped[Json] = mapped_column(JSON)
    attributes: Mapped[Json] = mapped_column(JSON, default=dict)
    filename: Mapped[str] = mapped_column(Text)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    chunk_count: Mapped[int] = mapped_column(BigInteger, default=0)
    term_count: Mapped[int] = mapped_column(BigInteger, default=0)
    """Sum of the chunks' lengths in search terms (BM25's document lengths)."""
    observations: Mapped[int] = mapped_column(Integer, default=0)
    content: Mapped[str | None] = mapped_column(Text, deferred=True)
    """The parsed text (`GET .../content`); loaded only when asked for."""


class VectorStoreChunkRow(Base):
    """One chunk of a parsed file (internal: no public id). `length` is its number of search terms."""

    __tablename__ = "vector_store_chunks"
    __table_args__ = (UniqueConstraint("file_seq", "position", name="uq_vector_store_chunks_file_position"),)

    seq: Mapped[int] = mapped_column(SeqType, primary_key=True, autoincrement=True)
    file_seq: Mapped[int] = mapped_column(BigInteger, ForeignKey("vector_store_files.seq", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer)
    length: Mapped[int] = mapped_column(Integer)


class VectorStorePostingRow(Base):
    """The inverted index: for one store, term and file, the chunks holding the term (internal).

    `postings` packs little-endian uint32 triples `(chunk position, term frequency, chunk length)`; `df` is their
    number. One row per (term, file) rather than per (term, chunk) keeps the index several times smaller.
    """

    __tablename__ = "vector_store_postings"
    __table_args__ = (
        Index("ix_vector_store_postings_file", "file_seq"),
        {"sqlite_with_rowid": False},
    )

    store_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    term: Mapped[str] = mapped_column(String(255), primary_key=True)
    file_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    df: Mapped[int] = mapped_column(Integer)
    postings: Mapped[bytes] = mapped_column(LargeBinary)
