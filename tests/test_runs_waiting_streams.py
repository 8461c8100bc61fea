"""Streams waiting for their model's first token (a 30 s latency profile) are woken by a cancel at once, sent to
their own server or to another replica, and cost no transaction while they wait.

The slow server and its replica share a database of their own: a fresh PostgreSQL database when
EMULATOR_TEST_DATABASE_URL is set, else a SQLite file (several processes on one file, WAL).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import openai
import psycopg
import pytest
from openai import OpenAI
from sqlalchemy.engine import make_url

from emulator.commits import TRANSACTION_BEGINS
from emulator.store import notifications
from tests.server import RunningServer, postgres_database, run_server

TTFT_MS = "30000"
CANCEL_ENDS_WITHIN_SECONDS = 2.0


@pytest.fixture(scope="module")
def slow_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    """A server whose model takes 30 s to its first token, logging every transaction, and a replica of it."""
    env = {"EMULATOR_LATENCY_TTFT_MS": TTFT_MS, "EMULATOR_LOG_LEVEL": "debug"}
    first_dir, second_dir = tmp_path_factory.mktemp("slow-a"), tmp_path_factory.mktemp("slow-b")
    admin_url = os.environ.get("EMULATOR_TEST_DATABASE_URL")
    database = postgres_database(admin_url) if admin_url else contextlib.nullcontext()
    with database as database_url, run_server(first_dir, database_url, **env) as first, run_server(
        second_dir, first.database_url, EMULATOR_LATENCY_TTFT_MS=TTFT_MS
    ) as second:
        yield first, second


def _client(server: RunningServer, key: str) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=60)


@dataclass
class WaitingStream:
    """A streamed run read in a thread with the official SDK: its events, and when it ended."""

    client: OpenAI
    thread_id: str
    assistant_id: str
    names: list[str] = field(default_factory=list)
    run_id: str = ""
    waiting: threading.Event = field(default_factory=threading.Event)
    ended_at: float | None = None
    error: openai.APIError | None = None
    """The `error` event the stream ended with (the SDK raises it)."""

    def start(self) -> threading.Thread:
        reader = threading.Thread(target=self._read, daemon=True)
        reader.start()
        return reader

    def _read(self) -> None:
        try:
            with self.client.beta.threads.runs.create(
                thread_id=self.thread_id, assistant_id=self.assistant_id, stream=True
            ) as stream:
                for event in stream:
                    self.names.append(event.event)
                    if event.event == "thread.run.created":
                        self.run_id = event.data.id
                    if event.event == "thread.message.in_progress":
                        self.waiting.set()  # the model's answer is 30 s away: the stream waits
        except openai.APIError as error:
            self.error = error
        self.ended_at = time.monotonic()


def _waiting_stream(client: OpenAI) -> WaitingStream:
    assistant = client.beta.assistants.create(model="gpt-4o")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "take your time"}])
    return WaitingStream(client, thread.id, assistant.id)


def _waiting_on(server: RunningServer) -> tuple[str, WaitingStream, threading.Thread]:
    """A new tenant's key, and its stream on `server`, read by a thread, once it waits for its model."""
    key = f"sk-waiting-{uuid.uuid4().hex}"
    stream = _waiting_stream(_client(server, key))
    reader = stream.start()
    assert stream.waiting.wait(15), stream.names
    return key, stream, reader


@pytest.mark.parametrize("canceller", ["the same server", "another replica"])
def test_a_cancel_ends_a_stream_waiting_for_a_slow_model_at_once(
    slow_servers: tuple[RunningServer, RunningServer], canceller: str
) -> None:
    first, second = slow_servers
    key, stream, reader = _waiting_on(first)
    time.sleep(1.5)  # well into its wait (before, the stream looked at its run once a second)
    other = _client(first if canceller == "the same server" else second, key)
    sent = time.monotonic()
    assert other.beta.threads.runs.cancel(stream.run_id, thread_id=stream.thread_id).status == "cancelling"
    reader.join(CANCEL_ENDS_WITHIN_SECONDS + 5)
    assert stream.ended_at is not None, f"the stream still waits: {stream.names}"
    assert stream.ended_at - sent < CANCEL_ENDS_WITHIN_SECONDS, f"ended {stream.ended_at - sent:.2f} s after the cancel"
    assert stream.names[-4:] == [
        "thread.run.cancelling", "thread.message.incomplete", "thread.run.step.cancelled", "thread.run.cancelled"
    ]
    run = other.beta.threads.runs.retrieve(stream.run_id, thread_id=stream.thread_id)
    assert run.status == "cancelled"


