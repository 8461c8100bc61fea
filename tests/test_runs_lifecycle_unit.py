"""`runs.lifecycle`: what a run takes from its request before anything is stored (no server, no database)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from emulator.errors import InvalidRequest
from emulator.runs import lifecycle
from emulator.schemas.runs import FILE_SEARCH_CONTENT, CreateRun

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def _assistant(**fields: Any) -> Any:
    defaults = {"tools": [WEATHER], "instructions": "Be brief.", "response_format": "auto"}
    return SimpleNamespace(**{**defaults, **fields})


def test_include_takes_only_the_file_search_content() -> None:
    assert lifecycle.parse_include(None) == frozenset()
    assert lifecycle.parse_include([FILE_SEARCH_CONTENT]) == {FILE_SEARCH_CONTENT}
    with pytest.raises(InvalidRequest, match="Supported values"):
        lifecycle.parse_include(["step_details.everything"])


def test_the_run_takes_the_assistants_tools_unless_the_request_names_its_own() -> None:
    assert lifecycle.tools_of(CreateRun(assistant_id="asst_1"), _assistant()).tools == [WEATHER]
    body = CreateRun.model_validate({"assistant_id": "asst_1", "tools": [{"type": "file_search"}]})
    tools = lifecycle.tools_of(body, _assistant())
    assert [tool["type"] for tool in tools.tools] == ["file_search"]
    assert tools.searches_files and tools.choice == "auto"


@pytest.mark.parametrize(
    ("choice", "refusal"),
    [
        ({"type": "function", "function": {"name": "get_time"}}, "the function 'get_time' is not one of"),
        ({"type": "code_interpreter"}, "the tool 'code_interpreter' is not one of"),
        ({"type": "function"}, "Missing required parameter: 'tool_choice.function'"),
    ],
)
def test_a_tool_choice_outside_the_runs_tools_is_refused(choice: dict[str, Any], refusal: str) -> None:
    body = CreateRun.model_validate({"assistant_id": "asst_1", "tool_choice": choice})
    with pytest.raises(InvalidRequest, match=refusal):
        lifecycle.tools_of(body, _assistant())


def test_a_named_function_among_the_tools_is_the_choice() -> None:
    body = CreateRun.model_validate(
        {"assistant_id": "asst_1", "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
    )
    assert lifecycle.tools_of(body, _assistant()).choice == {"type": "function", "function": {"name": "get_weather"}}


def test_instructions_override_the_assistants_and_additional_ones_follow() -> None:
    assistant = _assistant()
    assert lifecycle.instructions(assistant, CreateRun(assistant_id="a"), None) == "Be brief."
    assert lifecycle.instructions(assistant, CreateRun(assistant_id="a", instructions="Be long."), "And kind.") == (
        "Be long.\nAnd kind."
    )
    assert lifecycle.instructions(_assistant(instructions=None), CreateRun(assistant_id="a"), None) == ""
