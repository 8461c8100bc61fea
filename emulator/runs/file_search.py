"""The file_search tool inside runs: which stores a run searches, the search itself, and citations.

A file_search call is a built-in tool: the executor opens a `tool_calls` step, searches the vector stores of
the thread and the assistant (`tool_resources.file_search.vector_store_ids`), stores the results on the step
(their `content` is shown only with `include[]`), and the next model call sees the chunks in its prompt. The
answer cites chunks with markers `【<search>:<result>†<filename>】`; each marker found whole in the final text
becomes a `file_citation` annotation whose `start_index`..`end_index` is exactly the marker.

Before its first model call, a run with the tool waits for the files of its thread's vector store still being
processed (message attachments, typically), as the hosted API did for up to 60 s; the assistant's stores are not
waited for. Here the wait follows the files' own progression (`EMULATOR_RUN_PROGRESSION`, as in
`vector_store_ingest`): each advance of the waiting run observes them once, and the run stays `queued` while any
is in progress; a stream observes them until they are done. After 60 s of emulator time the run goes on anyway.
"""

from __future__ import annotations

from typing import Any, Final

from emulator.context import Ctx
from emulator.runs import backends, resources
from emulator.runs.prompt import completed_tool_calls
from emulator.search import search_chunks
from emulator.store import threads
from emulator.store.rows import Run, RunStep
from emulator.stub_model import RetrievedChunk

DEFAULT_MAX_NUM_RESULTS: Final = 20
RANKER: Final = "default_2024_08_21"
THREAD_FILES_MAX_WAIT_SECONDS: Final = 60


def _tool(run: Run) -> dict[str, Any] | None:
    return next((tool for tool in run.tools if tool["type"] == "file_search"), None)


def store_ids(ctx: Ctx, run: Run) -> list[str]:
    """The vector stores a run searches: its thread's, then its assistant's (none without the tool)."""
    if _tool(run) is None:
        return []
    ids: list[str] = []
    for owned in resources.of_run(ctx, run):
        for store_id in (owned.get("file_search") or {}).get("vector_store_ids", []):
            if store_id not in ids:
                ids.append(store_id)
    return ids


def waits_for_thread_files(ctx: Ctx, run: Run, *, streaming: bool) -> bool:
    """Whether the run, not started yet, must still wait for its thread's files (observing them once, or until
    they are done when a stream drives it)."""
    if _tool(run) is None or run.started_at is not None or ctx.now >= run.created_at + THREAD_FILES_MAX_WAIT_SECONDS:
        return False
    thread_resources = threads.tool_resources_of(ctx.session, run.thread_id)
    thread_store_ids = (thread_resources.get("file_search") or {}).get("vector_store_ids", [])
    if not thread_store_ids:
        return False
    return backends.vector_stores().progress_pending(ctx, thread_store_ids, until_done=streaming)


def execute(ctx: Ctx, run: Run, query: str, call_id: str) -> dict[str, Any]:
    """Search the run's stores for `query`; the step's file_search tool call, results included."""
    settings = (_tool(run) or {}).get("file_search") or {}
    ranking = settings.get("ranking_options") or {}
    threshold = float(ranking.get("score_threshold", 0.0))
    usable = backends.vector_stores().prepare_for_search(ctx, store_ids(ctx, run))
    hits = search_chunks(
        ctx.session,
        ctx.tenant,
        usable,
        query,
        settings.get("max_num_results") or DEFAULT_MAX_NUM_RESULTS,
        threshold,
        None,
    )
    results = [
        {
            "file_id": hit.file_id,
            "file_name": hit.filename,
            "score": hit.score,
            "content": [{"type": "text", "text": hit.text}],
        }
        for hit in hits
    ]
    return {
        "id": call_id,
        "type": "file_search",
        "file_search": {"ranking_options": {"ranker": RANKER, "score_threshold": threshold}, "results": results},
    }


def retrieved(steps: list[RunStep]) -> list[RetrievedChunk] | None:
    """Every chunk the run's completed file_search calls (among its `steps`) found, in order; None if it has not
    searched."""
    searches = completed_tool_calls(steps, "file_search")
    if not searches:
        return None
    chunks: list[RetrievedChunk] = []
    for search_number, call in enumerate(searches):
        for index, result in enumerate(call["file_search"].get("results") or []):
            text = "".join(part["text"] for part in result.get("content") or [])
            marker = f"【{search_number}:{index}†{result['file_name']}】"
            chunks.append(RetrievedChunk(result["file_id"], result["file_name"], text, result["score"], marker))
    return chunks
