"""The fake LLM: a deterministic stand-in behind one small interface.

Input: the assembled prompt (instructions, the messages kept after truncation, tools, tool_choice,
parallel_tool_calls, response_format, and this run's tool results). Output: one turn, either text or
function calls. Scripted turns and other backends plug in by implementing `Model`.

The default behaviour, documented in the README:
- tool results present (outputs were just submitted): a text answer that quotes each output;
- `tool_choice` "none", or no function tools: a text answer;
- a named function: one call to it;
- "required": a call to every function the last user message asks for (all functions if it asks for none),
  or only the first of those when `parallel_tool_calls` is false;
- "auto": like "required" when the last user message asks for a function, otherwise a text answer.
- file_search: when the run has the file_search tool and vector stores, and `tool_choice` is "auto",
  "required" or file_search, the model first searches them for the last user message; the next call answers
  `According to the files: <first sentence of a chunk>【i:j†filename】 …` citing up to 3 chunks (or
  `I found nothing relevant in the files.`).
- code_interpreter: when the run has the tool, the model runs the first fenced ```python block of the last user
  message (with `tool_choice` code_interpreter and no block, it runs `print(<the message>)`); the next call
  answers `The code ran. Output:` and the cell's output, links `[name](sandbox:/mnt/data/name)` to the files it
  made (`file_path` annotations) and shows the images it made as `image_file` parts.

The last user message asks for a function when it contains the function's name (`get_weather`, or with spaces
for `_`/`-`: `get weather`), or a word of that name. The name is split on `_`, `-` and camelCase humps
(`getWeather`, `get-stock-price`); its words with fewer than 4 letters never count (`get`, `set`, `by`; digits
are not letters). The message is split the same way (any character but a letter or digit ends a word); words
compare case-insensitively, whole words only, with one final `s` ignored on both sides (`orders` ~ `order`).
So "What's the weather like in Paris today?" calls `get_weather`, "stock prices?" calls `get-stock-price`,
"any orders?" calls `lookupOrders`, and "weatherman" calls nothing. Consequences of a word rule: a common word
of 4+ letters in a name (`what_is_new`, `search_with_filters`, `get_user_info`) calls that function whenever a
message uses it ("what", "with", "user", "info"); functions sharing a word (`get_weather`, `weather_alerts`) are
called together; and as the final `s` goes on both sides, a 4-letter word ending in `s` also answers to its
3-letter singular (`latest-news` to "new"). Name functions by what they do, or choose exactly with a named
`tool_choice` or a scripted turn.

A text answer is `You said: <last user message>`; with `json_object` it is `{"answer": <that text>}`,
with `json_schema` a deterministic instance of the schema. Function arguments are deterministic
instances of each function's JSON Schema (strict mode fills every property). JSON is written as a model
writes it: non-ASCII characters as themselves, not as \\u escapes (they are counted as tokens that way).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulator.schema_instance import instance


@dataclass(frozen=True)
class PromptMessage:
    role: str
    text: str


@dataclass(frozen=True)
class ToolResult:
    call_id: str
    name: str
    arguments: str
    output: str


@dataclass(frozen=True)
class RetrievedChunk:
    """A chunk a file_search call of this run put in the prompt, with the marker that cites it."""

    file_id: str
    filename: str
    text: str
    score: float
    marker: str


@dataclass(frozen=True)
class Citation:
    marker: str
    file_id: str
    kind: str = "file_citation"
    """`file_citation` (a retrieved file) or `file_path` (a file the code interpreter made)."""


@dataclass(frozen=True)
class CodeFile:
    file_id: str
    filename: str
    image: bool


@dataclass(frozen=True)
class CodeResult:
    """What one code_interpreter call of this run produced."""

    code: str
    logs: str
    files: tuple[CodeFile, ...] = ()


@dataclass(frozen=True)
class ModelRequest:
    model: str
    instructions: str
    messages: tuple[PromptMessage, ...]
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    response_format: Any = "auto"
    tool_results: tuple[ToolResult, ...] = ()
    retrieved: tuple[RetrievedChunk, ...] | None = None
    """The chunks this run's file_search calls found (None: the run has not searched yet)."""
    can_search: bool = False
    """The run has the file_search tool and vector stores to search."""
    code_results: tuple[CodeResult, ...] | None = None
    """What this run's code_interpreter calls produced (None: it has run no code yet)."""
    can_run_code: bool = False
    """The run has the code_interpreter tool."""

    @property
    def last_user_text(self) -> str:
        return next((message.text for message in reversed(self.messages) if message.role == "user"), "")

    @property
    def functions(self) -> list[dict[str, Any]]:
        return [tool["function"] for tool in self.tools if tool.get("type") == "function"]


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: str


