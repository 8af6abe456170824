"""Bearer auth, userId impersonation, the error envelope, the rate limit, and the open
endpoints (shared/docs/omni-contract.md sections 1.2-1.4)."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import ASSAY, MODEL_ID, Server, make_home

RUN = "/api/v1/query/run"
WAIT = "/api/v1/query/wait"
CANCEL = "/api/v1/query/cancel"
ERROR_KEYS = {"detail", "status", "error", "message"}
SOME_ID = "3c90c3cc-0d44-4b50-8888-8dd25736052a"  # fixed: xdist workers must collect alike
UNAUTHORIZED = "Unauthorized: Missing or invalid API key"
BAD_HEADER = "Bad authorization header, must be formatted as Bearer <token>"
PAT_FOR_OTHERS = "User-scoped API keys can only be used to act on behalf of the authenticated user."
QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "orders",
         "fields": ["orders.o_orderpriority", "orders.count"]}  # fmt: skip


# ---------------------------------------------------------------------- helpers


def assert_error(response: httpx.Response, status: int, message: str) -> dict[str, Any]:
    """Every error: ``detail`` and ``status`` (Omni's examples) plus ``error`` and ``message``
    (Omni's documented error schema)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) >= ERROR_KEYS, body
    assert body["detail"] == message
    assert body["message"] == message
    assert body["status"] == status
    assert body["error"] == response.reason_phrase
    return body


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**server._env(), "COLUMNS": "500"}  # rich would wrap long lines at 80
    return subprocess.run([ASSAY, *args], env=env, check=True, capture_output=True, text=True)


def personal_token(server: Server, email: str) -> tuple[str, str]:
    """A PAT from the CLI, and its user's id as the CLI reports it (on standard error)."""
    out = cli(server, "keys", "create", "--user", email)
    found = re.search(r"userId\s+([0-9a-f-]{36})", out.stderr)
    assert found, out.stderr
    return out.stdout.strip().splitlines()[-1], found.group(1)


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                        timeout=60)  # fmt: skip


