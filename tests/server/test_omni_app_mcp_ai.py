"""omni-app-mcp's AI job tools, unchanged, against a real `assay serve` (contract section 5).

The tools in `omni_mcp.tools.ai` are called directly (no MCP transport), pointed at the server
as OMNI_BASE_URL / OMNI_API_KEY would point them: `omni_create_ai_job` (POST /v1/ai/jobs),
`omni_get_ai_job_status` (GET /v1/ai/jobs/{id}), `omni_get_ai_job_result` (GET .../result),
`omni_cancel_ai_job` (POST .../cancel) and `omni_ask_ai`, which chains create, poll and fetch.
Every tool returns a string; failures come back as `Error (<status>): ...` text built from the
response's `detail`, so those strings are what Omni's clients show for Assay's errors.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest

from tests.server.conftest import MODEL_ID, Server
from tests.server.test_omni_clients import UUID, RecordingTransport

pytestmark = pytest.mark.tpch

REVENUE_QUESTION = "What is total revenue by region?"
REVENUE_FIELDS = ["region.r_name", "lineitem.revenue"]
REGIONS = ("AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST")
SLOW_QUESTION = "How many slow are there?"  # runs against the `slow` view until cancelled
TERMINAL = {"COMPLETE", "FAILED", "CANCELLED"}
CREATED = re.compile(
    r"^Created AI job `(?P<job>[^`]+)` in conversation `(?P<conversation>[^`]+)`\. "
    r"Poll it with `omni_get_ai_job_status`, then read the answer with `omni_get_ai_job_result`\."
    r" Chat: (?P<chat>\S+)$"
)


@pytest.fixture
def ai_transport(
    server: Server, org_key: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RecordingTransport]:
    """omni-app-mcp's AI tools pointed at the session server, every exchange recorded."""
    from omni_mcp.client import OmniClient
    from omni_mcp.config import Settings
    from omni_mcp.tools import ai

    monkeypatch.setenv("OMNI_BASE_URL", server.url)
    monkeypatch.setenv("OMNI_API_KEY", org_key)
    settings = Settings()
    assert settings.api_root == f"{server.url}/api"
    transport = RecordingTransport()
    client = OmniClient(settings, transport=transport)
    monkeypatch.setattr(ai, "get_client", lambda: client)

    # omni_ask_ai polls no faster than every 2 s (its input's floor): shorten the real wait.
    async def short_sleep(seconds: float) -> None:
        await asyncio.sleep(min(seconds, 0.1))

    monkeypatch.setattr(ai, "_sleep", short_sleep)
    yield transport


def call(tool: Callable[[Any], Coroutine[Any, Any, str]], model: Any) -> str:
    text: str = asyncio.run(tool(model))
    return text


def create_job(prompt: str, **params: Any) -> str:
    from omni_mcp.tools.ai import CreateAiJobInput, omni_create_ai_job

    return call(omni_create_ai_job, CreateAiJobInput(model_id=MODEL_ID, prompt=prompt, **params))


def job_status(job_id: str, fmt: str = "json") -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.ai import GetAiJobStatusInput, omni_get_ai_job_status

    params = GetAiJobStatusInput(job_id=job_id, response_format=ResponseFormat(fmt))
    return call(omni_get_ai_job_status, params)


def job_result(job_id: str, fmt: str = "json") -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.ai import GetAiJobResultInput, omni_get_ai_job_result

    params = GetAiJobResultInput(
        job_id=job_id, timeout_seconds=60, response_format=ResponseFormat(fmt)
    )
    return call(omni_get_ai_job_result, params)


def cancel_job(job_id: str) -> str:
    from omni_mcp.tools.ai import CancelAiJobInput, omni_cancel_ai_job

    return call(omni_cancel_ai_job, CancelAiJobInput(job_id=job_id))


def ask_ai(prompt: str, fmt: str = "json", **params: Any) -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.ai import AskAiInput, omni_ask_ai

    inputs = AskAiInput(model_id=MODEL_ID, prompt=prompt, max_wait_seconds=60,
                        response_format=ResponseFormat(fmt), **params)  # fmt: skip
    return call(omni_ask_ai, inputs)


def created_ids(text: str) -> tuple[str, str]:
    """The job and conversation ids from omni_create_ai_job's confirmation line."""
    match = CREATED.match(text)
    assert match, text
    assert match["chat"].endswith(f"/chat/{match['conversation']}")
    assert UUID.fullmatch(match["job"]) and UUID.fullmatch(match["conversation"])
    return match["job"], match["conversation"]


def poll_status(job_id: str, states: set[str], limit: float = 60) -> dict[str, Any]:
    """Poll with the status tool (JSON output) until the job is in one of `states`."""
    deadline = time.monotonic() + limit
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        text = job_status(job_id)
        assert not text.startswith("Error"), text
        doc = json.loads(text)
        if doc["state"] in states:
            return doc
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {doc}")