@dataclass(frozen=True)
class ModelTurn:
    """One answer of the model: text, function calls, or an error (scripted turns also make the others)."""

    text: str | None = None
    function_calls: tuple[FunctionCall, ...] = field(default_factory=tuple)
    error: tuple[str, str] | None = None
    """(code, message) of a failed call: the run ends `failed` with this `last_error`."""
    incomplete_reason: str | None = None
    """The call ends the run `incomplete` for this reason (its `text`, if any, is left in the message)."""
    chunk_size: int | None = None
    """Characters per streamed message delta; None means one word per delta."""
    file_search_query: str | None = None
    """The model searches the run's vector stores (a built-in tool: no `requires_action`)."""
    citations: tuple[Citation, ...] = ()
    """Markers in `text` citing files; the executor turns them into `file_citation` / `file_path` annotations."""
    code: str | None = None
    """Python for the code_interpreter tool (a built-in tool: no `requires_action`)."""
    images: tuple[str, ...] = ()
    """File ids shown as `image_file` parts after the text."""

    def __post_init__(self) -> None:
        kinds = (
            (self.text is not None) + bool(self.function_calls) + (self.error is not None)
            + (self.file_search_query is not None) + (self.code is not None)
        )
        if kinds != 1:
            raise ValueError("a turn is exactly one of: text, function calls, a file search, code, an error")


class Model(Protocol):
    def respond(self, request: ModelRequest) -> ModelTurn: ...


_MAX_CITED = 3
_FENCED_PYTHON = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL)
_SNIPPET_CHARS = 200


def _first_sentence(text: str) -> str:
    flat = " ".join(text.split())
    end = re.search(r"[.!?](\s|$)", flat)
    sentence = flat[: end.end()].strip() if end else flat
    return sentence[:_SNIPPET_CHARS]


_WORD = re.compile(r"[^\W_]+")
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_MIN_TRIGGER_LETTERS = 4


def _mentions(text: str, name: str) -> bool:
    spaced = name.replace("_", " ").replace("-", " ")
    pattern = rf"(?<![A-Za-z0-9_-])({re.escape(name)}|{re.escape(spaced)})(?![A-Za-z0-9_-])"
    return re.search(pattern, text, flags=re.IGNORECASE) is not None


def _words(text: str) -> list[str]:
    """Runs of letters and digits, split at `_`, `-`, any other non-word character and camelCase humps
    (`getHTTPStatus` -> get, http, status), lowercased."""
    return [part.lower() for token in _WORD.findall(text) for part in _CAMEL_HUMP.split(token) if part]


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") else word


def trigger_words(name: str) -> frozenset[str]:
    """The words of a function's name that call it when a user message contains them (singular forms)."""
    return frozenset(
        _singular(word) for word in _words(name) if sum(char.isalpha() for char in word) >= _MIN_TRIGGER_LETTERS
    )


def asks_for(text: str, name: str) -> bool:
    """Whether a user message asks for the function `name` (the rule in the module docstring)."""
    if _mentions(text, name):
        return True
    return not trigger_words(name).isdisjoint(_singular(word) for word in _words(text))


