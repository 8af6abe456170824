"""Hostile transport against a real `assay serve`: every bound at its limit and one past it,
slow clients, clients that leave, and per-key quotas. The server must answer each with a
clear 4xx (or close a connection that never becomes a request) and stay up.

The server here has small bounds (64 KiB bodies, a 1.5 s client timeout, two long-polls and
two jobs per key) so each limit is reached quickly; the JSON shape limits are the same on
every server.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay import __version__
from assay.server.limits import MAX_HEADER_BYTES
from assay.server.requests import (
    MAX_FIELDS,
    MAX_FILTERS,
    MAX_JOB_IDS,
    MAX_JSON_DEPTH,
    MAX_PROMPT_CHARS,
    MAX_SORTS,
)
from tests.server.conftest import MODEL_ID, SLOW_QUERY, Server, make_home

MAX_BODY = 64 * 1024
TIMEOUT = 1.5
QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "lineitem",
         "fields": ["region.r_name", "lineitem.count"]}  # fmt: skip


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    env = {"ASSAY_MAX_BODY_BYTES": str(MAX_BODY), "ASSAY_CLIENT_TIMEOUT_SECONDS": str(TIMEOUT),
           "ASSAY_MAX_WAITS_PER_KEY": "2", "ASSAY_MAX_JOBS_PER_KEY": "2",
           "ASSAY_RUN_WAIT_SECONDS": "0", "ASSAY_WAIT_SECONDS": "20"}  # fmt: skip
    server = Server(make_home(tmp_path_factory.mktemp("tight")), tpch_path, env=env).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tight_key(tight: Server) -> str:
    return tight.key("--org")


def up(server: Server) -> bool:
    return httpx.get(f"{server.url}/health", timeout=5).status_code == 200


def post(server: Server, key: str, path: str, content: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", content=content, timeout=30,
                      headers={"Authorization": f"Bearer {key}",
                               "Content-Type": "application/json", **headers})  # fmt: skip


def padded(body: dict[str, Any], size: int) -> bytes:
    """``body`` as JSON, padded with spaces to exactly ``size`` bytes."""
    text = json.dumps(body).encode()
    assert len(text) <= size
    return text + b" " * (size - len(text))


# ---------------------------------------------------------------- body size


def test_a_body_at_the_limit_is_read_and_one_byte_more_is_413(
    tight: Server, tight_key: str
) -> None:
    ok = post(tight, tight_key, "/api/v1/query/run", padded({"query": QUERY}, MAX_BODY))
    assert ok.status_code == 200, ok.text
    over = post(tight, tight_key, "/api/v1/query/run", padded({"query": QUERY}, MAX_BODY + 1))
    assert over.status_code == 413
    body = over.json()
    assert body["status"] == 413 and "max_body_bytes" in body["detail"]
    assert body["code"] == "payload_too_large"


def test_a_declared_length_too_large_is_refused_before_the_body_is_sent(tight: Server) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=10) as s:
        s.sendall(b"POST /api/v1/query/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 15000000\r\n\r\n")  # fmt: skip
        answer = read_all(s).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"status":413' in answer.replace(" ", "")
    assert up(tight)


def test_a_chunked_body_is_counted_as_it_arrives(tight: Server, tight_key: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": {"modelId": "' + MODEL_ID.encode() + b'", "pad": "'
        for _ in range(40):  # 40 x 4 KiB: past 64 KiB, with no Content-Length said
            yield b"x" * 4096
        yield b'"}}'

    response = httpx.post(f"{tight.url}/api/v1/query/run", content=chunks(), timeout=30,
                          headers={"Authorization": f"Bearer {tight_key}"})  # fmt: skip
    assert response.status_code == 413


# ---------------------------------------------------------------- JSON shape


def nested(depth: int) -> dict[str, Any]:
    value: Any = "x"
    for _ in range(depth - 1):
        value = [value]
    return {"query": QUERY, "extra": value}


def test_json_nesting_at_the_limit_is_read_and_deeper_is_400(api: httpx.Client) -> None:
    ok = api.post("/api/v1/query/run", json=nested(MAX_JSON_DEPTH - 1))  # + the top object
    assert ok.status_code == 200, ok.text
    deeper = api.post("/api/v1/query/run", json=nested(MAX_JSON_DEPTH))
    assert deeper.status_code == 400 and "nested more than" in deeper.json()["detail"]


def test_json_a_hundred_thousand_levels_deep_is_400_not_a_crash(server: Server,
                                                                 org_key: str) -> None:  # fmt: skip
    deep = b'{"query": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = post(server, org_key, "/api/v1/query/run", deep)
    assert response.status_code == 400
    assert "nested more than" in response.json()["detail"]
    assert up(server)


def test_too_many_values_in_one_body_is_400(api: httpx.Client) -> None:
    response = api.post("/api/v1/query/run", json={"query": QUERY, "pad": [0] * 100_001})
    assert response.status_code == 400 and "100,000 values" in response.json()["detail"]


@pytest.mark.parametrize(
    ("key", "limit", "item"),
    [("fields", MAX_FIELDS, "lineitem.count"),
     ("sorts", MAX_SORTS, {"column_name": "lineitem.count"})],
)  # fmt: skip
def test_lists_in_a_query_at_their_limit_and_one_past(
    api: httpx.Client, key: str, limit: int, item: Any
) -> None:
    at = api.post("/api/v1/query/run", json={"query": {**QUERY, key: [item] * limit}})
    assert at.status_code == 200, at.text
    past = api.post("/api/v1/query/run", json={"query": {**QUERY, key: [item] * (limit + 1)}})
    assert past.status_code == 400
    assert past.json()["detail"] == (f"query.{key}: Too big: expected at most {limit} items, "
                                     f"received {limit + 1}")  # fmt: skip


def test_filters_at_their_limit_and_one_past(api: httpx.Client) -> None:
    def filters(n: int) -> dict[str, Any]:
        return {f"region.r_name_{i}": {"type": "string", "values": ["x"]} for i in range(n)}

    at = api.post("/api/v1/query/run", json={"query": {**QUERY, "filters": filters(MAX_FILTERS)}})
    assert at.status_code == 200  # a job that fails to plan (no such fields): not a 400
    past = api.post("/api/v1/query/run",
                    json={"query": {**QUERY, "filters": filters(MAX_FILTERS + 1)}})  # fmt: skip
    assert past.status_code == 400 and "query.filters: Too big" in past.json()["detail"]


def test_job_ids_at_their_limit_and_one_past(api: httpx.Client) -> None:
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(MAX_JOB_IDS + 1)]
    at = api.get("/api/v1/query/wait", params={"job_ids": ",".join(ids[:MAX_JOB_IDS])})
    assert at.status_code == 404  # read, and none of them exists
    past = api.get("/api/v1/query/wait", params={"job_ids": ",".join(ids)})
    assert past.status_code == 400 and "job_ids: Too big" in past.json()["detail"]
    cancel = api.post("/api/v1/query/cancel", json={"job_ids": ids})
    assert cancel.status_code == 400


@pytest.mark.parametrize("path", ["/api/v1/ai/jobs", "/api/v1/ai/generate-query",
                                  "/api/v1/ai/pick-topic"])  # fmt: skip
def test_a_prompt_at_the_limit_is_taken_and_one_past_is_400(api: httpx.Client, path: str) -> None:
    prompt = "revenue by region " + "x" * (MAX_PROMPT_CHARS - len("revenue by region "))
    at = api.post(path, json={"prompt": prompt, "modelId": MODEL_ID, "runQuery": False})
    assert at.status_code != 400 or "Too big" not in at.text, at.text
    past = api.post(path, json={"prompt": prompt + "x", "modelId": MODEL_ID})
    assert past.status_code == 400
    assert f"prompt: Too big: expected string to have <={MAX_PROMPT_CHARS}" in past.text


# ---------------------------------------------------------------- headers and slow clients


def test_request_headers_past_their_limit_are_refused(server: Server, org_key: str) -> None:
    fits = httpx.get(f"{server.url}/health", headers={"X-Pad": "x" * (MAX_HEADER_BYTES - 1024)})
    assert fits.status_code == 200
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"x" * (MAX_HEADER_BYTES * 2)
                  + b"\r\n\r\n")  # fmt: skip
        answer = read_all(s).decode()
    assert answer.startswith("HTTP/1.1 431"), answer
    assert "headers are too large" in answer
    assert up(server)


def read_all(s: socket.socket) -> bytes:
    """What the server sends until it closes the connection."""
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    return out


def test_a_client_that_never_finishes_its_headers_is_dropped(tight: Server) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=TIMEOUT * 4) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        started = time.monotonic()
        assert s.recv(1024) == b"", "the server closes the connection"
        assert time.monotonic() - started < TIMEOUT * 3
    assert up(tight)


def test_a_body_that_never_arrives_is_408(tight: Server, tight_key: str) -> None:
    with socket.create_connection(("127.0.0.1", tight.port), timeout=TIMEOUT * 4) as s:
        s.sendall(b"POST /api/v1/query/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + tight_key.encode() + b"\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"query\":")  # fmt: skip
        answer = read_all(s).decode()
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "did not arrive within" in answer


# ---------------------------------------------------------------- per-key quotas


def submit_slow(server: Server, key: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/query/run", json={"query": SLOW_QUERY},
                      headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip


def job_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    header = json.loads(response.text.splitlines()[0])
    return str(next(iter(header["jobs_submitted"])))


def cancel(server: Server, key: str, ids: list[str]) -> None:
    httpx.post(f"{server.url}/api/v1/query/cancel", json={"job_ids": ids},
               headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip


def test_a_key_may_hold_so_many_jobs_and_long_polls(tight: Server) -> None:
    key, other = tight.key("--org"), tight.key("--org")
    running = [job_id(submit_slow(tight, key)) for _ in range(2)]
    try:
        third = submit_slow(tight, key)
        assert third.status_code == 429 and third.headers["Retry-After"] == "1"
        assert "max_jobs_per_key" in third.json()["detail"]
        assert job_id(submit_slow(tight, other))  # another key is not held back
        cancel(tight, other, [])  # (nothing: other's job is cancelled below)

        def poll() -> httpx.Response:
            return httpx.get(f"{tight.url}/api/v1/query/wait", timeout=30,
                             params={"job_ids": ",".join(running)},
                             headers={"Authorization": f"Bearer {key}"})  # fmt: skip

        with ThreadPoolExecutor(2) as pool:
            polls = [pool.submit(poll) for _ in range(2)]
            time.sleep(1.0)  # both are waiting now
            refused = poll()
            assert refused.status_code == 429 and "max_waits_per_key" in refused.text
            cancel(tight, key, running)  # the polls answer: the jobs ended
            assert all(p.result().status_code == 200 for p in polls)
        assert job_id(submit_slow(tight, key))  # places are free again
    finally:
        cancel(tight, key, running)


def test_a_long_poll_whose_client_leaves_gives_its_place_back(tight: Server) -> None:
    key = tight.key("--org")
    held = job_id(submit_slow(tight, key))
    request = (f"GET /api/v1/query/wait?job_ids={held} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {key}\r\n\r\n").encode()  # fmt: skip
    try:
        for _ in range(3):  # three polls in a row on a key allowed two at once
            s = socket.create_connection(("127.0.0.1", tight.port), timeout=10)
            s.sendall(request)
            time.sleep(0.3)
            s.close()  # the client leaves mid-poll
        time.sleep(0.3)
        with ThreadPoolExecutor(2) as pool:
            polls = [pool.submit(httpx.get, f"{tight.url}/api/v1/query/wait", timeout=30,
                                 params={"job_ids": held},
                                 headers={"Authorization": f"Bearer {key}"})
                     for _ in range(2)]  # fmt: skip
            time.sleep(0.5)
            cancel(tight, key, [held])
            assert [p.result().status_code for p in polls] == [200, 200]
    finally:
        cancel(tight, key, [held])


def test_a_client_that_leaves_mid_result_frees_the_result_file(server: Server,
                                                              org_key: str) -> None:  # fmt: skip
    big = {
        "modelId": MODEL_ID,
        "join_paths_from_topic_name": "lineitem",
        "limit": None,
        "fields": ["lineitem.l_orderkey", "lineitem.l_linenumber", "lineitem.l_comment"],
    }
    body = json.dumps({"query": big, "cache": "SkipCache"}).encode()
    pid = server.proc.pid if server.proc else 0

    def open_results() -> int:
        fds = Path(f"/proc/{pid}/fd")
        return sum(1 for fd in fds.iterdir() if ".arrows" in os.path.realpath(fd))

    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
        s.sendall(b"POST /api/v1/query/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + org_key.encode() + b"\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")
        deadline = time.monotonic() + 5
        while open_results() == 0 and time.monotonic() < deadline:
            s.recv(65536)  # streaming: the server reads the result file as it sends
        assert open_results() > 0, "the result is streamed from its file"
    deadline = time.monotonic() + 5
    while open_results() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_results() == 0, "the server let go of the result file when the client left"
    assert up(server)


def test_pages_carry_security_headers_and_run_only_their_own_script(server: Server) -> None:
    page = httpx.get(f"{server.url}/chat/00000000-0000-4000-8000-000000000000")
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp  # no inline script
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    scripts = re.findall(r"<script[^>]*>", page.text.lower())
    assert scripts == ['<script src="/chat/static/chat.js?v=' + __version__ + '" defer>']
    api = httpx.get(f"{server.url}/health")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers


@pytest.mark.parametrize(
    ("method", "path", "params", "content"),
    [("POST", "/api/v1/query/run", {}, b'{"query": {"limit": ' + b"9" * 5000 + b"}}"),
     ("POST", "/api/v1/query/run", {}, b'{"query": "\xff\xfe"}'),
     ("POST", "/api/v1/query/run", {}, b"[" * 5000),
     ("GET", "/api/v1/query/wait", {"job_ids": "[" * 4000}, b""),
     ("GET", "/api/v1/query/wait", {"job_ids": "[" + "1" * 5000 + "]"}, b""),
     ("GET", "/api/v1/models", {"cursor": "WwpbW1tbW1tbW1tb" * 500}, b"")],
)  # fmt: skip
def test_hostile_json_anywhere_is_a_400(
    server: Server, org_key: str, method: str, path: str, params: dict[str, str], content: bytes
) -> None:
    headers = {"Authorization": f"Bearer {org_key}"}
    response = httpx.request(method, f"{server.url}{path}", params=params, content=content,
                             headers=headers, timeout=30)  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.json()["status"] == 400
    assert up(server)


def test_a_job_seen_to_end_stops_counting_without_being_read_back() -> None:
    from assay.server.errors import ApiError
    from assay.server.quotas import KeyQuotas

    quotas = KeyQuotas(max_waits=1, max_jobs=2)
    reads: list[set[str]] = []

    def still_open(ids: Iterable[str]) -> set[str]:
        reads.append(set(ids))
        return set(ids)

    quotas.track_job("k", "a")
    quotas.track_job("k", "b")
    with pytest.raises(ApiError) as refused:
        quotas.admit_job("k", still_open)
    assert refused.value.status == 429 and reads == [{"a", "b"}]
    quotas.release_job("k", "a")
    quotas.release_job("k", "unknown")  # never tracked: nothing happens
    quotas.admit_job("k", still_open)
    assert reads == [{"a", "b"}], "one job left below the limit: nothing read back"
