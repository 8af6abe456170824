"""A real `assay serve` with the governed tpch model (tests/governed.py), built as an operator
would: attribute definitions through /api/v1/user-attributes, the model's files through the
YAML API (the grants first, so every later file validates), users through SCIM, roles through
/api/v1/users/{id}/model-roles and personal tokens through `assay keys create --user`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.governed import ATTRIBUTES, governed_files
from tests.server.conftest import MODEL_ID, Server, make_home
from tests.server.directory import SCIM

USER_ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
# the model file first (grants), views next, then joins and topics
WRITE_ORDER = ("model", "customer.view", "supplier.view", "relationships", "customer.topic",
               "lineitem.topic", "orders.topic")  # fmt: skip
#: userName -> (SCIM attribute values, model role or None for the default)
PEOPLE: dict[str, tuple[dict[str, Any], str | None]] = {
    "ann@example.com": ({"region": ["ASIA"], "department": "sales"}, None),
    "bob@example.com": ({"region": ["EUROPE", "AMERICA"], "department": "finance"}, None),
    "cat@example.com": ({"region": ["ALL"], "department": "finance"}, None),
    "dan@example.com": ({}, None),  # no region: the customer topic refuses him by name
    "amy@example.com": ({"region": ["ASIA"], "department": "marketing"}, None),  # as ann
    "eve@example.com": ({"region": ["ASIA"]}, "RESTRICTED_QUERIER"),
    "vic@example.com": ({"region": ["ASIA"]}, "VIEWER"),
    "mo@example.com": ({"region": ["ALL"]}, "MODELER"),
}


@dataclass
class Governed:
    server: Server
    org_key: str
    ids: dict[str, str] = field(default_factory=dict)  # userName -> membership id
    tokens: dict[str, str] = field(default_factory=dict)  # userName -> personal token

    def client(self, who: str | None = None) -> httpx.Client:
        """A client with a person's own token, or (None) the organization key."""
        token = self.org_key if who is None else self.tokens[who]
        return httpx.Client(base_url=self.server.url, timeout=60,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def start_governed(root: Path, database: Path, env: dict[str, str] | None = None) -> Governed:
    settings = {"ASSAY_RUN_WAIT_SECONDS": "10", "ASSAY_WAIT_SECONDS": "2", **(env or {})}
    server = Server(make_home(root), database, env=settings).start()
    governed = Governed(server, server.key("--org"))
    with governed.client() as api:
        build(api, governed)
    for name in PEOPLE:
        governed.tokens[name] = server.key("--user", name)
    return governed


def build(api: httpx.Client, governed: Governed) -> None:
    for definition in ATTRIBUTES:
        created = api.post("/api/v1/user-attributes", json=definition)
        assert created.status_code in (201, 409), created.text
    files = governed_files(api.get(f"/api/v1/models/{MODEL_ID}/yaml").json()["files"])
    for name in WRITE_ORDER:
        written = api.post(f"/api/v1/models/{MODEL_ID}/yaml",
                           json={"fileName": name, "yaml": files[name]})  # fmt: skip
        assert written.status_code == 200, f"{name}: {written.text}"
    admin = api.get("/api/v1/whoami").json()["user"]["id"]
    patched = api.patch(f"{SCIM}/{admin}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": f"{USER_ATTRIBUTES}:region", "value": ["ALL"]}],
    })  # fmt: skip
    assert patched.status_code == 200, patched.text
    for name, (values, role) in PEOPLE.items():
        made = api.post(SCIM, json={"userName": name, "displayName": name.split("@")[0],
                                    USER_ATTRIBUTES: values})  # fmt: skip
        assert made.status_code == 201, made.text
        governed.ids[name] = made.json()["id"]
        if role is not None:
            assigned = api.post(f"/api/v1/users/{made.json()['id']}/model-roles",
                                json={"modelId": MODEL_ID, "roleName": role})  # fmt: skip
            assert assigned.status_code == 200, assigned.text