def ran(response: httpx.Response) -> None:
    """A /query/run that was let through: 200 NDJSON with a finished job."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/ndjson")
    assert '"status":"COMPLETE"' in response.text.replace(" ", "")


@pytest.fixture(scope="module")
def pat(server: Server) -> tuple[str, str]:
    return personal_token(server, f"pat-{uuid.uuid4().hex[:8]}@example.com")


# ---------------------------------------------------------------------- 401


ENDPOINTS: list[Any] = [
    pytest.param("POST", RUN, {"query": QUERY}, id="run"),
    pytest.param("POST", "/api/unstable/query/run", {"query": QUERY}, id="unstable-run"),
    pytest.param("GET", f"{WAIT}?jobIds={SOME_ID}", None, id="wait"),
    pytest.param("POST", CANCEL, {"job_ids": [SOME_ID]}, id="cancel"),
]


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_no_authorization_is_401(server: Server, method: str, url: str, body: Any) -> None:
    response = httpx.request(method, server.url + url, json=body)
    assert_error(response, 401, UNAUTHORIZED)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_an_unknown_bearer_token_is_401(server: Server, method: str, url: str, body: Any) -> None:
    headers = {"Authorization": "Bearer nonsense"}
    response = httpx.request(method, server.url + url, json=body, headers=headers)
    assert_error(response, 401, UNAUTHORIZED)


@pytest.mark.parametrize("header", ["Basic x", "Bearer", "Token abc", "nonsense"])
def test_a_malformed_authorization_header_is_401_saying_so(server: Server, header: str) -> None:
    response = httpx.post(server.url + RUN, json={"query": QUERY},
                          headers={"Authorization": header})  # fmt: skip
    assert_error(response, 401, BAD_HEADER)


@pytest.mark.parametrize("content", [b"not json", b"{}", b'{"query": {}}'])
def test_auth_comes_before_body_validation(server: Server, content: bytes) -> None:
    response = httpx.post(server.url + RUN, content=content,
                          headers={"Content-Type": "application/json"})  # fmt: skip
    assert_error(response, 401, UNAUTHORIZED)


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_bearer_scheme_is_case_insensitive(server: Server, org_key: str, scheme: str) -> None:
    response = httpx.post(server.url + RUN, json={"query": QUERY},
                          headers={"Authorization": f"{scheme} {org_key}"}, timeout=60)  # fmt: skip
    ran(response)


def test_a_revoked_key_is_401(server: Server) -> None:
    label = f"revoke-me-{uuid.uuid4().hex[:8]}"
    created = cli(server, "keys", "create", "--org", "--label", label)
    token = created.stdout.strip().splitlines()[-1]
    with client(server, token) as api:
        ran(api.post(RUN, json={"query": QUERY}))
        listed = cli(server, "keys", "list").stdout
        assert token not in listed  # tokens are shown once, at creation
        (line,) = [x for x in listed.splitlines() if label in x]
        assert line.endswith(f"active  {label}")
        key_id = line.split()[0]
        assert cli(server, "keys", "revoke", key_id).stdout.strip() == f"revoked {key_id}"
        assert_error(api.post(RUN, json={"query": QUERY}), 401, UNAUTHORIZED)
        assert_error(api.get(WAIT, params={"jobIds": SOME_ID}), 401, UNAUTHORIZED)


# ---------------------------------------------------------------------- userId


def test_a_pat_acting_for_another_user_is_403(server: Server, pat: tuple[str, str]) -> None:
    token, _ = pat
    other = str(uuid.uuid4())
    with client(server, token) as api:
        assert_error(api.post(RUN, params={"userId": other}, json={"query": QUERY}), 403,
                     PAT_FOR_OTHERS)  # fmt: skip
        assert_error(api.post(RUN, json={"query": QUERY, "userId": other}), 403, PAT_FOR_OTHERS)


def test_a_pat_acting_for_its_own_user_runs(server: Server, pat: tuple[str, str]) -> None:
    token, user_id = pat
    with client(server, token) as api:
        ran(api.post(RUN, json={"query": QUERY}))
        ran(api.post(RUN, params={"userId": user_id}, json={"query": QUERY}))
        ran(api.post(RUN, json={"query": QUERY, "userId": user_id}))


def test_a_user_id_that_is_not_a_uuid_is_400(
    api: httpx.Client, server: Server, pat: tuple[str, str]
) -> None:
    assert_error(api.post(RUN, params={"userId": "bob"}, json={"query": QUERY}), 400,
                 "userId: Invalid uuid")  # fmt: skip
    with client(server, pat[0]) as mine:
        assert_error(mine.post(RUN, json={"query": QUERY, "userId": "bob"}), 400,
                     "userId: Invalid uuid")  # fmt: skip


def test_an_org_key_acting_for_an_unknown_user_is_404(api: httpx.Client) -> None:
    user = str(uuid.uuid4())
    assert_error(api.post(RUN, params={"userId": user}, json={"query": QUERY}), 404,
                 f"User with id {user} does not exist")  # fmt: skip
    assert_error(api.post(RUN, json={"query": QUERY, "userId": user}), 404,
                 f"User with id {user} does not exist")  # fmt: skip


def test_an_org_key_may_act_for_a_known_user(api: httpx.Client, pat: tuple[str, str]) -> None:
    ran(api.post(RUN, params={"userId": pat[1]}, json={"query": QUERY}))


# ---------------------------------------------------------------------- the error envelope


ERRORS: list[Any] = [
    pytest.param("POST", RUN, {"query": {}}, 400,
                 "query.modelId: Invalid input: expected string, received undefined", id="400"),
    pytest.param("GET", WAIT, None, 400, "job_ids parameter is required", id="400-wait"),
    pytest.param("POST", RUN, {"query": {**QUERY, "modelId": "00000000-0000-4000-8000-"
                                                             "000000000000"}},
                 404, "Model 00000000-0000-4000-8000-000000000000 not found", id="404-model"),
    pytest.param("GET", "/api/v1/no-such-route", None, 404, "Not Found", id="404-route"),
    pytest.param("GET", RUN, None, 405, "Method Not Allowed", id="405"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body", "status", "message"), ERRORS)
def test_every_error_body_has_detail_status_error_and_message(
    api: httpx.Client, method: str, url: str, body: Any, status: int, message: str
) -> None:
    assert_error(api.request(method, url, json=body), status, message)


# ---------------------------------------------------------------------- rate limit


@pytest.fixture
def limited(tmp_path: Path, tpch_path: Path) -> Iterator[Server]:
    env = {"ASSAY_RATE_LIMIT_PER_MINUTE": "3", "ASSAY_RUN_WAIT_SECONDS": "5"}
    srv = Server(make_home(tmp_path), tpch_path, env=env).start()
    yield srv
    srv.stop()


def test_the_rate_limit_answers_429_with_retry_after(limited: Server) -> None:
    with ThreadPoolExecutor(2) as pool:  # the CLI takes a second or two to start
        first, second = pool.map(lambda _: limited.key("--org"), range(2))
    with client(limited, first) as api:
        for _ in range(3):
            ran(api.post(RUN, json={"query": QUERY}))
        response = api.post(RUN, json={"query": QUERY})  # the three above used the burst
        body = assert_error(response, 429, response.json().get("detail", ""))
        assert body["detail"]
        retry = response.headers["retry-after"]
        assert retry.isdigit() and 1 <= int(retry) <= 60
        # the wait endpoint counts against the same key
        assert api.get(WAIT, params={"jobIds": str(uuid.uuid4())}).status_code == 429
    assert httpx.get(f"{limited.url}/health").status_code == 200  # not limited
    with client(limited, second) as other:  # the limit is per key
        ran(other.post(RUN, json={"query": QUERY}))


# ---------------------------------------------------------------------- open endpoints


def test_health_needs_no_key(server: Server) -> None:
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    wrong = httpx.get(f"{server.url}/health", headers={"Authorization": "Bearer nonsense"})
    assert wrong.status_code == 200


def test_openapi_document_lists_the_query_api(server: Server) -> None:
    response = httpx.get(f"{server.url}/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert str(doc["openapi"]).startswith("3.")
    assert "post" in doc["paths"]["/api/v1/query/run"]
    assert "get" in doc["paths"]["/api/v1/query/wait"]
    assert "post" in doc["paths"]["/api/v1/query/cancel"]