CLOCK_MOVERS = ["the same server", "another replica"] if os.environ.get("EMULATOR_TEST_DATABASE_URL") else [
    "the same server"]
"""On SQLite another process's clock advance is seen only when the wait ends (the timer looks at statuses)."""


@pytest.mark.parametrize("mover", CLOCK_MOVERS)
def test_a_clock_moved_past_expiry_ends_a_waiting_stream_at_once(
    slow_servers: tuple[RunningServer, RunningServer], mover: str
) -> None:
    first, second = slow_servers
    key, stream, reader = _waiting_on(first)
    time.sleep(0.5)
    root = (first if mover == "the same server" else second).root_url
    sent = time.monotonic()
    httpx.post(f"{root}/_emulator/clock/advance", json={"seconds": 3600},
               headers={"Authorization": f"Bearer {key}"}).raise_for_status()
    reader.join(CANCEL_ENDS_WITHIN_SECONDS + 5)
    assert stream.ended_at is not None and stream.ended_at - sent < CANCEL_ENDS_WITHIN_SECONDS, stream.names
    assert stream.names[-1] == "thread.run.expired"


def _delete_thread(server: RunningServer, key: str, thread_id: str) -> None:
    assert _client(server, key).beta.threads.delete(thread_id).deleted


def _reset_tenant(server: RunningServer, key: str, _thread_id: str) -> None:
    httpx.post(f"{server.root_url}/_emulator/reset", headers={"Authorization": f"Bearer {key}"}).raise_for_status()


@pytest.mark.parametrize(("remove", "where"), [
    (_delete_thread, "the same server"), (_delete_thread, "another replica"), (_reset_tenant, "the same server"),
])
def test_deleting_the_thread_ends_a_waiting_stream_at_once_with_an_error(
    slow_servers: tuple[RunningServer, RunningServer], remove: Callable[[RunningServer, str, str], None], where: str
) -> None:
    """The run went with its thread (deleted, or its tenant reset): no event of the run can end its stream, which
    ends at once with an `error` event saying what the thread's routes now answer (the SDK raises it). Before, the
    stream waited out its model's 30 s."""
    first, second = slow_servers
    key, stream, reader = _waiting_on(first)
    time.sleep(0.5)
    sent = time.monotonic()
    remove(first if where == "the same server" else second, key, stream.thread_id)
    reader.join(CANCEL_ENDS_WITHIN_SECONDS + 5)
    assert stream.ended_at is not None, f"the stream still waits: {stream.names}"
    assert stream.ended_at - sent < CANCEL_ENDS_WITHIN_SECONDS, f"ended {stream.ended_at - sent:.2f} s after"
    assert stream.names[-1] == "thread.message.in_progress"
    assert stream.error is not None and stream.error.message == f"No thread found with id '{stream.thread_id}'."
    assert stream.error.body == {"message": stream.error.message, "type": "invalid_request_error", "param": None,
                                 "code": None}
    with pytest.raises(openai.NotFoundError):
        _client(second, key).beta.threads.runs.retrieve(stream.run_id, thread_id=stream.thread_id)


def _transactions_begun(server: RunningServer) -> int:
    return (server.data_dir / "server.log").read_text().count(TRANSACTION_BEGINS.split(" %d ")[1])


def test_waiting_streams_cost_no_transaction_of_their_own(slow_servers: tuple[RunningServer, RunningServer]) -> None:
    """20 streams waiting for 3 s cost the process no more transactions than one stream does: the one timer that
    renews every waiting stream's lease at once (and, on SQLite, reads their statuses at once). Before, each
    stream re-read its run once a second in a write transaction (60 here, against 3)."""
    key = f"sk-waiting-{uuid.uuid4().hex}"
    first, _second = slow_servers
    client = _client(first, key)
    one = _transactions_while_waiting(client, first, 1)
    twenty = _transactions_while_waiting(client, first, 20)
    assert twenty <= one + 1, f"{twenty} transactions while 20 streams waited 3 s, {one} while one did"


