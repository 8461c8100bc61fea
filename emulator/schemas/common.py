"""Wire shapes shared by several resources: metadata, tools, tool resources, response formats, lists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from emulator import limits
from emulator.store.pagination import Page

Row = TypeVar("Row")


class StrictModel(BaseModel):
    """A request body: unknown fields are the real API's `Unrecognized request argument supplied`.

    Strict like the real API: `"1"` is not a number and `1` is not a string (an integer is still a decimal).
    """

    model_config = ConfigDict(extra="forbid", strict=True)


def openai_error(message: str, code: str = "invalid_value", *, about_param: bool = False) -> PydanticCustomError:
    """A validation error whose message is already the real API's text (see `emulator.validation`); with
    `about_param` it follows `Invalid '<param>': `, the parameter's path being known only there."""
    context = {"message": message, "code": code, "about_param": about_param}
    return PydanticCustomError("openai", "{message}", context)


def bounded_pairs(
    param: str, noun: str, *, max_pairs: int, key_chars: int, value_chars: int
) -> Callable[[dict[str, Any] | None], dict[str, Any] | None]:
    """A validator for a map with bounded size, key length and string value length (metadata, attributes),
    failing with the real API's texts: `Invalid '<param>': <noun> key '…' is too long. …`."""

    def check(value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if len(value) > max_pairs:
            raise openai_error(
                f"Invalid '{param}': too many properties. Expected an object with at most {max_pairs} properties, "
                f"but got an object with {len(value)} properties instead.",
                "object_above_max_properties",
            )
        for key, item in value.items():
            if len(key) > key_chars:
                raise openai_error(
                    f"Invalid '{param}': {noun} key '{key[:80]}' is too long. Expected a key with maximum length "
                    f"{key_chars}, but got a key with length {len(key)} instead.",
                    f"{noun}_key_too_long",
                )
            if isinstance(item, str) and len(item) > value_chars:
                raise openai_error(
                    f"Invalid '{param}': {noun} value for key '{key}' is too long. Expected a value with maximum "
                    f"length {value_chars}, but got a value with length {len(item)} instead.",
                    f"{noun}_value_too_long",
                )
        return value

    return check


_check_metadata = bounded_pairs(
    "metadata",
    "metadata",
    max_pairs=limits.METADATA_MAX_PAIRS,
    key_chars=limits.METADATA_KEY_MAX_CHARS,
    value_chars=limits.METADATA_VALUE_MAX_CHARS,
)
Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]


