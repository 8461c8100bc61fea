"""Recording upstream turns (`--record FILE`): the file is what `--script` loads, its matches replay each turn
on the same conversation and on no other, and it stays loadable after every append."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from emulator import migrate
from emulator.control import scripts as script_files
from emulator.db import create_db_engine
from emulator.runs import scripts
from emulator.schemas.control import AddTurns
from emulator.store.scripted_turns import GLOBAL_TENANT
from emulator.stub_model import FunctionCall, ModelRequest, ModelTurn, PromptMessage
from emulator.tables import ScriptedTurnRow
from emulator.testing import postgres_database
from emulator.upstream.backend import UpstreamBackend
from emulator.upstream.client import UpstreamClient
from emulator.upstream.config import UpstreamConfig
from emulator.upstream.deltas import FinishedTurn, UpstreamToolCall
from emulator.upstream.errors import UpstreamError
from emulator.upstream.recording import Recorder, replay_match, scripted_turn
from emulator.upstream.request import ConversationMessage, ToolCallOutcome, ToolRound, TurnRequest
from tests.fake_upstream import FakeToolCall, FakeUpstream, Reply

QUESTION = "What's the weather in Paris? (2+2) [x] $5 \\ ^"


def _request(text: str = QUESTION) -> TurnRequest:
    return TurnRequest(
        model="gpt-4o",
        instructions="Be brief.",
        messages=(
            ConversationMessage("user", "Hello"),
            ConversationMessage("assistant", "Hi"),
            ConversationMessage("user", text),
        ),
    )


def _call(name: str, arguments: dict[str, Any]) -> UpstreamToolCall:
    return UpstreamToolCall(id="call_1", name=name, arguments=json.dumps(arguments), parsed=arguments)


def _finished(text: str = "", *calls: UpstreamToolCall, finish: str = "stop") -> FinishedTurn:
    return FinishedTurn(text=text, tool_calls=calls, usage=None, finish_reason=finish)


def _loaded(path: Path, tmp_path: Path) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(match, turn) of each turn, as the emulator's own loader stored them, in order (on the suite's PostgreSQL
    server when `EMULATOR_TEST_DATABASE_URL` names one, else SQLite)."""
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    with contextlib.ExitStack() as stack:
        if admin_url:
            url = stack.enter_context(postgres_database(admin_url))
        else:
            url = f"sqlite:///{tmp_path / 'replay.sqlite3'}"
        engine = create_db_engine(url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        with Session(engine) as session:
            added = script_files.load_file(session, path, 0)
            session.commit()
            rows = session.execute(
                select(ScriptedTurnRow.match, ScriptedTurnRow.turn)
                .where(ScriptedTurnRow.tenant == GLOBAL_TENANT)
                .order_by(ScriptedTurnRow.seq)
            ).all()
    assert added == len(rows)
    return [(row.match, row.turn) for row in rows]


def _fits(match: dict[str, Any], last_user_text: str, assistant_id: str = "asst_replay") -> bool:
    run = SimpleNamespace(assistant_id=assistant_id, thread_id="thread_replay", metadata_={})
    request = ModelRequest(
        model="gpt-4o",
        instructions="",
        messages=(PromptMessage("user", "Hello"), PromptMessage("user", last_user_text)),
    )
    return scripts.fits(match, run, request)  # type: ignore[arg-type]


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_every_kind_of_turn_is_recorded_as_the_script_loader_reads_it(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"recorded{suffix}"
    recorder = Recorder(path)
    outcomes: list[FinishedTurn | UpstreamError] = [
        _finished("", _call("get_weather", {"city": "Paris"}), _call("get_time", {"zone": "CET"}), finish="tool_calls"),
        _finished("It is 18°C in Paris.【0:0†a.txt】"),
        _finished("", _call("file_search", {"query": "paris climate"}), finish="tool_calls"),
        _finished("", _call("code_interpreter", {"code": "print(2 + 2)"}), finish="tool_calls"),
        _finished("Cut sh", finish="length"),
        UpstreamError(
            "rate_limit_exceeded",
            "the upstream at http://x/v1/chat/completions is rate limited",
            kind="status",
            status=429,
        ),
    ]
    for count, outcome in enumerate(outcomes, start=1):
        recorder.record(_request(), outcome)
        raw = path.read_text()
        data = yaml.safe_load(raw) if suffix == ".yaml" else json.loads(raw)
        assert len(AddTurns.model_validate(data).turns) == count  # loadable after every append

    loaded = _loaded(path, tmp_path)
    assert [turn for _match, turn in loaded] == [
        {
            "type": "function_calls",
            "calls": [
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": {"zone": "CET"}},
            ],
        },
        {"type": "text", "text": "It is 18°C in Paris.【0:0†a.txt】"},
        {"type": "file_search", "query": "paris climate"},
        {"type": "code_interpreter", "code": "print(2 + 2)"},
        {"type": "incomplete", "reason": "max_completion_tokens", "text": "Cut sh"},
        {
            "type": "failure",
            "code": "rate_limit_exceeded",
            "message": "the upstream at http://x/v1/chat/completions is rate limited",
        },
    ]
    played = [scripts.to_model_turn(turn) for _match, turn in loaded]
    assert played[0] == ModelTurn(
        function_calls=(FunctionCall("get_weather", '{"city":"Paris"}'), FunctionCall("get_time", '{"zone":"CET"}'))
    )
    assert played[1] == ModelTurn(text="It is 18°C in Paris.【0:0†a.txt】")
    assert played[2] == ModelTurn(file_search_query="paris climate")
    assert played[3] == ModelTurn(code="print(2 + 2)")
    assert played[4] == ModelTurn(text="Cut sh", incomplete_reason="max_completion_tokens")
    assert played[5].error == ("rate_limit_exceeded", "the upstream at http://x/v1/chat/completions is rate limited")


def test_the_match_replays_on_the_same_last_message_and_no_other() -> None:
    match = replay_match(QUESTION)
    assert set(match) == {"message_regex"}
    assert _fits(match, QUESTION)
    for other in (
        "",
        "What's the weather in Paris?",
        f"{QUESTION}!",
        f"Oh. {QUESTION}",
        QUESTION.upper(),
        f"{QUESTION}\n",
    ):
        assert not _fits(match, other), other
    assert _fits(replay_match(""), "")
    assert not _fits(replay_match(""), "anything")


def test_a_match_on_the_assistant_holds_only_for_that_assistant() -> None:
    match = replay_match("Hi", assistant_id="asst_recorded")
    assert _fits(match, "Hi", assistant_id="asst_recorded")
    assert not _fits(match, "Hi", assistant_id="asst_other")


def test_a_recorded_session_replays_with_the_upstream_stopped(tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    first = _request("Weather in Paris?")
    second = TurnRequest(
        model=first.model,
        instructions=first.instructions,
        messages=first.messages,
        tool_rounds=(ToolRound((ToolCallOutcome("call_1", "get_weather", '{"city":"Paris"}', "18C"),)),),
    )

    async def record() -> None:
        async with UpstreamClient(UpstreamConfig(url=upstream.url)) as client:
            recorder = Recorder(path)
            for request in (first, second):
                recorder.record(request, await client.complete(request))

    with FakeUpstream() as upstream:
        upstream.reply(
            Reply(tool_calls=[FakeToolCall("get_weather", '{"city": "Paris"}')]),
            Reply(text="It is 18C in Paris."),
        )
        asyncio.run(record())
    loaded = _loaded(path, tmp_path)
    assert len(loaded) == 2
    assert all(_fits(match, "Weather in Paris?") for match, _turn in loaded)
    assert not any(_fits(match, "Weather in Rome?") for match, _turn in loaded)
    assert [scripts.to_model_turn(turn) for _match, turn in loaded] == [
        ModelTurn(function_calls=(FunctionCall("get_weather", '{"city":"Paris"}'),)),
        ModelTurn(text="It is 18C in Paris."),
    ]


def test_recording_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "turns.json"
    path.write_text(json.dumps({"turns": [{"type": "text", "text": "hand written"}]}))
    Recorder(path).record(_request("Hi"), _finished("Hello!"))
    Recorder(path).record(_request("Bye"), _finished("Goodbye!"))
    turns = json.loads(path.read_text())["turns"]
    assert [turn["text"] for turn in turns] == ["hand written", "Hello!", "Goodbye!"]
    assert [turn.get("match") for turn in turns] == [None, {"message_regex": r"\AHi\Z"}, {"message_regex": r"\ABye\Z"}]


@pytest.mark.parametrize("content", ["{not json", '{"other": []}', "[1, 2]"])
def test_a_file_that_is_not_scripted_turns_is_left_alone(tmp_path: Path, content: str) -> None:
    path = tmp_path / "mine.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="is not a file of scripted turns"):
        Recorder(path)
    assert path.read_text() == content


def test_turns_one_scripted_turn_cannot_say_are_refused() -> None:
    with pytest.raises(ValueError, match="one built-in tool call alone"):
        scripted_turn(_finished("", _call("file_search", {"query": "x"}), _call("get_weather", {})))
    with pytest.raises(ValueError, match="no string 'query' argument"):
        scripted_turn(_finished("", _call("file_search", {"q": "x"})))


def test_concurrent_appends_all_land_and_readers_never_see_half_a_file(tmp_path: Path) -> None:
    path = tmp_path / "busy.json"
    recorder = Recorder(path)
    recorder.record(_request("start"), _finished("started"))
    stop = threading.Event()
    bad: list[str] = []

    def read() -> None:
        while not stop.is_set():
            try:
                AddTurns.model_validate(json.loads(path.read_text()))
            except ValueError as exc:
                bad.append(str(exc))

    def write(worker: int) -> None:
        for number in range(10):
            recorder.record(_request(f"{worker}-{number}"), _finished(f"answer {worker}-{number} " + "x" * 2000))

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=write, args=(worker,)) for worker in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert bad == []
    turns = json.loads(path.read_text())["turns"]
    assert len(turns) == 81
    assert {turn["match"]["message_regex"] for turn in turns[1:]} == {
        rf"\A{worker}\-{number}\Z" for worker in range(8) for number in range(10)
    }
    assert not [name for name in path.parent.iterdir() if name.name.endswith(".tmp")]


def test_the_backend_is_made_from_the_settings_only_with_an_upstream(tmp_path: Path) -> None:
    assert UpstreamBackend.from_settings(None, None, None) is None
    with pytest.raises(ValueError, match="--record needs an upstream"):
        UpstreamBackend.from_settings(None, None, None, record=tmp_path / "r.json")
    backend = UpstreamBackend.from_settings("http://127.0.0.1:9/v1", "sk-x", "*=local", record=tmp_path / "r.json")
    assert backend is not None and backend.recorder is not None
    assert backend.config.upstream_model("gpt-4o") == "local"
    asyncio.run(backend.aclose())


def test_the_backend_records_answers_and_skips_failures_and_what_a_script_cannot_say(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "recorded.yaml"

    async def turn(backend: UpstreamBackend, request: TurnRequest) -> bool:
        try:
            async with backend.stream(request) as streamed:
                async for _delta in streamed:
                    pass
            outcome: FinishedTurn | UpstreamError = streamed.finished()
        except UpstreamError as error:
            outcome = error
        return await backend.record(request, outcome, run_id="run_test")

    async def session(url: str) -> list[bool]:
        backend = UpstreamBackend(UpstreamConfig(url=url), record=path)
        try:
            return [await turn(backend, _request(text)) for text in ("one", "two", "three")]
        finally:
            await backend.aclose()

    with FakeUpstream() as upstream:
        upstream.reply(
            Reply(text="first answer"),
            Reply(status=500),
            Reply(tool_calls=[FakeToolCall("file_search", '{"query": "q"}'), FakeToolCall("lookup", "{}")]),
        )
        logger = logging.getLogger("emulator.upstream")
        logger.addHandler(caplog.handler)  # directly: `emulator` may not propagate (`logs.configure`)
        try:
            written = asyncio.run(session(upstream.url))
        finally:
            logger.removeHandler(caplog.handler)
    assert written == [True, False, False]
    assert "run run_test: its upstream turn is not recorded" in caplog.text
    assert "file_search, lookup" in caplog.text
    loaded = _loaded(path, tmp_path)
    assert loaded == [({"message_regex": r"\Aone\Z"}, {"type": "text", "text": "first answer"})]
