"""Message attachments for file_search: their files join the thread's vector store.

As on the hosted API, each file attached to a message with the file_search tool (on message creation, in
`threads.create(messages=…)`, in a run's `additional_messages`, in create-thread-and-run) is added to the
thread's vector store, the one in its `tool_resources.file_search.vector_store_ids` (a thread has at most one).
A thread with none (or whose store was deleted) gets a new store, with the expiry of thread stores
(`expires_after {anchor: last_active_at, days: 7}`); a thread whose store has expired refuses the message.
A file already in the store is not added again. The files are then processed like any vector store file
(`vector_store_ingest`), and a run waits for them before its first model call (`runs.file_search`).

A file_search attachment must be of a kind file_search reads (`parsers.DOCUMENTED_EXTENSIONS`): anything else
is refused with the hosted API's 400, before anything is stored.
"""

from __future__ import annotations

from emulator.context import Ctx
from emulator.errors import InvalidRequest
from emulator.ingest import parsers
from emulator.schemas.messages import CreateMessage
from emulator.schemas.vector_stores import CreateVectorStore
from emulator.services import vector_store_ingest as ingest
from emulator.services import vector_stores
from emulator.store import files as file_store
from emulator.store import threads as thread_store
from emulator.store import vector_store_files as store
from emulator.store.rows import File, VectorStore

_SUPPORTED_FILES_URL = "https://platform.openai.com/docs/assistants/tools/file-search/supported-files"


def add_from_message(ctx: Ctx, thread_id: str, body: CreateMessage, param: str) -> None:
    """Check the message's file_search attachments (whose files exist) and add them to the thread's store."""
    file_ids = file_search_ids(body)
    if file_ids:
        add_to_thread_store(ctx, thread_id, require_searchable(ctx, file_ids, param), param)


def file_search_ids(body: CreateMessage) -> list[str]:
    """The ids of the files attached for file_search, each once, in order."""
    return list(
        dict.fromkeys(
            attachment.file_id
            for attachment in body.attachments or []
            if any(tool.type == "file_search" for tool in attachment.tools)
        )
    )


def require_searchable(ctx: Ctx, file_ids: list[str], param: str) -> dict[str, File]:
    """The files by id (they exist: the caller checked), or the hosted API's 400 for a kind file_search does not
    read."""
    sources = file_store.live(ctx.session, ctx.tenant, file_ids, now=ctx.now)
    for file_id in file_ids:
        extension = parsers.extension_of(sources[file_id].filename)
        if extension not in parsers.DOCUMENTED_EXTENSIONS:
            raise InvalidRequest(
                f"Files with extensions [{extension or 'none'}] are not supported for retrieval. See "
                f"{_SUPPORTED_FILES_URL}",
                param=param,
                code="unsupported_file",
            )
    return sources


def add_to_thread_store(ctx: Ctx, thread_id: str, sources: dict[str, File], param: str) -> VectorStore:
    """Attach the files (those not there yet) to the thread's vector store, made if the thread has none."""
    vector_store = _thread_store(ctx, thread_id, param)
    adding = [file_id for file_id in sources if store.find(ctx.session, vector_store.id, file_id) is None]
    ingest.require_room(ctx, vector_store, adding, param)
    for file_id in adding:
        ingest.attach(ctx, vector_store, sources[file_id], chunking_strategy=None, attributes=None)
    vector_stores.touch(ctx, vector_store)
    return vector_store


def _thread_store(ctx: Ctx, thread_id: str, param: str) -> VectorStore:
    thread, _clock_offset = thread_store.get_with_clock(ctx.session, ctx.tenant, thread_id, lock=True)
    assert thread is not None, "the caller holds the live thread"
    resources = thread.tool_resources or {}
    for store_id in (resources.get("file_search") or {}).get("vector_store_ids", []):
        found = vector_stores.find_usable(ctx, store_id, param)
        if found is not None:
            return found
    created = vector_stores.create(
        ctx, CreateVectorStore.model_construct(expires_after=vector_stores.THREAD_STORE_EXPIRES_AFTER)
    )
    thread.tool_resources = {**resources, "file_search": {"vector_store_ids": [created.id]}}
    return created