def _transactions_while_waiting(client: OpenAI, server: RunningServer, count: int) -> int:
    """The transactions the server begins in 3 s while `count` streams wait for their model (then cancelled)."""
    streams = [_waiting_stream(client) for _ in range(count)]
    readers = [stream.start() for stream in streams]
    assert all(stream.waiting.wait(30) for stream in streams), "every stream waits for its model"
    time.sleep(1.0)  # each has looked at its run once more since it subscribed to its changes
    during = _transactions_in(server, 3.0)
    for stream in streams:
        client.beta.threads.runs.cancel(stream.run_id, thread_id=stream.thread_id)
    for reader in readers:
        reader.join(10)
    assert all(stream.names[-1] == "thread.run.cancelled" for stream in streams)
    return during


def _transactions_in(server: RunningServer, seconds: float) -> int:
    before = _transactions_begun(server)
    time.sleep(seconds)
    return _transactions_begun(server) - before


def test_the_transaction_log_counts(slow_servers: tuple[RunningServer, RunningServer]) -> None:
    """The count above can be other than zero: a request's transactions are seen."""
    first, _second = slow_servers
    before = _transactions_begun(first)
    _client(first, f"sk-waiting-{uuid.uuid4().hex}").beta.assistants.create(model="gpt-4o")
    time.sleep(0.2)
    assert _transactions_begun(first) > before


if os.environ.get("EMULATOR_TEST_DATABASE_URL"):  # PostgreSQL's LISTEN connection: only in the suite's PostgreSQL pass

    def test_a_replica_whose_listening_connection_dropped_listens_again(
        slow_servers: tuple[RunningServer, RunningServer],
    ) -> None:
        first, second = slow_servers
        assert _terminate_connections(first, notifications.APPLICATION_NAME) == 2, "each replica listens on one"
        time.sleep(1.0)  # the listeners connect again after 0.1 s
        _a_cancel_on_the_second_ends_a_stream_on_the_first(first, second)
        assert "listening for run notifications again" in (first.data_dir / "server.log").read_text()

    def test_a_replica_whose_notifying_connection_dropped_sends_on_a_new_one(
        slow_servers: tuple[RunningServer, RunningServer],
    ) -> None:
        first, second = slow_servers
        earlier = _waiting_stream(_client(second, f"sk-waiting-{uuid.uuid4().hex}"))
        run = earlier.client.beta.threads.runs.create(thread_id=earlier.thread_id, assistant_id=earlier.assistant_id)
        earlier.client.beta.threads.runs.cancel(run.id, thread_id=earlier.thread_id)  # news sent: it is connected
        dropped = _terminate_connections(first, notifications.SENDER_NAME)
        assert dropped >= 1, "a replica that committed a change sends news on a connection of its own"
        _a_cancel_on_the_second_ends_a_stream_on_the_first(first, second)

    def _terminate_connections(server: RunningServer, application_name: str) -> int:
        """PostgreSQL ends the connections of that name to the servers' database; how many it ended."""
        conninfo = make_url(server.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(conninfo, autocommit=True) as admin:
            return len(admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND application_name = %s",
                (application_name,),
            ).fetchall())

    def _a_cancel_on_the_second_ends_a_stream_on_the_first(first: RunningServer, second: RunningServer) -> None:
        key, stream, reader = _waiting_on(first)
        time.sleep(0.5)
        sent = time.monotonic()
        _client(second, key).beta.threads.runs.cancel(stream.run_id, thread_id=stream.thread_id)
        reader.join(CANCEL_ENDS_WITHIN_SECONDS + 5)
        assert stream.ended_at is not None and stream.ended_at - sent < CANCEL_ENDS_WITHIN_SECONDS, stream.names
        assert stream.names[-1] == "thread.run.cancelled"


