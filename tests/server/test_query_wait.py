"""``GET /api/v1/query/wait``: Omni's long-poll (shared/docs/omni-contract.md section 2.2).

Finished jobs come from the session server. Jobs held open on purpose (SLOW_QUERY) come from a
server of this module whose run window is 0, so /query/run hands their ids back at once.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import MODEL_ID, SLOW_QUERY, Server, make_home

WAIT = "/api/v1/query/wait"
RUN = "/api/v1/query/run"
LONG_POLL = 2.0  # ASSAY_WAIT_SECONDS of both servers
ERROR_KEYS = {"detail", "status", "error", "message"}
SOME_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"  # fixed: xdist workers must collect alike
ORDERS = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
          "fields": ["orders.o_orderpriority", "orders.count"]}  # fmt: skip


# ---------------------------------------------------------------------- helpers and fixtures


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "text/ndjson"
    assert response.text.endswith("\n")
    raw = response.text[:-1].split("\n")
    assert all(raw), f"blank line in {response.text!r}"
    return [json.loads(line) for line in raw]


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= ERROR_KEYS
    assert (body["detail"], body["message"], body["status"]) == (message, message, status)


def wait_url(ids: list[str]) -> str:
    """The exact request line omni-python-sdk and omni-app-mcp send: Python's urlencode of
    json.dumps(ids), so ``[`` ``"`` ``,`` are %-encoded and the space after a comma is ``+``."""
    return f"{WAIT}?{urllib.parse.urlencode({'job_ids': json.dumps(ids)})}"


def submit(client: httpx.Client, query: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Run a query; its lines and its job id."""
    lines = ndjson(client.post(RUN, json={"query": query}))
    (job_id,) = lines[0]["jobs_submitted"]
    return lines, job_id


def cancel(client: httpx.Client, ids: list[str]) -> None:
    assert client.post("/api/v1/query/cancel", json={"job_ids": ids}).status_code == 200


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    """A server whose /query/run answers at once: slow jobs' ids without waiting 5 s."""
    env = {"ASSAY_RUN_WAIT_SECONDS": "0", "ASSAY_WAIT_SECONDS": str(LONG_POLL)}
    srv = Server(make_home(tmp_path_factory.mktemp("quick")), tpch_path, env=env).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def quick_api(quick: Server) -> Iterator[httpx.Client]:
    token = quick.key("--org")
    with httpx.Client(base_url=quick.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as client:  # fmt: skip
        yield client


@pytest.fixture
def slow_job(quick_api: httpx.Client) -> Iterator[str]:
    """A job that runs until cancelled; cancelled when the test ends, whatever happened."""
    lines, job_id = submit(quick_api, SLOW_QUERY)
    assert lines[1:] == [{"remaining_job_ids": [job_id], "timed_out": "true"}]
    yield job_id
    cancel(quick_api, [job_id])


@pytest.fixture(scope="module")
def finished(server: Server, org_key: str) -> list[str]:
    """Two finished jobs on the session server."""
    ids = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {org_key}"},
                      timeout=60) as client:  # fmt: skip
        for limit in (3, 4):
            query = {**ORDERS, "limit": limit}
            lines, job_id = submit(client, query)
            assert lines[1]["status"] == "COMPLETE"
            ids.append(job_id)
    return ids


# ---------------------------------------------------------------------- the forms of job_ids


FORMS: list[Any] = [
    pytest.param(wait_url, id="json-urlencoded-plus"),
    pytest.param(lambda ids: f"{WAIT}?job_ids={json.dumps(ids, separators=(',', ':'))}",
                 id="json-compact"),
    pytest.param(lambda ids: f"{WAIT}?job_ids={urllib.parse.quote(json.dumps(ids))}",
                 id="json-space-as-%20"),
    pytest.param(lambda ids: f"{WAIT}?job_ids={','.join(ids)}", id="csv"),
    pytest.param(lambda ids: f"{WAIT}?job_ids={'%2C%20'.join(ids)}", id="csv-with-space"),
    pytest.param(lambda ids: f"{WAIT}?jobIds={','.join(ids)}", id="jobIds"),
]  # fmt: skip


def test_the_sdks_request_line_is_what_the_helper_builds() -> None:
    ids = ["3c90c3cc-0d44-4b50-8888-8dd25736052a", "572f5f28-c91f-453a-bb92-a1f89914a5bf"]
    assert wait_url(ids[:1]) == f"{WAIT}?job_ids=%5B%22{ids[0]}%22%5D"
    assert wait_url(ids) == f"{WAIT}?job_ids=%5B%22{ids[0]}%22%2C+%22{ids[1]}%22%5D"


@pytest.mark.parametrize("url", FORMS)
def test_every_form_of_job_ids_returns_the_finished_jobs(
    api: httpx.Client, finished: list[str], url: Callable[[list[str]], str]
) -> None:
    lines = ndjson(api.get(url(finished)))
    assert [line.get("job_id") for line in lines[:-1]] == finished
    assert all(line["status"] == "COMPLETE" and line["result"] for line in lines[:-1])
    assert lines[-1] == {"remaining_job_ids": [], "timed_out": "false"}


def test_a_finished_job_returns_at_once_without_a_header_line(
    api: httpx.Client, finished: list[str]
) -> None:
    response, elapsed = timed(lambda: api.get(wait_url(finished[:1])))
    assert elapsed < LONG_POLL / 2
    job, footer = ndjson(response)
    assert "jobs_submitted" not in job
    assert (job["job_id"], job["status"]) == (finished[0], "COMPLETE")
    assert {"client_result_id", "summary", "cache_metadata", "query", "result"} <= set(job)
    assert footer == {"remaining_job_ids": [], "timed_out": "false"}


def test_repeated_ids_give_one_line(api: httpx.Client, finished: list[str]) -> None:
    lines = ndjson(api.get(wait_url([finished[0], finished[0]])))
    assert [line.get("job_id") for line in lines] == [finished[0], None]


# ---------------------------------------------------------------------- errors


def test_no_job_ids_is_400(api: httpx.Client) -> None:
    for url in (WAIT, f"{WAIT}?job_ids=", f"{WAIT}?jobIds=", f"{WAIT}?other=1"):
        assert_error(api.get(url), 400, "job_ids parameter is required")


@pytest.mark.parametrize(
    "value",
    ["garbage", "[garbage", '["not-a-uuid"]', "{}", "[]", "[1]", '"x"',
     f"{SOME_ID},not-a-uuid", f'["{SOME_ID}"'],
)  # fmt: skip
def test_garbage_job_ids_are_400(api: httpx.Client, value: str) -> None:
    response = api.get(WAIT, params={"job_ids": value})
    assert_error(response, 400, "job_ids must be a valid JSON array of UUIDs")


def test_only_unknown_ids_is_404(api: httpx.Client) -> None:
    job_id = str(uuid.uuid4())
    assert_error(api.get(wait_url([job_id])), 404, f"Job with id {job_id} does not exist")
    other = str(uuid.uuid4())
    response = api.get(wait_url([job_id, other]))
    assert_error(response, 404, f"Job with id {job_id} does not exist")


def test_an_unknown_id_among_known_ones_is_a_failed_line(
    api: httpx.Client, finished: list[str]
) -> None:
    unknown = str(uuid.uuid4())
    lines = ndjson(api.get(wait_url([finished[0], unknown])))
    assert len(lines) == 3
    by_id = {line["job_id"]: line for line in lines[:-1]}
    assert by_id[finished[0]]["status"] == "COMPLETE"
    assert by_id[unknown]["status"] == "FAILED"
    assert by_id[unknown]["error_message"] == "Unable to find job"
    assert lines[-1] == {"remaining_job_ids": [], "timed_out": "false"}


# ---------------------------------------------------------------------- single JSON documents


def test_accept_application_json_gets_one_document(api: httpx.Client, finished: list[str]) -> None:
    json_only = {"Accept": "application/json"}
    one = api.get(wait_url(finished[:1]), headers=json_only)
    assert one.status_code == 200
    assert one.headers["content-type"].split(";")[0] == "application/json"
    doc = one.json()
    assert (doc["job_id"], doc["status"]) == (finished[0], "COMPLETE")
    assert doc["result"] and doc["remaining_job_ids"] == [] and doc["timed_out"] is False
    assert "jobs" not in doc and "jobs_submitted" not in doc
    both = api.get(wait_url(finished), headers=json_only).json()
    assert [job["job_id"] for job in both["jobs"]] == finished
    assert both["job_id"] == finished[0]
    assert both["timed_out"] is False


# ---------------------------------------------------------------------- slow jobs


def test_run_with_a_zero_window_hands_back_the_id_at_once(quick_api: httpx.Client) -> None:
    response, elapsed = timed(lambda: quick_api.post(RUN, json={"query": SLOW_QUERY}))
    header, footer = ndjson(response)
    (job_id,) = header["jobs_submitted"]
    cancel(quick_api, [job_id])
    assert footer == {"remaining_job_ids": [job_id], "timed_out": "true"}
    assert elapsed < 2.5  # the window is 0 s (the default would be 10 s)


def test_a_slow_job_gives_only_the_footer_after_the_long_poll(
    quick_api: httpx.Client, slow_job: str
) -> None:
    """NDJSON (string ``timed_out``) and a single JSON document (boolean), polled at once."""

    def poll(headers: dict[str, str]) -> tuple[httpx.Response, float]:
        return timed(lambda: quick_api.get(wait_url([slow_job]), headers=headers))

    with ThreadPoolExecutor(2) as pool:
        streamed = pool.submit(poll, {})
        single = pool.submit(poll, {"Accept": "application/json"})
        (stream, stream_elapsed), (document, document_elapsed) = streamed.result(), single.result()
    assert ndjson(stream) == [{"remaining_job_ids": [slow_job], "timed_out": "true"}]
    assert document.status_code == 200
    assert document.headers["content-type"].split(";")[0] == "application/json"
    assert document.json() == {"remaining_job_ids": [slow_job], "timed_out": True}
    for elapsed in (stream_elapsed, document_elapsed):
        assert LONG_POLL - 0.1 <= elapsed < LONG_POLL + 3


def test_a_cancelled_job_ends_failed_with_kill(quick_api: httpx.Client, slow_job: str) -> None:
    response = quick_api.post("/api/v1/query/cancel", json={"jobIds": slow_job})
    assert response.status_code == 200
    assert response.json() == {
        "jobs": [{"job_id": slow_job, "status": "FAILED", "error_type": "KILL"}]
    }
    job, footer = ndjson(quick_api.get(wait_url([slow_job])))
    assert (job["job_id"], job["status"], job["error_type"]) == (slow_job, "FAILED", "KILL")
    assert job["error_message"]
    assert "result" not in job
    assert footer == {"remaining_job_ids": [], "timed_out": "false"}


def test_a_wait_is_woken_by_the_job_ending_not_by_its_window(
    quick_api: httpx.Client, slow_job: str
) -> None:
    """Event driven: a wait started before the job ends answers as soon as it is cancelled."""
    answer: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: answer.setdefault("wait", quick_api.get(wait_url([slow_job])))
    )
    started = time.monotonic()
    thread.start()
    time.sleep(0.4)  # the wait is in flight on loopback
    assert thread.is_alive()
    cancel(quick_api, [slow_job])
    thread.join(LONG_POLL + 5)
    elapsed = time.monotonic() - started
    assert elapsed < LONG_POLL - 0.3, elapsed  # not woken by the window's end
    job, footer = ndjson(answer["wait"])
    assert (job["job_id"], job["status"], job["error_type"]) == (slow_job, "FAILED", "KILL")
    assert footer == {"remaining_job_ids": [], "timed_out": "false"}


def test_a_wait_on_a_finished_and_a_slow_job_returns_the_finished_one(
    quick_api: httpx.Client, slow_job: str
) -> None:
    """The finished job's line, and the slow one in the footer as still running."""
    planned = quick_api.post(RUN, json={"query": ORDERS, "planOnly": True})
    (done_id,) = ndjson(planned)[0]["jobs_submitted"]
    job, footer = ndjson(quick_api.get(wait_url([done_id, slow_job])))
    assert (job["job_id"], job["status"]) == (done_id, "PLANNED")
    assert footer == {"remaining_job_ids": [slow_job], "timed_out": "true"}
