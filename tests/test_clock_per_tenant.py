"""Each tenant (API key) has its own clock: advancing one moves nothing of another's, on every path that reads
emulator time (thread retention and its sweeps, run expiry, model latency, vector store expiry, rate-limit
windows). Advances are bounded; the operator key alone moves every tenant at once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from openai import NotFoundError, OpenAI

from tests.control_helpers import WEATHER, fresh_window
from tests.extra_server import extra_server
from tests.server import RunningServer
from tests.storage import count, query, tenant_of

DAY = 86_400
RETENTION = 60 * DAY
SLACK = 30
"""Wall seconds a test may take between two reads of a clock (generous: the machine may be loaded)."""
HUNDRED_YEARS = 100 * 365 * DAY
LISTED, OTHER_LISTED = f"sk-listed-{uuid.uuid4().hex}", f"sk-listed-{uuid.uuid4().hex}"
OPERATOR = f"sk-operator-{uuid.uuid4().hex}"


class Tenant:
    """One key on one server: the SDK, and the control plane as that key."""

    def __init__(self, server: RunningServer, key: str | None = None) -> None:
        self.key = key or f"sk-test-{uuid.uuid4().hex}"
        self.sdk = OpenAI(base_url=server.base_url, api_key=self.key, max_retries=0)
        self.control = httpx.Client(
            base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )

    def now(self) -> int:
        response = self.control.get("/clock")
        assert response.status_code == 200, response.text
        return response.json()["now"]

    def advance(self, seconds: int, **extra: object) -> int:
        response = self.control.post("/clock/advance", json={"seconds": seconds, **extra})
        assert response.status_code == 200, response.text
        return response.json()["now"]


@pytest.fixture
def a(server: RunningServer) -> Tenant:
    return Tenant(server)


@pytest.fixture
def b(server: RunningServer) -> Tenant:
    return Tenant(server)


def _waiting_run(tenant: Tenant) -> tuple[str, str]:
    """A run of the tenant waiting for tool outputs (it expires 10 minutes after creation)."""
    assistant = tenant.sdk.beta.assistants.create(model="gpt-4o", tools=[WEATHER])  # type: ignore[list-item]
    thread = tenant.sdk.beta.threads.create(messages=[{"role": "user", "content": "weather in Paris?"}])
    run = tenant.sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id, tool_choice="required")
    assert tenant.sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"
    return thread.id, run.id


def test_advancing_one_tenant_leaves_anothers_threads_runs_and_clock_alone(
    a: Tenant, b: Tenant, server: RunningServer
) -> None:
    a_thread = a.sdk.beta.threads.create(messages=[{"role": "user", "content": "mine"}])
    b_thread = b.sdk.beta.threads.create(messages=[{"role": "user", "content": "theirs"}])
    b_run_thread, b_run = _waiting_run(b)
    a_before, b_before = a.now(), b.now()

    moved = a.advance(RETENTION + DAY)
    assert a_before + RETENTION + DAY <= moved <= a_before + RETENTION + DAY + SLACK
    assert count(server, "threads", id=a_thread.id) == 0, "the advance swept the advancing tenant's idle thread"
    assert count(server, "messages", thread_id=a_thread.id) == 0
    with pytest.raises(NotFoundError):
        a.sdk.beta.threads.retrieve(a_thread.id)

    assert b_before <= b.now() <= b_before + SLACK, "the other tenant's clock did not move"
    assert b.sdk.beta.threads.retrieve(b_thread.id).id == b_thread.id
    assert [m.content[0].text.value for m in b.sdk.beta.threads.messages.list(b_thread.id)] == ["theirs"]  # type: ignore[union-attr]
    assert b.sdk.beta.threads.runs.retrieve(b_run, thread_id=b_run_thread).status == "requires_action", (
        "not expired: 10 minutes have not passed on its tenant's clock"
    )
    assert count(server, "threads", tenant=tenant_of(b.key)) == 2


def test_a_run_expires_by_its_own_tenants_clock(a: Tenant, b: Tenant) -> None:
    a_thread, a_run = _waiting_run(a)
    b_thread, b_run = _waiting_run(b)
    a.advance(601)
    assert a.sdk.beta.threads.runs.retrieve(a_run, thread_id=a_thread).status == "expired"
    assert b.sdk.beta.threads.runs.retrieve(b_run, thread_id=b_thread).status == "requires_action"
    b.advance(601)
    assert b.sdk.beta.threads.runs.retrieve(b_run, thread_id=b_thread).status == "expired"


def test_latency_and_vector_store_expiry_follow_their_tenants_clock(a: Tenant, b: Tenant) -> None:
    assert b.control.post("/latency", json={"ttft_ms": 300_000}).status_code == 200
    assistant = b.sdk.beta.assistants.create(model="gpt-4o")
    thread = b.sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = b.sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    assert b.sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress"
    store = b.sdk.vector_stores.create(name="brief", expires_after={"anchor": "last_active_at", "days": 1})

    a.advance(2 * DAY)
    assert b.sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "in_progress", (
        "its generation time has not passed on its own clock"
    )
    assert b.sdk.vector_stores.retrieve(store.id).status == "completed"

    b.advance(301)
    assert b.sdk.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == "completed"
    b.advance(DAY)
    assert b.sdk.vector_stores.retrieve(store.id).status == "expired"


def _run_status(tenant: Tenant) -> str:
    assistant = tenant.sdk.beta.assistants.create(model="gpt-4o")
    thread = tenant.sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    return tenant.sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id).status


def test_a_rate_limit_window_follows_its_tenants_clock(a: Tenant, b: Tenant) -> None:
    fresh_window(b.control)
    limits = {"models": {"*": {"requests_per_minute": 1}}}
    assert b.control.post("/rate_limits", json=limits).status_code == 200
    assert [_run_status(b), _run_status(b)] == ["completed", "failed"]
    a.advance(120)
    assert _run_status(b) == "failed", "the window is still the same one on its tenant's clock"
    b.advance(60)
    assert _run_status(b) == "completed"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"seconds": 1000000000000000000000000000000}', "integer above maximum value"),
        (b'{"seconds": 9223372036854775808}', "integer above maximum value"),
        (b'{"seconds": 4611686018427387904}', "integer above maximum value"),
        (b'{"seconds": 1e30}', "expected an integer, but got a decimal"),
        (b'{"seconds": NaN}', ""),
        (b'{"seconds": Infinity}', ""),
        (b'{"seconds": -Infinity}', ""),
        (b'{"seconds": -86400}', "integer below minimum value"),
        (b'{"seconds": 0}', "integer below minimum value"),
        (b'{"seconds": true}', "expected an integer, but got a boolean"),
        (b'{"seconds": 60, "all_tenants": "yes"}', "expected a boolean"),
    ],
)
def test_an_advance_is_finite_positive_and_at_most_100_years(
    a: Tenant, b: Tenant, server: RunningServer, body: bytes, message: str
) -> None:
    a_before, b_before = a.now(), b.now()
    every_tenant = query(server, "SELECT offset_seconds FROM emulator_clock")
    response = a.control.post("/clock/advance", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and message in error["message"]
    assert a_before <= a.now() <= a_before + SLACK and b_before <= b.now() <= b_before + SLACK, "nothing moved"
    assert count(server, "tenant_clocks", tenant=tenant_of(a.key)) == 0
    assert query(server, "SELECT offset_seconds FROM emulator_clock") == every_tenant


def test_an_advance_moves_at_most_100_years(a: Tenant) -> None:
    before = a.now()
    too_far = a.control.post("/clock/advance", json={"seconds": HUNDRED_YEARS + 1})
    assert too_far.status_code == 400 and too_far.json()["error"] == {
        "message": "Invalid 'seconds': integer above maximum value. Expected a value <= 3153600000, but got "
        "3153600001 instead.",
        "type": "invalid_request_error",
        "param": "seconds",
        "code": "integer_above_max_value",
    }
    assert before + HUNDRED_YEARS <= a.advance(HUNDRED_YEARS) <= before + HUNDRED_YEARS + SLACK
    assert a.sdk.beta.threads.create().created_at >= before + HUNDRED_YEARS


# ---- the operator key and the background sweep (a server of their own) ------------------------------------


@pytest.fixture(scope="module")
def operated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """An allow-list without the operator key, and a background sweep every 0.2 s."""
    with extra_server(
        tmp_path_factory.mktemp("operated"),
        EMULATOR_API_KEYS=f"{LISTED},{OTHER_LISTED}",
        EMULATOR_ADMIN_KEY=OPERATOR,
        EMULATOR_RETENTION_SWEEP_SECONDS="0.2",
    ) as running:
        yield running


def test_the_operator_key_moves_every_tenant(operated: RunningServer) -> None:
    first, second, operator = Tenant(operated, LISTED), Tenant(operated, OTHER_LISTED), Tenant(operated, OPERATOR)
    idle = first.sdk.beta.threads.create()
    assert operator.sdk.beta.threads.create().object == "thread", "the operator key works on /v1 too"
    refused = first.control.post("/clock/advance", json={"seconds": 60, "all_tenants": True})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["param"] == "all_tenants" and "EMULATOR_ADMIN_KEY" in error["message"]
    first.advance(DAY)  # a tenant's own advance adds to what the operator moves
    befores = [tenant.now() for tenant in (first, second, operator)]
    health_before = httpx.get(f"{operated.root_url}/_emulator/health").json()["now"]
    assert first.now() - DAY - SLACK <= health_before <= second.now(), "health: a tenant's that never advanced"

    operator.advance(RETENTION, all_tenants=True)
    for tenant, before in zip((first, second, operator), befores, strict=True):
        assert before + RETENTION <= tenant.now() <= before + RETENTION + SLACK
    assert health_before + RETENTION <= httpx.get(f"{operated.root_url}/_emulator/health").json()["now"]
    assert count(operated, "threads", id=idle.id) == 0, "every tenant's threads past retention are swept at once"

    own = operator.advance(DAY)
    assert befores[0] + RETENTION <= first.now() <= befores[0] + RETENTION + SLACK, "without the flag: its own only"
    assert own >= befores[2] + RETENTION + DAY


def test_the_background_sweep_uses_each_tenants_clock(operated: RunningServer) -> None:
    first, second = Tenant(operated, LISTED), Tenant(operated, OTHER_LISTED)
    mine = first.sdk.beta.threads.create()
    theirs = second.sdk.beta.threads.create()
    first.advance(RETENTION - 8)
    assert count(operated, "threads", id=mine.id) == 1, "not yet past retention"
    deadline = time.monotonic() + 60
    while count(operated, "threads", id=mine.id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert count(operated, "threads", id=mine.id) == 0, "swept in the background, with no request of its tenant"
    assert count(operated, "threads", id=theirs.id) == 1
    assert second.sdk.beta.threads.retrieve(theirs.id).id == theirs.id


def test_the_operator_moving_every_clock_past_waiting_runs_lets_the_runner_finish_them(
    operated: RunningServer,
) -> None:
    """Every tenant's run that waits for its model (a 60 s latency profile), unread, is due once every clock has
    moved past its answer: a runner finishes each at once (the runs' due times came as much sooner)."""
    tenants = [Tenant(operated, LISTED), Tenant(operated, OTHER_LISTED)]
    runs = []
    for tenant in tenants:
        tenant.control.post("/latency", json={"ttft_ms": 60_000}).raise_for_status()
        assistant = tenant.sdk.beta.assistants.create(model="gpt-4o")
        thread = tenant.sdk.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        runs.append(tenant.sdk.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id).id)
    try:
        assert _stored_statuses(operated, runs, {"in_progress"}, 10) == ["in_progress"] * 2  # a minute away
        Tenant(operated, OPERATOR).advance(120, all_tenants=True)
        assert _stored_statuses(operated, runs, {"completed"}, 3) == ["completed"] * 2
        assert [query(operated, "SELECT observations FROM runs WHERE id = :id", id=run)[0][0] for run in runs] == [
            0, 0], "no read moved them"
    finally:
        for tenant in tenants:
            tenant.control.delete("/latency").raise_for_status()


def _stored_statuses(server: RunningServer, run_ids: list[str], wanted: set[str], seconds: float) -> list[str]:
    """The runs' statuses in the database once all are in `wanted`, or as they are after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        statuses = [query(server, "SELECT status FROM runs WHERE id = :id", id=run)[0][0] for run in run_ids]
        if set(statuses) <= wanted or time.monotonic() > deadline:
            return statuses
        time.sleep(0.05)