def check_revenue_result(result: dict[str, Any]) -> None:
    """The decoded result: one successful generate_query with the expected fields, then the
    markdown summary naming every region."""
    queries = [a for a in result["actions"] if a["type"] == "generate_query"]
    assert len(queries) == 1
    query_result = queries[0]["result"]
    assert query_result["status"] == "success"
    assert query_result["query"]["fields"] == REVENUE_FIELDS
    assert query_result["totalRowCount"] == 5
    assert query_result["csvResult"].count("\n") == 5  # a header and five rows
    assert result["actions"][-1]["type"] == "summarize"
    assert isinstance(result["message"], str)
    for region in REGIONS:
        assert region in result["message"]


def test_create_poll_and_fetch_a_question(ai_transport: RecordingTransport) -> None:
    job_id, conversation_id = created_ids(create_job(REVENUE_QUESTION))
    request, response = ai_transport.exchanges[0]
    assert (request.method, request.url.path) == ("POST", "/api/v1/ai/jobs")
    assert json.loads(request.content) == {"modelId": MODEL_ID, "prompt": REVENUE_QUESTION}
    assert response.status_code == 201
    assert response.json()["jobId"] == job_id

    doc = poll_status(job_id, TERMINAL)
    assert doc["state"] == "COMPLETE", doc
    assert doc["id"] == job_id and doc["conversationId"] == conversation_id
    assert doc["modelId"] == MODEL_ID and doc["prompt"] == REVENUE_QUESTION
    assert doc["resultSummary"] and doc["progress"] is None
    assert {r.url.path for r, _ in ai_transport.exchanges[1:]} == {f"/api/v1/ai/jobs/{job_id}"}

    # The markdown status card reads the same fields.
    card = job_status(job_id, "markdown")
    assert card.startswith(f"# AI job `{job_id}`\n")
    assert "- State: **COMPLETE** (terminal)" in card
    assert f"- Prompt: {REVENUE_QUESTION}" in card
    assert f"- Conversation: `{conversation_id}`" in card
    assert f"- Model: `{MODEL_ID}` / branch `main`" in card
    assert f"- Completed: {doc['completedAt']}" in card
    assert f"## Result summary\n\n{doc['resultSummary']}" in card

    out = json.loads(job_result(job_id))
    assert out["jobId"] == job_id
    check_revenue_result(out["result"])
    assert out["result"]["omniChatUrl"].endswith(f"/chat/{conversation_id}")
    request, response = ai_transport.exchanges[-1]
    assert request.url.path == f"/api/v1/ai/jobs/{job_id}/result"
    assert response.headers["content-type"].startswith("application/json")

    # The markdown report: the answer, then each action with its query and a CSV preview.
    report = job_result(job_id, "markdown")
    assert report.startswith(f"# AI job result `{job_id}`\n")
    answer = report.split("## Answer\n\n", 1)[1].split("\n## Actions", 1)[0]
    assert "ASIA" in answer and answer.strip() == out["result"]["message"].strip()
    assert "### 1. `generate_query` — " in report
    assert re.search(r"- Query \*\*[^*]+\*\* — status `success`, 5 row\(s\)\n", report), report
    fenced = re.search(r"```json\n(.*?)\n```", report, re.S)
    assert fenced and json.loads(fenced[1])["fields"] == REVENUE_FIELDS
    csv = re.search(r"```csv\n(.*?)\n```", report, re.S)
    assert csv and "ASIA" in csv[1]
    assert "`summarize`" in report


def test_ask_ai_chains_create_poll_and_result(ai_transport: RecordingTransport) -> None:
    out = json.loads(ask_ai(REVENUE_QUESTION))
    check_revenue_result(out["result"])
    paths = [f"{r.method} {r.url.path}" for r, _ in ai_transport.exchanges]
    job_id = out["jobId"]
    assert paths[0] == "POST /api/v1/ai/jobs"
    assert paths[-1] == f"GET /api/v1/ai/jobs/{job_id}/result"
    assert set(paths[1:-1]) == {f"GET /api/v1/ai/jobs/{job_id}"}
    conversation_id = ai_transport.exchanges[0][1].json()["conversationId"]

    # A follow-up in the same conversation, rendered as markdown this time.
    text = ask_ai("only for ASIA", "markdown", conversation_id=conversation_id)
    assert text.startswith("# AI job result `"), text
    assert text.rstrip().endswith(
        f"_Conversation `{conversation_id}` — pass it back to ask a follow-up._"
    )
    fenced = re.search(r"```json\n(.*?)\n```", text, re.S)
    assert fenced, text
    query = json.loads(fenced[1])
    assert "lineitem.revenue" in query["fields"]
    assert "ASIA" in json.dumps(query["filters"])


