"""Omni's own clients, unchanged, provisioning users on a real `assay serve`; every call is
checked against what the server then holds.

- omni-python-sdk (`OmniAPI`): `upsert_user` (create, then update with PUT),
  `find_user_by_email`, `delete_user`, on the lower-case `/api/scim/v2/users` paths.
- omni-app-mcp's user, identity and model-role tools, called directly (no MCP transport):
  `omni_create_user`, `omni_list_users`, `omni_update_user` (SCIM PATCH),
  `omni_list_user_attributes`, `omni_assign_user_model_role`, `omni_get_user_model_roles`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest

from tests.server.conftest import MODEL_ID, Server
from tests.server.directory import ATTRIBUTES, SCIM, attribute, email
from tests.server.test_omni_clients import RecordingTransport


def held(api: httpx.Client, user_name: str) -> list[dict[str, Any]]:
    """The users the server holds with this userName."""
    found: list[dict[str, Any]] = api.get(SCIM, params={"filter": f'userName eq "{user_name}"'}
                                          ).json()["Resources"]  # fmt: skip
    return found


# ---------------------------------------------------------------------- omni-python-sdk


def test_sdk_upserts_finds_and_deletes_a_user(server: Server, org_key: str,
                                              api: httpx.Client) -> None:  # fmt: skip
    from omni_python_sdk import OmniAPI

    sdk = OmniAPI(org_key, server.url)
    name = email("sdk")
    with (
        attribute(api, "region_") as region,
        attribute(api, "brands_", multiple_values=True) as brands,
    ):
        sdk.upsert_user(name, "Sdk User", {region: "west", brands: "[a,b]"})
        (created,) = held(api, name)
        assert created["displayName"] == "Sdk User"
        assert created[ATTRIBUTES] == {region: "west", brands: ["a", "b"]}

        sdk.upsert_user(name, "Sdk Renamed", {region: "east"})  # found: replaced with PUT
        (updated,) = held(api, name)
        assert updated["id"] == created["id"] and updated["displayName"] == "Sdk Renamed"
        assert updated[ATTRIBUTES] == {region: "east"}, "PUT: the values not sent are cleared"

        found = sdk.find_user_by_email(name.upper())
        assert found is not None and [u["id"] for u in found.json()["Resources"]] == [
            created["id"]]  # fmt: skip
        assert sdk.return_user_by_email(name)["id"] == created["id"]

        deleted = sdk.delete_user(name)
        assert deleted is not None and deleted.status_code == 204
        assert held(api, name) == []


# ---------------------------------------------------------------------- omni-app-mcp


@pytest.fixture
def mcp(server: Server, org_key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """omni-app-mcp's user tools pointed at the session server, as OMNI_BASE_URL would."""
    from omni_mcp.client import OmniClient
    from omni_mcp.config import Settings
    from omni_mcp.tools import identity, user_groups, users

    monkeypatch.setenv("OMNI_BASE_URL", server.url)
    monkeypatch.setenv("OMNI_API_KEY", org_key)
    client = OmniClient(Settings(), transport=RecordingTransport())
    for module in (users, identity, user_groups):
        monkeypatch.setattr(module, "get_client", lambda: client)
    yield


def call(tool: Callable[[Any], Coroutine[Any, Any, str]], model: Any) -> str:
    text: str = asyncio.run(tool(model))
    assert not text.startswith("Error"), text
    return text


@pytest.mark.usefixtures("mcp")
def test_mcp_provisions_a_user_sets_attributes_and_a_model_role(api: httpx.Client) -> None:
    from omni_mcp.tools import identity, user_groups, users

    name = email("mcp")
    with attribute(api, "region_") as region, attribute(api, "level_", type="Number") as level:
        created = call(users.omni_create_user, users.CreateUserInput(
            user_name=name, display_name="Mcp User", user_attributes={region: "west"}))  # fmt: skip
        match = re.fullmatch(r"Created user \*\*Mcp User\*\* \(id `(?P<id>[0-9a-f-]{36})`\)\.",
                             created)  # fmt: skip
        assert match is not None, created
        user_id = match["id"]
        (stored,) = held(api, name)
        assert stored["id"] == user_id and stored[ATTRIBUTES] == {region: "west"}

        listed = json.loads(call(users.omni_list_users, users.ListUsersInput(
            filter=f'userName eq "{name}"', response_format="json")))  # fmt: skip
        assert [u["id"] for u in listed["Resources"]] == [user_id]
        text = call(users.omni_list_users, users.ListUsersInput(filter=f'userName co "{name}"'))
        assert f"**Mcp User** (`{user_id}`)" in text and "Showing **1** of **1**" in text

        updated = call(users.omni_update_user, users.UpdateUserInput(
            user_id=user_id, display_name="Mcp Two", user_attributes={level: 42}))  # fmt: skip
        assert updated == f"Updated user **Mcp Two** (id `{user_id}`) — active: true."
        (stored,) = held(api, name)
        assert stored["displayName"] == "Mcp Two"
        assert stored[ATTRIBUTES] == {region: "west", level: "42"}

        refused = asyncio.run(users.omni_update_user(users.UpdateUserInput(
            user_id=user_id, user_attributes={level: "lots"})))  # fmt: skip
        assert refused.startswith("Error (400)") and "'lots' is not a number" in refused
        assert held(api, name)[0][ATTRIBUTES] == {region: "west", level: "42"}

        records = json.loads(
            call(
                identity.omni_list_user_attributes,
                identity.ListUserAttributesInput(response_format="json"),
            )
        )
        names = [r["name"] for r in records["records"]]
        assert names[0] == "omni_user_email" and {region, level} <= set(names)

    assigned = call(user_groups.omni_assign_user_model_role, user_groups.AssignUserModelRoleInput(
        user_id=user_id, model_id=MODEL_ID, role_name="VIEWER"))  # fmt: skip
    assert assigned.startswith(f"Assigned role **VIEWER** to user `{user_id}` for model")
    (row,) = api.get(f"/api/v1/users/{user_id}/model-roles").json()["results"]
    assert (row["roleName"], row["from"]) == ("VIEWER", {"type": "USER"})

    table = call(user_groups.omni_get_user_model_roles,
                 user_groups.GetUserModelRolesInput(user_id=user_id))  # fmt: skip
    assert f"membership `{user_id}`" in table and "VIEWER" in table and "USER" in table
    raw = json.loads(call(user_groups.omni_get_user_model_roles, user_groups.GetUserModelRolesInput(
        user_id=user_id, model_id=MODEL_ID, response_format="json")))  # fmt: skip
    assert raw["results"][0]["roleName"] == "VIEWER"
