"""AI jobs over HTTP against a real `assay serve` (contract section 5): submit, follow, cancel,
read the answer, the chart, Omni's error texts, and signed webhooks to a real receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from tests.server.conftest import MODEL_ID

TERMINAL = {"COMPLETE", "FAILED", "CANCELLED"}


def submit(api: httpx.Client, prompt: str, **extra: Any) -> dict[str, Any]:
    response = api.post("/api/v1/ai/jobs", json={"modelId": MODEL_ID, "prompt": prompt, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_state(
    api: httpx.Client, job_id: str, states: set[str], limit: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        doc: dict[str, Any] = api.get(f"/api/v1/ai/jobs/{job_id}").json()
        if doc["state"] in states:
            return doc
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {doc}")


def test_a_question_becomes_a_query_and_a_markdown_answer(api: httpx.Client) -> None:
    created = submit(api, "What is total revenue by region?")
    assert set(created) == {"jobId", "conversationId", "omniChatUrl"}
    assert created["omniChatUrl"].endswith(f"/chat/{created['conversationId']}")
    doc = wait_state(api, created["jobId"], TERMINAL)
    assert doc["state"] == "COMPLETE", doc
    for required in ("id", "state", "prompt", "conversationId", "modelId", "branchId",
                     "organizationId", "userId", "topicName", "omniChatUrl", "createdAt",
                     "updatedAt", "completedAt", "resultSummary"):  # fmt: skip
        assert required in doc, required
    assert doc["modelId"] == MODEL_ID and doc["progress"] is None

    result = api.get(f"/api/v1/ai/jobs/{created['jobId']}/result").json()
    queries = [a for a in result["actions"] if a["type"] == "generate_query"]
    assert len(queries) == 1
    assert queries[0]["result"]["status"] == "success"
    assert queries[0]["result"]["query"]["fields"] == ["region.r_name", "lineitem.revenue"]
    assert result["actions"][-1]["type"] == "summarize"
    # the answer names the five TPC-H regions it read from the real result
    for region in ("AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"):
        assert region in result["message"]

    chart = api.get(f"/api/v1/ai/jobs/{created['jobId']}/vis")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG")


def test_a_follow_up_in_the_same_conversation_builds_on_the_last_answer(api: httpx.Client) -> None:
    first = submit(api, "What is total revenue by region?")
    wait_state(api, first["jobId"], TERMINAL)
    follow = submit(api, "only for ASIA", conversationId=first["conversationId"])
    assert follow["conversationId"] == first["conversationId"]
    assert wait_state(api, follow["jobId"], TERMINAL)["state"] == "COMPLETE"
    result = api.get(f"/api/v1/ai/jobs/{follow['jobId']}/result").json()
    query = next(a for a in result["actions"] if a["type"] == "generate_query")["result"]["query"]
    assert "lineitem.revenue" in query["fields"]
    assert "ASIA" in json.dumps(query["filters"])


def test_one_active_job_per_conversation_and_cancel_stops_it(api: httpx.Client) -> None:
    busy = submit(api, "How many slow are there?")  # runs until cancelled
    executing = wait_state(api, busy["jobId"], {"EXECUTING"})
    assert set(executing["progress"]) == {"iteration", "message", "updatedAt"}
    assert executing["executionStartedAt"] and "completedAt" not in executing
    same = {
        "modelId": MODEL_ID,
        "prompt": "count of slow",
        "conversationId": busy["conversationId"],
    }
    again = api.post("/api/v1/ai/jobs", json=same)
    assert again.status_code == 409
    assert again.json()["detail"] == "An active job already exists for this conversation"
    assert api.get(f"/api/v1/ai/jobs/{busy['jobId']}/result").json()["detail"] == (
        "Job results not yet available"
    )

    cancelled = api.post(f"/api/v1/ai/jobs/{busy['jobId']}/cancel")
    assert cancelled.json() == {"jobId": busy["jobId"], "state": "CANCELLED"}
    doc = api.get(f"/api/v1/ai/jobs/{busy['jobId']}").json()
    assert doc["state"] == "CANCELLED" and "cancelledAt" in doc
    # idempotent, and the conversation is free again
    assert api.post(f"/api/v1/ai/jobs/{busy['jobId']}/cancel").json()["state"] == "CANCELLED"
    submit(api, "What is total revenue?", conversationId=busy["conversationId"])


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"modelId": MODEL_ID}, 400, "Bad Request: prompt: Required"),
        ({"modelId": MODEL_ID, "prompt": "   "}, 400, "Bad Request: prompt: Required"),
        ({"prompt": "revenue"}, 400, "Bad Request: modelId: Required"),
        ({"prompt": "revenue", "modelId": "nope"}, 400, "Bad Request: modelId: Invalid uuid"),
        ({"prompt": "revenue", "modelId": str(uuid.UUID(int=7))}, 404,
         f"Model {uuid.UUID(int=7)} not found"),
        ({"prompt": "revenue", "modelId": MODEL_ID, "topicName": "lineitems"}, 404,
         "Topic lineitems not found"),
        ({"prompt": "revenue", "modelId": MODEL_ID, "conversationId": "x"}, 400,
         "Bad Request: conversationId: Invalid uuid"),
        ({"prompt": "revenue", "modelId": MODEL_ID, "webhookUrl": "http://127.0.0.1:9/x"}, 400,
         "Bad Request: webhookSigningSecret: Required if webhookUrl is specified"),
        ({"prompt": "revenue", "modelId": MODEL_ID, "webhookUrl": "ftp://x",
          "webhookSigningSecret": "s"}, 400, "Bad Request: webhookUrl: Invalid url"),
    ],
)  # fmt: skip
def test_bad_submissions_get_omnis_messages(
    api: httpx.Client, body: dict[str, Any], status: int, detail: str
) -> None:
    response = api.post("/api/v1/ai/jobs", json=body)
    assert (response.status_code, response.json()["detail"]) == (status, detail)


def test_unknown_and_malformed_job_ids(api: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    for path in ("", "/result", "/vis"):
        response = api.get(f"/api/v1/ai/jobs/{missing}{path}")
        assert (response.status_code, response.json()["detail"]) == (404, "Job not found")
    response = api.get("/api/v1/ai/jobs/not-a-job")
    assert (response.status_code, response.json()["detail"]) == (400, "Invalid job ID")
    assert api.post(f"/api/v1/ai/jobs/{missing}/cancel").status_code == 404


def test_ai_endpoints_need_a_key(api: httpx.Client) -> None:
    response = httpx.post(f"{api.base_url}/api/v1/ai/jobs", json={"prompt": "x"})
    assert response.status_code == 401


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    _Receiver.received = []
    httpd = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/hook", _Receiver.received
    httpd.shutdown()
    httpd.server_close()


def test_the_terminal_webhook_is_signed_like_omnis(
    api: httpx.Client, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, received = receiver
    created = submit(api, "What is total revenue?", webhookUrl=url,
                     webhookSigningSecret="s3cret", webhookMetadata={"channel": "C1"})  # fmt: skip
    wait_state(api, created["jobId"], TERMINAL)
    deadline = time.monotonic() + 10
    while not received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(received) == 1
    headers, raw = received[0]
    timestamp = headers["X-Omni-Signature-Timestamp"]
    expected = hmac.new(b"s3cret", f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    assert headers["X-Omni-Signature"] == f"sha256={expected}"
    event = json.loads(raw)
    assert event["jobId"] == created["jobId"] and event["status"] == "COMPLETE"
    assert event["metadata"] == {"channel": "C1"}
    assert event["event_id"].startswith("evt_") and event["result_summary"]


def test_an_unanswerable_question_completes_with_a_refusal_and_runs_nothing(
    api: httpx.Client,
) -> None:
    created = submit(api, "what will the weather be tomorrow?")
    assert wait_state(api, created["jobId"], TERMINAL)["state"] == "COMPLETE"
    result = api.get(f"/api/v1/ai/jobs/{created['jobId']}/result").json()
    assert [a["type"] for a in result["actions"]] == ["summarize"]
    assert result["message"]
    chart = api.get(f"/api/v1/ai/jobs/{created['jobId']}/vis")
    assert chart.status_code == 422


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_a_single_number_is_a_card(api: httpx.Client) -> None:
    created = submit(api, "What is total revenue?")
    assert wait_state(api, created["jobId"], TERMINAL)["state"] == "COMPLETE"
    chart = api.get(f"/api/v1/ai/jobs/{created['jobId']}/vis")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    width, height = _png_size(chart.content)
    assert 200 <= width < 400 and 100 <= height < 200  # a card, not a plot


def test_a_follow_up_with_two_dimensions_is_charted(api: httpx.Client) -> None:
    first = submit(api, "revenue by region")
    wait_state(api, first["jobId"], TERMINAL)
    follow = submit(api, "and by year?", conversationId=first["conversationId"])
    assert wait_state(api, follow["jobId"], TERMINAL)["state"] == "COMPLETE"
    chart = api.get(f"/api/v1/ai/jobs/{follow['jobId']}/vis")
    assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
    width, height = _png_size(chart.content)
    assert width >= 600 and height >= 300 and 5_000 < len(chart.content) < 1_000_000


def test_a_named_topic_is_the_one_used(api: httpx.Client) -> None:
    created = submit(api, "revenue by region", topicName="orders")
    doc = wait_state(api, created["jobId"], TERMINAL)
    assert doc["state"] == "COMPLETE" and doc["topicName"] == "orders"
    result = api.get(f"/api/v1/ai/jobs/{created['jobId']}/result").json()
    query = next(a for a in result["actions"] if a["type"] == "generate_query")["result"]["query"]
    assert query["join_paths_from_topic_name"] == "orders" and result["topic"] == "orders"
