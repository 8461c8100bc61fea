"""Opt-in: a real model behind an OpenAI-compatible server answers runs through the emulator.

Defined only when `EMULATOR_TEST_REAL_UPSTREAM_URL` names one (e.g. `http://127.0.0.1:11434/v1` for Ollama,
`http://127.0.0.1:8080/v1` for llama.cpp's `llama-server`), with `EMULATOR_TEST_REAL_UPSTREAM_MODEL` the model it
serves; CI does not run it (no model can be installed from the package registries it reaches). A real model's
words differ from run to run: the tests check the shape of what comes back, and that a recording replays it
exactly.

    EMULATOR_TEST_REAL_UPSTREAM_URL=http://127.0.0.1:11434/v1 EMULATOR_TEST_REAL_UPSTREAM_MODEL=llama3.2:1b \\
        python -m pytest tests/test_real_model.py
"""

from __future__ import annotations

import os
from pathlib import Path

import openai

from emulator.testing import run_server

REAL_URL = os.environ.get("EMULATOR_TEST_REAL_UPSTREAM_URL")
REAL_MODEL = os.environ.get("EMULATOR_TEST_REAL_UPSTREAM_MODEL", "llama3.2:1b")
QUESTION = "Reply with one short sentence about the sea."


def _ask(client: openai.OpenAI) -> tuple[str, list[str], int]:
    """A streamed run: its final text, the text deltas it came in, and the completion tokens counted."""
    assistant = client.beta.assistants.create(model="gpt-4o", instructions="You are terse.")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": QUESTION}])
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=assistant.id) as stream:
        deltas = list(stream.text_deltas)
        run = stream.get_final_run()
    assert run.status == "completed", run.last_error
    assert run.usage is not None
    message = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert message.content[0].type == "text"
    return message.content[0].text.value, deltas, run.usage.completion_tokens


if REAL_URL:

    def test_a_real_model_answers_a_streamed_run_and_its_recording_replays(tmp_path: Path) -> None:
        recording = tmp_path / "turns.yaml"
        upstream = {"EMULATOR_UPSTREAM_URL": REAL_URL, "EMULATOR_UPSTREAM_MODELS": f"*={REAL_MODEL}",
                    "EMULATOR_RECORD": str(recording)}
        (tmp_path / "live").mkdir()
        (tmp_path / "replay").mkdir()
        with run_server(tmp_path / "live", **upstream) as server:
            text, deltas, completion_tokens = _ask(openai.OpenAI(base_url=server.base_url, api_key="sk-real"))
        assert text.strip() and "".join(deltas) == text
        assert completion_tokens > 0
        with run_server(tmp_path / "replay", EMULATOR_SCRIPT=str(recording)) as server:
            replayed, _deltas, _tokens = _ask(openai.OpenAI(base_url=server.base_url, api_key="sk-real"))
        assert replayed == text
