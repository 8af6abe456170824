"""Governance across two `assay serve` replicas on one PostgreSQL store: users, attribute
values and jobs live in the store, so a user made on one replica is governed on the other, and
their jobs are theirs on both."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.governed import ATTRIBUTES, write_governed
from tests.live import POSTGRES_URL, postgres_schema
from tests.server.conftest import ASSAY, MODEL_ID, Server, make_home
from tests.server.directory import SCIM

pytestmark = pytest.mark.tpch
USER_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
         "fields": ["region.r_name", "customer.count"]}  # fmt: skip


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[list[Server]]:
    with postgres_schema("assay_g_") as schema:
        yield from _replicas(tmp_path_factory, tpch_path, schema)


def _replicas(
    tmp_path_factory: pytest.TempPathFactory, tpch_path: Path, schema: str
) -> Iterator[list[Server]]:
    env = {"ASSAY_JOB_STORE": POSTGRES_URL, "ASSAY_JOB_STORE_SCHEMA": schema,
           "ASSAY_WAIT_SECONDS": "5"}  # fmt: skip
    servers = []
    for name in ("a", "b"):
        home = make_home(tmp_path_factory.mktemp(f"governed-{name}"))
        write_governed(home / "models" / "tpch")
        servers.append(Server(home, tpch_path, env=env))
    for definition in ATTRIBUTES:  # the models read them: defined before either replica starts
        args = [definition["name"], "--type", definition.get("type", "String")]
        if definition.get("multiple_values"):
            args.append("--multiple")
        defaults = definition.get("default_value")
        if defaults is not None:
            for value in defaults if isinstance(defaults, list) else [defaults]:
                args += ["--default", str(value)]
        subprocess.run([ASSAY, "attributes", "create", *args], env=servers[0]._env(), check=True,
                       capture_output=True)  # fmt: skip
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def regions(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return sorted(r["Region"] for r in response.json())


def test_a_user_made_on_one_replica_is_governed_on_the_other(pair: list[Server]) -> None:
    a, b = pair
    org = a.key("--org")
    with client(a, org) as on_a:
        made = on_a.post(SCIM, json={"userName": "zoe@example.com", "displayName": "Zoe",
                                     USER_ATTRIBUTES: {"region": ["AFRICA"]}})  # fmt: skip
        assert made.status_code == 201, made.text
    zoe = made.json()["id"]
    body: dict[str, Any] = {"query": QUERY, "resultType": "json"}
    with client(b, org) as on_b:
        assert regions(on_b.post("/api/v1/query/run", params={"userId": zoe}, json=body)) == [
            "AFRICA"]  # fmt: skip
    with client(a, org) as on_a:  # a value changed on a applies on b at once
        changed = on_a.patch(f"{SCIM}/{zoe}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": f"{USER_ATTRIBUTES}:region",
                            "value": ["ASIA", "EUROPE"]}]})  # fmt: skip
        assert changed.status_code == 200, changed.text
    token = b.key("--user", "zoe@example.com")
    with client(b, token) as zoe_on_b:
        assert regions(zoe_on_b.post("/api/v1/query/run", json=body)) == ["ASIA", "EUROPE"]
        line = [json.loads(x) for x in zoe_on_b.post("/api/v1/query/run", json={
            "query": QUERY}).text.splitlines() if x.strip()][1]  # fmt: skip
    other = a.key("--user", "yan@example.com")
    with client(a, other) as yan_on_a:
        waited = yan_on_a.get("/api/v1/query/wait", params={"job_ids": line["job_id"]})
        assert waited.status_code == 404, "zoe's job is hers on every replica"
    with client(a, token) as zoe_on_a:
        waited = zoe_on_a.get("/api/v1/query/wait", params={"job_ids": line["job_id"]})
        assert waited.status_code == 200 and line["job_id"] in waited.text
