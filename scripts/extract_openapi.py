"""Extract the official operations (operationId, summary, responses) and the schemas they reference from the
official OpenAPI file into `emulator/openapi_official.json`, which the app's own OpenAPI description uses.

Run again when the contract changes: `python scripts/extract_openapi.py ../shared/openapi/assistants-v2.yaml`.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

TARGET = Path(__file__).resolve().parent.parent / "emulator" / "openapi_official.json"
METHODS = ("get", "post", "delete")
KEPT = ("operationId", "summary", "description", "responses")


def _references(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_references(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node))
    return set()


def _closure(spec: dict[str, Any], roots: set[str]) -> dict[str, dict[str, Any]]:
    """Every `#/components/...` entry reachable from `roots`, by kind (schemas, responses)."""
    kept: dict[str, dict[str, Any]] = {}
    pending = set(roots)
    while pending:
        ref = pending.pop()
        _, _, kind, name = ref.split("/", 3)
        if name in kept.setdefault(kind, {}):
            continue
        target = spec["components"][kind][name]
        kept[kind][name] = target
        pending |= _references(target)
    return kept


def main(source: str) -> None:
    raw = Path(source).read_bytes()
    spec = yaml.safe_load(raw)
    operations: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                operation = item[method]
                operations[f"{method.upper()} /v1{path}"] = {key: operation[key] for key in KEPT if key in operation}
    components = _closure(spec, _references(operations) | {"#/components/schemas/ErrorResponse"})
    extract = {
        "source": {"file": Path(source).name, "sha256": hashlib.sha256(raw).hexdigest()},
        "operations": operations,
        "components": components,
    }
    TARGET.write_text(json.dumps(extract, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(operations)} operations and {sum(map(len, components.values()))} components to {TARGET}")


if __name__ == "__main__":
    main(sys.argv[1])
