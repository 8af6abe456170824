"""What an operator sees of a real `assay serve`: /metrics counts exactly what happened, every
request and job transition is one JSON log line tied together by a request id, and no log
line carries a key or a password."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from assay.config import Settings
from assay.errors import ConfigError
from assay.server.logs import scrub
from assay.server.metrics import ScrapePolicy
from tests.server.conftest import MODEL_ID, SLOW_QUERY, Server, make_home

TOKEN = "scrape-" + uuid.uuid4().hex
PASSWORD = "pw-" + uuid.uuid4().hex
RATE = 8  # requests a minute per key


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    """JSON logs, a scrape token, a rate limit, and a connection whose URL holds a password
    (to a port where nothing listens: its model is served unchecked, and the start-up says so)."""
    root = tmp_path_factory.mktemp("observed")
    home = make_home(root)
    other = root / "warehouse"
    other.mkdir()
    (other / "numbers.view.yaml").write_text(
        "sql: SELECT n FROM generate_series(1, 3) AS t(n)\ndimensions:\n  n: {primary_key: true}\n"
    )
    (other / "numbers.topic.yaml").write_text("base_view: numbers\n")
    env = {
        "ASSAY_LOG_FORMAT": "json",
        "ASSAY_METRICS_TOKEN": TOKEN,
        "ASSAY_RATE_LIMIT_PER_MINUTE": str(RATE),
        "ASSAY_CONNECTIONS": json.dumps({
            "tpch": f"duckdb:///{tpch_path}",
            "warehouse": f"postgresql://assay:{PASSWORD}@127.0.0.1:9/nowhere",
        }),
        "ASSAY_MODELS": json.dumps([
            {"folder": str(home / "models" / "tpch"), "connection": "tpch"},
            {"folder": str(other), "connection": "warehouse"},
        ]),
    }  # fmt: skip
    server = Server(home, tpch_path, env=env).start()
    yield server
    server.stop()


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def moved(before: dict[Any, float], after: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def log_lines(server: Server) -> list[dict[str, Any]]:
    text = (server.home / f"serve-{server.port}.log").read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_metrics_move_by_exactly_what_was_asked(observed: Server) -> None:
    key = observed.key("--org")
    client = httpx.Client(base_url=observed.url, headers={"Authorization": f"Bearer {key}"})
    # a query no other test runs, so the cache figures are this test's own
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
             "fields": ["orders.o_orderpriority", "orders.count"], "limit": 4321}  # fmt: skip
    before = scrape(observed)
    with client:
        answers = [client.post("/api/v1/query/run", json={"query": query, "cache": "SkipCache"})]
        # then twice from the cache the first one filled
        answers += [client.post("/api/v1/query/run", json={"query": query}) for _ in range(2)]
        unknown = client.post(
            "/api/v1/query/run", json={"query": {**query, "modelId": str(uuid.uuid4())}}
        )
    after = scrape(observed)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert unknown.status_code == 404

    run = "/api/v1/query/run"
    assert moved(before, after, "assay_http_requests_total", method="POST", route=run,
                 status="200") == 3  # fmt: skip
    assert moved(before, after, "assay_http_requests_total", method="POST", route=run,
                 status="404") == 1  # fmt: skip
    assert moved(before, after, "assay_http_request_duration_seconds_count", method="POST",
                 route=run) == 4  # fmt: skip
    assert moved(before, after, "assay_jobs_submitted_total", engine="duckdb") == 3
    assert moved(before, after, "assay_jobs_ended_total", state="COMPLETE", engine="duckdb",
                 error_type="") == 3  # fmt: skip
    assert moved(before, after, "assay_cache_lookups_total", outcome="hit") == 2
    assert moved(before, after, "assay_cache_lookups_total", outcome="miss") == 0
    assert moved(before, after, "assay_result_rows_total", engine="duckdb") == 5  # 5 priorities
    written = moved(before, after, "assay_result_bytes_total", engine="duckdb")
    assert 0 < written < 10_000
    sent = sum(len(a.content) for a in [*answers, unknown])
    assert moved(before, after, "assay_http_response_bytes_total", route=run) == sent
    # a key's sign-in, the cache, the job: each request reaches the store
    assert moved(before, after, "assay_store_round_trips_total", store="sqlite") >= 8
    assert after[("assay_workers", ())] == 4
    assert after[("assay_jobs_queued", ())] == 0
    assert (
        after[("assay_info", (("version", httpx.get(f"{observed.url}/health").json()["version"]),))]
        == 1
    )
    assert after[("process_resident_memory_bytes", ())] > 10_000_000


def test_rate_limit_refusals_are_counted(observed: Server) -> None:
    key = observed.key("--org")
    before = scrape(observed)
    with httpx.Client(base_url=observed.url, headers={"Authorization": f"Bearer {key}"}) as c:
        codes = [c.get("/api/v1/models").status_code for _ in range(RATE + 1)]
    after = scrape(observed)
    assert codes.count(429) == 1 and codes[-1] == 429
    assert moved(before, after, "assay_rate_limited_total") == 1


def test_scrapes_need_the_token(observed: Server) -> None:
    assert httpx.get(f"{observed.url}/metrics").status_code == 401
    wrong = httpx.get(f"{observed.url}/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"].startswith("Unauthorized")


def test_each_request_and_job_transition_is_one_json_line(observed: Server) -> None:
    key = observed.key("--org")
    query = {"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
             "fields": ["customer.c_mktsegment", "customer.count"], "limit": 77}  # fmt: skip
    mine = "trace-" + uuid.uuid4().hex[:12]
    answer = httpx.post(f"{observed.url}/api/v1/query/run", json={"query": query,
                        "cache": "SkipCache"}, headers={"Authorization": f"Bearer {key}",
                        "X-Request-Id": mine})  # fmt: skip
    assert answer.headers["x-request-id"] == mine
    job_id = json.loads(answer.text.splitlines()[1])["job_id"]
    forged = httpx.get(f"{observed.url}/health", headers={"X-Request-Id": "a b\tc"})
    assert forged.headers["x-request-id"] != "a b\tc"  # not a sane id: a new one is made

    lines = log_lines(observed)
    requests = [x for x in lines if x.get("event") == "request" and x["request_id"] == mine]
    assert len(requests) == 1
    request = requests[0]
    assert request["route"] == "/api/v1/query/run" and request["status"] == 200
    assert request["job_ids"] == [job_id] and request["model_id"] == MODEL_ID
    assert request["user_id"] and request["duration_ms"] > 0
    states = [x["state"] for x in lines if x.get("event") == "job" and x["job_id"] == job_id]
    assert states == ["EXECUTING", "COMPLETE"]
    ended = next(x for x in lines if x.get("event") == "job" and x["state"] == "COMPLETE"
                 and x["job_id"] == job_id)  # fmt: skip
    assert ended["request_id"] == mine and ended["engine"] == "duckdb"
    assert ended["user_id"] == request["user_id"] and ended["duration_ms"] >= 0
    assert any(x.get("event") == "request" and x["route"] == "/health"
               and x["request_id"] == forged.headers["x-request-id"] for x in lines)  # fmt: skip


def test_no_log_line_carries_a_key_or_a_password(observed: Server) -> None:
    from assay.semantic.model import model_id_for

    key = observed.key("--org")
    auth = {"Authorization": f"Bearer {key}"}
    httpx.get(f"{observed.url}/api/v1/models", headers=auth)
    httpx.get(f"{observed.url}/api/v1/models", headers={"Authorization": f"Bearer {key}x"})
    query = {"modelId": model_id_for("warehouse"), "join_paths_from_topic_name": "numbers",
             "fields": ["numbers.n"]}  # fmt: skip
    failed = httpx.post(f"{observed.url}/api/v1/query/run", json={"query": query}, headers=auth)
    assert json.loads(failed.text.splitlines()[1])["error_type"] == "OFFLINE"
    text = (observed.home / f"serve-{observed.port}.log").read_text()
    assert "unreachable" in text  # the warehouse connection's start-up warning was logged
    assert PASSWORD not in text
    assert key not in text and key[:20] not in text
    assert TOKEN not in text


def test_log_scrubbing_masks_what_a_message_might_quote() -> None:
    said = scrub(
        "connect to postgresql://u:hunter2@db:5432/x failed; Authorization: Bearer abc.def; "
        "key assay_org_9f8e7d"
    )
    assert "hunter2" not in said and "abc.def" not in said and "9f8e7d" not in said
    assert "postgresql://u:***@db:5432/x" in said


def test_metrics_can_be_turned_off(tmp_path: Path, tpch_path: Path) -> None:
    server = Server(make_home(tmp_path), tpch_path, env={"ASSAY_METRICS": "off"}).start()
    try:
        answer = httpx.get(f"{server.url}/metrics")
        assert answer.status_code == 404
        assert "metrics are off" in answer.json()["detail"]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "mode", "token", "served", "needs_token"),
    [
        ("127.0.0.1", "auto", None, True, False),
        ("::1", "auto", None, True, False),
        ("0.0.0.0", "auto", None, False, False),  # listening beyond loopback: off without a token
        ("0.0.0.0", "auto", "t", True, True),
        ("0.0.0.0", "on", None, True, False),
        ("127.0.0.1", "off", "t", False, False),
    ],
)
def test_who_may_scrape(
    host: str, mode: str, token: str | None, served: bool, needs_token: bool
) -> None:
    policy = ScrapePolicy(Settings(host=host, metrics=mode, metrics_token=token))
    assert (policy.refusal({}) is None) == (served and not needs_token)
    if served and needs_token:
        assert policy.refusal({"authorization": "Bearer t"}) is None
        assert policy.refusal({"authorization": "Bearer x"}) == 401
    if not served:
        assert policy.refusal({"authorization": "Bearer t"}) == 404


def test_a_mistyped_metrics_mode_is_refused() -> None:
    with pytest.raises(ConfigError, match=r'one of auto, on, off, not .onn.\. Did you mean "on"'):
        ScrapePolicy(Settings(metrics="onn"))


def test_a_run_whose_client_leaves_while_it_waits_is_logged_499_and_its_job_runs_on(
    observed: Server,
) -> None:
    """The run's wait watches its connection: the client leaving ends the request at once
    (no waiter left behind), and the job is not cancelled: /query/wait can still fetch it."""
    key = observed.key("--org")
    mine = "left-" + uuid.uuid4().hex[:12]
    body = json.dumps({"query": SLOW_QUERY}).encode()
    head = (f"POST /api/v1/query/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nX-Request-Id: {mine}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    with socket.create_connection(("127.0.0.1", observed.port), timeout=10) as s:
        s.sendall(head + body)
        time.sleep(0.5)  # the job runs; the request waits for it (run_wait_seconds: 10)
    deadline = time.monotonic() + 10
    while not (
        lines := [
            x
            for x in log_lines(observed)
            if x.get("event") == "request" and x["request_id"] == mine
        ]
    ):
        assert time.monotonic() < deadline, "the request never ended"
        time.sleep(0.05)
    (request,) = lines
    assert request["status"] == 499 and request["route"] == "/api/v1/query/run"
    assert request["duration_ms"] < 5000  # ended when the client left, not at the window
    (job_id,) = request["job_ids"]
    assert scrape(observed)[("assay_waited_jobs", ())] == 0
    auth = {"Authorization": f"Bearer {key}"}
    try:
        waited = httpx.get(f"{observed.url}/api/v1/query/wait", params={"job_ids": job_id},
                           headers=auth, timeout=30)  # fmt: skip
        assert waited.status_code == 200, waited.text
        assert json.loads(waited.text.splitlines()[-1])["remaining_job_ids"] == [job_id]
    finally:
        httpx.post(f"{observed.url}/api/v1/query/cancel", json={"job_ids": [job_id]},
                   headers=auth, timeout=30)  # fmt: skip
