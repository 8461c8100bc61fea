"""The upstream's configuration: the model map's syntax and meaning, the URL, and what messages may show."""

from __future__ import annotations

import pytest

from emulator.upstream.config import (
    ModelMap,
    UpstreamConfig,
    from_settings,
    parse_model_map,
    redact_url,
)
from emulator.upstream.request import chat_response_format, chat_tool, chat_tool_choice


def test_each_model_id_goes_to_its_upstream_model_and_the_rest_to_the_wildcard() -> None:
    models = parse_model_map("gpt-4o=llama3.1:8b,*=qwen2.5:7b")
    assert models == ModelMap(entries=(("gpt-4o", "llama3.1:8b"),), fallback="qwen2.5:7b")
    assert models.upstream_model("gpt-4o") == "llama3.1:8b"
    assert models.upstream_model("gpt-4o-mini") == "qwen2.5:7b"


def test_without_a_wildcard_unmapped_ids_pass_through() -> None:
    models = parse_model_map(" gpt-4o = llama3.1:8b , gpt-3.5-turbo=phi3 ")
    assert models.upstream_model("gpt-4o") == "llama3.1:8b"
    assert models.upstream_model("gpt-3.5-turbo") == "phi3"
    assert models.upstream_model("gpt-4-turbo") == "gpt-4-turbo"


@pytest.mark.parametrize("text", [None, "", "   "])
def test_an_empty_map_passes_every_id_through(text: str | None) -> None:
    assert parse_model_map(text) == ModelMap()
    assert parse_model_map(text).upstream_model("gpt-4o") == "gpt-4o"


def test_upstream_names_may_hold_colons_slashes_and_dots() -> None:
    models = parse_model_map("*=hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M")
    assert models.upstream_model("gpt-4o") == "hf.co/bartowski/Llama-3.2-3B-Instruct-GGUF:Q4_K_M"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "llama3.1:8b",
            "entry 'llama3.1:8b' has no '=': write ASSISTANTS_MODEL=UPSTREAM_MODEL, or *=UPSTREAM_MODEL for every "
            "model",
        ),
        ("gpt-4o=llama,,*=qwen", "entry 2 of 'gpt-4o=llama,,*=qwen' is empty"),
        ("gpt-4o=llama,", "entry 2 of 'gpt-4o=llama,' is empty"),
        ("=llama", "entry '=llama' names no Assistants model before '='"),
        ("gpt-4o=", "entry 'gpt-4o=' names no upstream model after '='"),
        ("gpt-4o=a,gpt-4o=b", "'gpt-4o' is mapped twice ('a' and 'b')"),
        ("*=a,*=b", "'*' is mapped twice ('a' and 'b')"),
    ],
)
def test_bad_syntax_is_refused_with_a_message_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_model_map(text)
    assert str(caught.value).startswith(f"upstream models: {message}")


def test_the_url_is_normalized_and_its_query_kept() -> None:
    config = UpstreamConfig(url=" http://127.0.0.1:11434/v1/ ")
    assert config.url == "http://127.0.0.1:11434/v1"
    assert config.completions_url == "http://127.0.0.1:11434/v1/chat/completions"
    azure = UpstreamConfig(url="https://me.openai.azure.com/openai/deployments/x/?api-version=2024-10-21")
    assert azure.completions_url == (
        "https://me.openai.azure.com/openai/deployments/x/chat/completions?api-version=2024-10-21"
    )
    assert azure.display_url == "https://me.openai.azure.com/openai/deployments/x/chat/completions"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:11434/v1", "is not an http:// or https:// URL with a host"),
        ("ftp://example.com/v1", "is not an http:// or https:// URL with a host"),
        ("http:///v1", "is not an http:// or https:// URL with a host"),
        ("http://127.0.0.1:11434/v1/chat/completions", "should be the API's base"),
    ],
)
def test_a_url_that_is_not_an_api_base_is_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        UpstreamConfig(url=url)


def test_credentials_never_show() -> None:
    config = UpstreamConfig(url="https://user:pw-secret@example.com:8443/v1?key=q-secret", api_key="sk-secret")
    assert config.display_url == "https://example.com:8443/v1/chat/completions"
    assert "secret" not in repr(config)
    assert redact_url("http://[::1]:8080/v1?x=1") == "http://[::1]:8080/v1"
    with pytest.raises(ValueError) as caught:
        UpstreamConfig(url="ftp://user:pw-secret@example.com/v1")
    assert "pw-secret" not in str(caught.value)


def test_settings_without_a_url_mean_the_stub() -> None:
    assert from_settings(None, None, None) is None
    assert from_settings("  ", None, "") is None
    config = from_settings("http://127.0.0.1:8080/v1", "", "*=local", timeout_seconds=5)
    assert config == UpstreamConfig(
        url="http://127.0.0.1:8080/v1", models=parse_model_map("*=local"), timeout_seconds=5
    )
    assert config is not None and config.api_key is None
    with pytest.raises(ValueError, match="no upstream URL"):
        from_settings(None, None, "*=local")
    with pytest.raises(ValueError, match="timeout must be positive"):
        from_settings("http://127.0.0.1:8080/v1", None, None, timeout_seconds=0)


def test_response_formats_map_to_chat_completions() -> None:
    assert chat_response_format("auto") is None
    assert chat_response_format(None) is None
    assert chat_response_format({"type": "text"}) is None
    assert chat_response_format({"type": "json_object"}) == {"type": "json_object"}
    schema = {"name": "answer", "description": "An answer.", "schema": {"type": "object"}, "strict": True}
    assert chat_response_format({"type": "json_schema", "json_schema": schema}) == {
        "type": "json_schema",
        "json_schema": schema,
    }
    with pytest.raises(ValueError, match="'xml'"):
        chat_response_format({"type": "xml"})


def test_tools_and_tool_choices_map_to_functions() -> None:
    function = {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}
    assert chat_tool({"type": "function", "function": function}) == {"type": "function", "function": function}
    built_in = chat_tool({"type": "code_interpreter"})
    assert built_in["function"]["name"] == "code_interpreter"
    assert built_in["function"]["parameters"]["properties"]["code"]["type"] == "string"
    assert chat_tool({"type": "file_search"})["function"]["parameters"]["properties"]["query"]["type"] == "string"
    for choice in ("auto", "none", "required"):
        assert chat_tool_choice(choice) == choice
    assert chat_tool_choice({"type": "function", "function": {"name": "f"}}) == {
        "type": "function",
        "function": {"name": "f"},
    }
    assert chat_tool_choice({"type": "code_interpreter"}) == {
        "type": "function",
        "function": {"name": "code_interpreter"},
    }
    with pytest.raises(ValueError, match="'browser'"):
        chat_tool({"type": "browser"})