class StubModel:
    """The deterministic default model (see the module docstring for its rules)."""

    def respond(self, request: ModelRequest) -> ModelTurn:
        if request.tool_results:
            return ModelTurn(text=self._answer_with_results(request))
        chosen = self._choose_functions(request)
        if chosen:
            return ModelTurn(function_calls=tuple(self._call(function) for function in chosen))
        code = self._code_to_run(request)
        if code is not None:
            return ModelTurn(code=code)
        if request.code_results is not None:
            return self._answer_from_code(request)
        if self._searches(request):
            return ModelTurn(file_search_query=request.last_user_text)
        if request.retrieved is not None:
            return self._answer_from_files(request)
        return ModelTurn(text=self._answer(request))

    @staticmethod
    def _code_to_run(request: ModelRequest) -> str | None:
        if not request.can_run_code or request.code_results is not None or request.tool_choice == "none":
            return None
        block = _FENCED_PYTHON.search(request.last_user_text)
        choice = request.tool_choice
        if isinstance(choice, dict):
            if choice.get("type") != "code_interpreter":
                return None
            return block.group(1) if block else f"print({request.last_user_text!r})"
        return block.group(1) if block else None

    def _answer_from_code(self, request: ModelRequest) -> ModelTurn:
        results = request.code_results or ()
        logs = "\n".join(result.logs.rstrip("\n") for result in results).strip("\n")
        text = f"The code ran. Output:\n{logs}" if logs else "The code ran and printed nothing."
        citations = []
        for result in results:
            for made in result.files:
                if not made.image:
                    marker = f"sandbox:/mnt/data/{made.filename}"
                    text += f"\n[{made.filename}]({marker})"
                    citations.append(Citation(marker, made.file_id, "file_path"))
        images = tuple(made.file_id for result in results for made in result.files if made.image)
        if isinstance(request.response_format, dict):
            return ModelTurn(text=self._format(request, text))
        return ModelTurn(text=text, citations=tuple(citations), images=images)

    @staticmethod
    def _searches(request: ModelRequest) -> bool:
        if not request.can_search or request.retrieved is not None or request.tool_choice == "none":
            return False
        choice = request.tool_choice
        return not isinstance(choice, dict) or choice.get("type") == "file_search"

    def _answer_from_files(self, request: ModelRequest) -> ModelTurn:
        cited = request.retrieved[:_MAX_CITED] if request.retrieved else ()
        if not cited:
            return ModelTurn(text=self._format(request, "I found nothing relevant in the files."))
        parts = [f"{_first_sentence(chunk.text)}{chunk.marker}" for chunk in cited]
        text = "According to the files: " + " ".join(parts)
        if isinstance(request.response_format, dict):
            return ModelTurn(text=self._format(request, text))
        return ModelTurn(text=text, citations=tuple(Citation(chunk.marker, chunk.file_id) for chunk in cited))

    def _choose_functions(self, request: ModelRequest) -> list[dict[str, Any]]:
        choice = request.tool_choice
        functions = request.functions
        if choice == "none" or not functions:
            return []
        if isinstance(choice, dict):
            if choice.get("type") != "function":
                return []
            wanted = choice["function"]["name"]
            return [function for function in functions if function["name"] == wanted]
        named = [function for function in functions if asks_for(request.last_user_text, function["name"])]
        if choice == "required" and not named:
            named = functions
        return named if request.parallel_tool_calls else named[:1]

    @staticmethod
    def _call(function: dict[str, Any]) -> FunctionCall:
        arguments = instance(function.get("parameters") or {"type": "object"}, strict=bool(function.get("strict")))
        return FunctionCall(
            name=function["name"], arguments=json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
        )

    def _answer(self, request: ModelRequest) -> str:
        return self._format(request, f"You said: {request.last_user_text}")

    def _answer_with_results(self, request: ModelRequest) -> str:
        parts = [f"{result.name} returned {result.output}" for result in request.tool_results]
        return self._format(request, "Based on the tool results: " + "; ".join(parts) + ".")

    @staticmethod
    def _format(request: ModelRequest, text: str) -> str:
        response_format = request.response_format
        if not isinstance(response_format, dict):
            return text
        if response_format.get("type") == "json_object":
            return json.dumps({"answer": text}, ensure_ascii=False)
        if response_format.get("type") == "json_schema":
            spec = response_format["json_schema"]
            value = instance(spec.get("schema") or {"type": "object"}, hint=text, strict=bool(spec.get("strict")))
            return json.dumps(value, ensure_ascii=False)
        return text
