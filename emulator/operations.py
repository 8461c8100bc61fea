"""The official operations (method, path template, operationId), as listed in the OpenAPI description.

Fault rules match on these names (e.g. `createRun`). Generated from `assistants-v2.yaml`; the path
templates use the official parameter names.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Final

OPERATIONS: Final = (
    ("GET", "/v1/assistants", "listAssistants"),
    ("POST", "/v1/assistants", "createAssistant"),
    ("GET", "/v1/assistants/{assistant_id}", "getAssistant"),
    ("POST", "/v1/assistants/{assistant_id}", "modifyAssistant"),
    ("DELETE", "/v1/assistants/{assistant_id}", "deleteAssistant"),
    ("GET", "/v1/files", "listFiles"),
    ("POST", "/v1/files", "createFile"),
    ("DELETE", "/v1/files/{file_id}", "deleteFile"),
    ("GET", "/v1/files/{file_id}", "retrieveFile"),
    ("GET", "/v1/files/{file_id}/content", "downloadFile"),
    ("GET", "/v1/models", "listModels"),
    ("GET", "/v1/models/{model}", "retrieveModel"),
    ("DELETE", "/v1/models/{model}", "deleteModel"),
    ("POST", "/v1/threads", "createThread"),
    ("POST", "/v1/threads/runs", "createThreadAndRun"),
    ("GET", "/v1/threads/{thread_id}", "getThread"),
    ("POST", "/v1/threads/{thread_id}", "modifyThread"),
    ("DELETE", "/v1/threads/{thread_id}", "deleteThread"),
    ("GET", "/v1/threads/{thread_id}/messages", "listMessages"),
    ("POST", "/v1/threads/{thread_id}/messages", "createMessage"),
    ("GET", "/v1/threads/{thread_id}/messages/{message_id}", "getMessage"),
    ("POST", "/v1/threads/{thread_id}/messages/{message_id}", "modifyMessage"),
    ("DELETE", "/v1/threads/{thread_id}/messages/{message_id}", "deleteMessage"),
    ("GET", "/v1/threads/{thread_id}/runs", "listRuns"),
    ("POST", "/v1/threads/{thread_id}/runs", "createRun"),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}", "getRun"),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}", "modifyRun"),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/cancel", "cancelRun"),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps", "listRunSteps"),
    ("GET", "/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}", "getRunStep"),
    ("POST", "/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "submitToolOuputsToRun"),
    ("GET", "/v1/vector_stores", "listVectorStores"),
    ("POST", "/v1/vector_stores", "createVectorStore"),
    ("GET", "/v1/vector_stores/{vector_store_id}", "getVectorStore"),
    ("POST", "/v1/vector_stores/{vector_store_id}", "modifyVectorStore"),
    ("DELETE", "/v1/vector_stores/{vector_store_id}", "deleteVectorStore"),
    ("POST", "/v1/vector_stores/{vector_store_id}/file_batches", "createVectorStoreFileBatch"),
    ("GET", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}", "getVectorStoreFileBatch"),
    ("POST", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel", "cancelVectorStoreFileBatch"),
    ("GET", "/v1/vector_stores/{vector_store_id}/file_batches/{batch_id}/files", "listFilesInVectorStoreBatch"),
    ("GET", "/v1/vector_stores/{vector_store_id}/files", "listVectorStoreFiles"),
    ("POST", "/v1/vector_stores/{vector_store_id}/files", "createVectorStoreFile"),
    ("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "getVectorStoreFile"),
    ("DELETE", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "deleteVectorStoreFile"),
    ("POST", "/v1/vector_stores/{vector_store_id}/files/{file_id}", "updateVectorStoreFileAttributes"),
    ("GET", "/v1/vector_stores/{vector_store_id}/files/{file_id}/content", "retrieveVectorStoreFileContent"),
    ("POST", "/v1/vector_stores/{vector_store_id}/search", "searchVectorStore"),
)


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    return tuple(
        (method, re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"), name)
        for method, template, name in OPERATIONS
    )


def operation_of(method: str, path: str) -> str | None:
    """The operationId of a request, or None for paths outside the official API (e.g. `/_emulator`)."""
    for candidate, pattern, name in _patterns():
        if candidate == method and pattern.match(path):
            return name
    return None