def _reject_refs(value: Any, path: str = "parameters") -> None:
    if isinstance(value, dict):
        if "$ref" in value:
            raise openai_error(f"Invalid schema for function: '$ref' is not supported (at {path}).")
        for key, item in value.items():
            _reject_refs(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _reject_refs(item, f"{path}[{index}]")


def _check_json_schema(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    _reject_refs(value)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        raise openai_error(f"Invalid schema for function: {exc.message}.", "invalid_function_parameters") from exc
    return value


JsonSchema = Annotated[dict[str, Any] | None, AfterValidator(_check_json_schema)]


class FunctionDefinition(StrictModel):
    name: Annotated[str, Field(pattern=limits.FUNCTION_NAME_PATTERN)]
    description: Annotated[str | None, Field(max_length=limits.FUNCTION_DESCRIPTION_MAX_CHARS)] = None
    parameters: JsonSchema = None
    strict: bool | None = None


class FunctionTool(StrictModel):
    type: Literal["function"]
    function: FunctionDefinition


class CodeInterpreterTool(StrictModel):
    type: Literal["code_interpreter"]


class RankingOptions(StrictModel):
    ranker: Literal["auto", "default_2024_08_21"] = "auto"
    score_threshold: Annotated[float, Field(ge=0, le=1)]


class FileSearchSettings(StrictModel):
    max_num_results: Annotated[int | None, Field(ge=1, le=50)] = None
    ranking_options: RankingOptions | None = None


class FileSearchTool(StrictModel):
    type: Literal["file_search"]
    file_search: FileSearchSettings | None = None


Tool = Annotated[FunctionTool | CodeInterpreterTool | FileSearchTool, Field(discriminator="type")]


def _unique_function_names(tools: list[Any] | None) -> list[Any] | None:
    seen: set[str] = set()
    for tool in tools or []:
        if isinstance(tool, FunctionTool):
            if tool.function.name in seen:
                raise openai_error(f"Invalid 'tools': duplicate function name '{tool.function.name}'.")
            seen.add(tool.function.name)
    return tools


AssistantTools = Annotated[
    list[Tool], Field(max_length=limits.ASSISTANT_MAX_TOOLS), AfterValidator(_unique_function_names)
]


def dump_tools(tools: Sequence[BaseModel]) -> list[dict[str, Any]]:
    return [tool.model_dump(exclude_none=True) for tool in tools]


class CodeInterpreterResources(StrictModel):
    file_ids: Annotated[list[str], Field(max_length=limits.CODE_INTERPRETER_MAX_FILES)] = []


class StaticChunkSizes(StrictModel):
    max_chunk_size_tokens: Annotated[int, Field(ge=limits.CHUNK_STATIC_MIN_TOKENS, le=limits.CHUNK_STATIC_MAX_TOKENS)]
    chunk_overlap_tokens: Annotated[int, Field(ge=0)]

    @field_validator("chunk_overlap_tokens")
    @classmethod
    def _at_most_half(cls, value: int, info: ValidationInfo) -> int:
        size = info.data.get("max_chunk_size_tokens")
        if size is not None and value * 2 > size:
            raise openai_error(
                f"Invalid 'chunk_overlap_tokens': chunk_overlap_tokens must not exceed half of "
                f"max_chunk_size_tokens. Expected a value <= {size // 2}, but got {value} instead.",
                "integer_above_max_value",
            )
        return value


class AutoChunking(StrictModel):
    type: Literal["auto"]


class StaticChunking(StrictModel):
    type: Literal["static"]
    static: StaticChunkSizes


ChunkingStrategy = Annotated[AutoChunking | StaticChunking, Field(discriminator="type")]
"""A vector store's chunking strategy: shared by the vector store requests and the helper below."""


class VectorStoreHelper(StrictModel):
    """`tool_resources.file_search.vector_stores[]`: a store built from file ids at assistant/thread creation."""

    file_ids: Annotated[list[str], Field(max_length=limits.VECTOR_STORE_MAX_FILES)] = []
    chunking_strategy: ChunkingStrategy | None = None
    metadata: Metadata = None


class FileSearchResources(StrictModel):
    vector_store_ids: list[str] = []
    vector_stores: list[VectorStoreHelper] | None = None


class ToolResources(StrictModel):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


class TextFormat(StrictModel):
    type: Literal["text"]


class JsonObjectFormat(StrictModel):
    type: Literal["json_object"]


class JsonSchemaSpec(StrictModel):
    name: Annotated[str, Field(pattern=limits.FUNCTION_NAME_PATTERN)]
    description: str | None = None
    schema_: Annotated[JsonSchema, Field(alias="schema")] = None
    strict: bool | None = None


class JsonSchemaFormat(StrictModel):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = (
    Literal["auto"] | Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")] | None
)


def dump_response_format(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value or "auto"
    return value.model_dump(exclude_none=True, by_alias=True)


Temperature = Annotated[float | None, Field(ge=limits.TEMPERATURE_MIN, le=limits.TEMPERATURE_MAX)]
TopP = Annotated[float | None, Field(ge=limits.TOP_P_MIN, le=limits.TOP_P_MAX)]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"] | None


def render_list(rows: Page[Row], render: Callable[[Row], dict[str, Any]]) -> dict[str, Any]:
    data = [render(row) for row in rows.rows]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": rows.has_more,
    }


def render_deleted(object_id: str, object_name: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_name, "deleted": True}
