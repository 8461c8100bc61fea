"""The usage and cost report (`GET /_emulator/usage`): tokens per model summed from the runs' own usage, cost
from the model table's prices, grouping by a run metadata key, a time range by the emulator clock, per tenant."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import httpx
import pytest
from openai import OpenAI
from openai.types.beta.threads import Run

from emulator import model_catalog
from tests.control_helpers import WEATHER, advance, now, script
from tests.server import RunningServer


def _run(client: OpenAI, model: str, text: str, metadata: dict[str, str] | None = None) -> Run:
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": text}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, metadata=metadata or {}
    )
    while run.status == "requires_action":
        outputs = [
            {"tool_call_id": call.id, "output": "sunny"}
            for call in run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
        ]
        run = client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run.id, thread_id=thread.id, tool_outputs=outputs
        )
    return run


def _expected(runs: list[Run]) -> dict[str, Any]:
    """The report's totals, derived from the runs' usage and the model table's prices."""
    models: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "runs": 0}
    )
    for run in runs:
        usage = run.usage
        assert usage is not None
        entry = models[run.model]
        entry["prompt_tokens"] += usage.prompt_tokens
        entry["completion_tokens"] += usage.completion_tokens
        entry["total_tokens"] += usage.total_tokens
        entry["runs"] += 1
    for model, entry in models.items():
        info = model_catalog.lookup(model)
        assert info is not None
        entry["cost_usd"] = pytest.approx(
            (
                entry["prompt_tokens"] * info.input_usd_per_million
                + entry["completion_tokens"] * info.output_usd_per_million
            )
            / 1_000_000,
            abs=1e-6,
        )
    return {
        "models": dict(models),
        "runs": len(runs),
        "cost_usd": pytest.approx(sum(entry["cost_usd"].expected for entry in models.values()), abs=1e-6),
    }


def _usage(control: httpx.Client, **params: Any) -> dict[str, Any]:
    response = control.get("/usage", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _totals(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report[key] for key in ("models", "runs", "cost_usd")}


def test_usage_report_sums_runs_prices_them_groups_and_filters(
    client: OpenAI, control: httpx.Client, server: RunningServer
) -> None:
    script(control, {"type": "text", "text": "A much longer scripted answer, to make the numbers differ. " * 5})
    a = _run(client, "gpt-5.5", "hello", {"user_id": "u1"})
    b = _run(client, "gpt-5.5", "Please get weather for Paris", {"user_id": "u2", "team": "x"})
    c = _run(client, "gpt-5-mini", "hi there", {"user_id": "u1"})
    script(control, {"type": "failure", "message": "nope"})
    e = _run(client, "gpt-5.5", "this one fails", {"user_id": "u2"})
    assert [run.status for run in (a, b, c, e)] == ["completed", "completed", "completed", "failed"]
    steps = client.beta.threads.runs.steps.list(run_id=b.id, thread_id=b.thread_id, order="asc").data
    assert [step.type for step in steps] == ["tool_calls", "message_creation"], "two model calls in one run"
    assert b.usage.total_tokens == sum(step.usage.total_tokens for step in steps)  # type: ignore[union-attr]
    advance(control, 120)
    later = now(control)
    d = _run(client, "gpt-5-mini", "after the break")
    assert d.created_at >= later > c.created_at

    report = _usage(control)
    assert report["object"] == "emulator.usage" and (report["start"], report["end"]) == (None, None)
    assert _totals(report) == _expected([a, b, c, d, e])
    assert sorted(report["models"]) == ["gpt-5-mini", "gpt-5.5"]
    assert report["models"]["gpt-5.5"]["runs"] == 3
    assert (report["code_interpreter_sessions"], report["code_interpreter_cost_usd"]) == (0, 0.0)
    assert "groups" not in report

    grouped = _usage(control, group_by="metadata.user_id")
    assert grouped["group_by"] == "metadata.user_id"
    assert _totals(grouped) == _totals(report)
    assert sorted(grouped["groups"]) == ["(none)", "u1", "u2"]
    assert grouped["groups"]["u1"] == _expected([a, c])
    assert grouped["groups"]["u2"] == _expected([b, e])
    assert grouped["groups"]["(none)"] == _expected([d])
    assert sorted(_usage(control, group_by="metadata.team")["groups"]) == ["(none)", "x"]

    since = _usage(control, start=later)
    assert (since["start"], since["end"]) == (later, None)
    assert _totals(since) == _expected([d])
    assert _totals(_usage(control, end=later)) == _expected([a, b, c, e]), "end is exclusive"
    window = _usage(control, start=a.created_at, end=later, group_by="metadata.user_id")
    assert sorted(window["groups"]) == ["u1", "u2"]
    assert _totals(_usage(control, start=later + 1000)) == {"models": {}, "runs": 0, "cost_usd": 0.0}

    other_key = "sk-test-someone-else-" + a.id
    with httpx.Client(
        base_url=f"{server.root_url}/_emulator", headers={"Authorization": f"Bearer {other_key}"}
    ) as other:
        assert _totals(_usage(other)) == {"models": {}, "runs": 0, "cost_usd": 0.0}


def test_prices_come_from_the_spec(control: httpx.Client) -> None:
    """The model table carries SPEC.md's prices, which the report uses."""
    prices = {
        name: (info.input_usd_per_million, info.output_usd_per_million)
        for name in ("gpt-5.5", "gpt-5.4", "gpt-5-mini")
        if (info := model_catalog.lookup(name)) is not None
    }
    assert prices == {"gpt-5.5": (5.0, 25.0), "gpt-5.4": (2.5, 15.0), "gpt-5-mini": (0.3, 1.2)}
    assert _totals(_usage(control)) == {"models": {}, "runs": 0, "cost_usd": 0.0}


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"group_by": "user_id"}, "group_by"),
        ({"group_by": "metadata."}, "group_by"),
        ({"start": -1}, "start"),
        ({"end": "yesterday"}, "end"),
    ],
)
def test_invalid_report_parameters_are_400(control: httpx.Client, params: dict, param: str) -> None:
    response = control.get("/usage", params=params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