def test_a_busy_conversation_answers_409_through_the_tools(
    ai_transport: RecordingTransport, api: httpx.Client
) -> None:
    busy, conversation_id = created_ids(create_job(SLOW_QUESTION))
    try:
        doc = poll_status(busy, {"EXECUTING"})
        assert doc["conversationId"] == conversation_id and "resultSummary" not in doc
        card = job_status(busy, "markdown")
        assert "- State: **EXECUTING**\n" in card  # not terminal
        assert "- Execution started: " in card and "- Completed: N/A" in card

        second = create_job("count of slow", conversation_id=conversation_id)
        assert second == (
            "Error (409): Conflict – An active job already exists for this conversation. "
            "The resource already exists or was modified concurrently; "
            "re-read the current state before retrying."
        )
        request, response = ai_transport.exchanges[-1]
        assert json.loads(request.content)["conversationId"] == conversation_id
        assert response.status_code == 409
        # omni_ask_ai surfaces the same error from its create step, and stops there.
        before = len(ai_transport.exchanges)
        assert ask_ai("count of slow", conversation_id=conversation_id) == second
        assert len(ai_transport.exchanges) == before + 1

        assert job_result(busy) == (
            "Error (404): Not found – Job results not yet available. "
            "Double-check the id (and that it belongs to this instance)."
        )

        assert cancel_job(busy) == f"Cancelled AI job `{busy}` (state: **CANCELLED**)."
        request, _ = ai_transport.exchanges[-1]
        assert (request.method, request.url.path) == ("POST", f"/api/v1/ai/jobs/{busy}/cancel")
        doc = poll_status(busy, {"CANCELLED"}, limit=5)
        assert doc["cancelledAt"]
        card = job_status(busy, "markdown")
        assert "- State: **CANCELLED** (terminal)" in card
        assert f"- Cancelled: {doc['cancelledAt']} by `{doc['cancelledBy']}`" in card
        # Idempotent, and the conversation is free again.
        assert cancel_job(busy) == f"Cancelled AI job `{busy}` (state: **CANCELLED**)."
        job_id, same = created_ids(
            create_job("What is total revenue?", conversation_id=conversation_id)
        )
        assert same == conversation_id and job_id != busy
        assert poll_status(job_id, TERMINAL)["state"] == "COMPLETE"
    finally:
        api.post(f"/api/v1/ai/jobs/{busy}/cancel")


def test_ask_ai_reports_a_job_cancelled_while_it_polls(
    ai_transport: RecordingTransport, api: httpx.Client
) -> None:
    """The job is cancelled from outside while omni_ask_ai waits on it."""

    async def scenario() -> tuple[str, str]:
        from omni_mcp.formatters import ResponseFormat
        from omni_mcp.tools.ai import AskAiInput, omni_ask_ai

        inputs = AskAiInput(model_id=MODEL_ID, prompt=SLOW_QUESTION, max_wait_seconds=60,
                            response_format=ResponseFormat.JSON)  # fmt: skip
        asking = asyncio.create_task(omni_ask_ai(inputs))
        deadline = time.monotonic() + 30
        while not ai_transport.exchanges and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        job_id: str = ai_transport.exchanges[0][1].json()["jobId"]
        while time.monotonic() < deadline:
            state = (await asyncio.to_thread(api.get, f"/api/v1/ai/jobs/{job_id}")).json()
            if state["state"] == "EXECUTING":
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(api.post, f"/api/v1/ai/jobs/{job_id}/cancel")
        text: str = await asyncio.wait_for(asking, 30)
        return job_id, text

    job_id, text = asyncio.run(scenario())
    try:
        conversation_id = ai_transport.exchanges[0][1].json()["conversationId"]
        assert text == (
            f"AI job `{job_id}` was **CANCELLED** before it produced an answer. "
            f"Conversation `{conversation_id}`."
        )
        assert not any(r.url.path.endswith("/result") for r, _ in ai_transport.exchanges)
    finally:
        api.post(f"/api/v1/ai/jobs/{job_id}/cancel")


def test_unknown_and_malformed_job_ids(ai_transport: RecordingTransport) -> None:
    missing = str(uuid.uuid4())
    not_found = (
        "Error (404): Not found – Job not found. "
        "Double-check the id (and that it belongs to this instance)."
    )
    assert job_status(missing) == not_found
    assert job_status(missing, "markdown") == not_found
    assert job_result(missing) == not_found
    assert cancel_job(missing) == not_found
    assert ask_ai("What is total revenue?", conversation_id="x") == (
        "Error (400): Bad request – Bad Request: conversationId: Invalid uuid. Check parameter "
        "values, required fields, and enum options; the API rejects unknown body keys."
    )
    assert job_status("not-a-job") == (
        "Error (400): Bad request – Invalid job ID. Check parameter values, required fields, "
        "and enum options; the API rejects unknown body keys."
    )
    assert create_job("revenue", topic_name="lineitems") == (
        "Error (404): Not found – Topic lineitems not found. "
        "Double-check the id (and that it belongs to this instance)."
    )
    # 4xx are never retried: one request per call.
    assert [resp.status_code for _, resp in ai_transport.exchanges] == [
        404, 404, 404, 404, 400, 400, 404,
    ]  # fmt: skip
