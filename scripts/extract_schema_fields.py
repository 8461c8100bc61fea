"""Extract each response object's field set from the official OpenAPI file into a test fixture.

The tests compare every body we return with these sets, so they pass on a machine without the OpenAPI file.
Run again when the contract changes: `python scripts/extract_schema_fields.py ../shared/openapi/assistants-v2.yaml`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

OBJECTS = [
    "AssistantObject", "ThreadObject", "MessageObject", "OpenAIFile", "Model", "RunObject", "RunStepObject",
    "VectorStoreObject", "VectorStoreFileObject", "VectorStoreFileBatchObject", "DeleteAssistantResponse",
    "DeleteThreadResponse", "DeleteMessageResponse", "DeleteFileResponse", "DeleteVectorStoreResponse",
    "DeleteVectorStoreFileResponse", "ListAssistantsResponse", "ListMessagesResponse", "ListFilesResponse",
    "ListModelsResponse", "ListRunsResponse", "ListRunStepsResponse", "MessageDeltaObject", "RunStepDeltaObject",
    "Error", "ListVectorStoresResponse", "ListVectorStoreFilesResponse", "VectorStoreSearchResultsPage",
    "VectorStoreSearchResultItem", "VectorStoreFileContentResponse",
]

TARGET = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "schema_fields.json"


def main(source: str) -> None:
    schemas = yaml.safe_load(Path(source).read_text())["components"]["schemas"]
    fields = {
        name: {
            "properties": sorted(schemas[name].get("properties", {})),
            "required": sorted(schemas[name].get("required", [])),
        }
        for name in OBJECTS
        if name in schemas
    }
    TARGET.write_text(json.dumps(fields, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(fields)} objects to {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/openapi/assistants-v2.yaml")
