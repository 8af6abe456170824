"""Per-model roles over a real `assay serve` (governance section 6.3): what a user resolves to
on each served model, and assigning a role by model or by connection."""

from __future__ import annotations

import httpx

from tests.server.conftest import MODEL_ID, Server
from tests.server.directory import bearer, email, scim_user

NOBODY = "00000000-0000-0000-0000-000000000000"


def roles_url(user_id: str) -> str:
    return f"/api/v1/users/{user_id}/model-roles"


def detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    text: str = response.json()["detail"]
    return text


def connection_id(api: httpx.Client) -> str:
    value: str = api.get("/api/v1/models").json()["records"][0]["connectionId"]
    return value


def test_a_new_user_resolves_to_the_default_and_an_admin_to_connection_admin(
    api: httpx.Client,
) -> None:
    user = scim_user(api, email())
    got = api.get(roles_url(user["id"])).json()
    assert got == {"membershipId": user["id"], "results": [{
        "roleName": "QUERIER", "baseRole": "QUERIER", "modelId": MODEL_ID,
        "connectionId": connection_id(api), "priority": 3, "resolved": True,
        "from": {"type": "BASE"},
    }]}  # fmt: skip
    admin = api.get("/api/v1/whoami").json()["user"]["id"]
    (row,) = api.get(roles_url(admin)).json()["results"]
    assert (row["roleName"], row["from"], row["resolved"]) == ("CONNECTION_ADMIN",
                                                                {"type": "ORG"}, True)  # fmt: skip


def test_assign_by_model_then_by_connection(server: Server, api: httpx.Client) -> None:
    name = email()
    user = scim_user(api, name)
    assigned = api.post(roles_url(user["id"]), json={"modelId": MODEL_ID, "roleName": "viewer"})
    assert assigned.status_code == 200, assigned.text
    connection = connection_id(api)
    assert assigned.json() == {"membershipId": user["id"], "modelId": MODEL_ID,
                               "connectionId": connection, "roleName": "VIEWER"}  # fmt: skip
    (row,) = api.get(roles_url(user["id"])).json()["results"]
    assert (row["roleName"], row["from"], row["resolved"], row["priority"]) == (
        "VIEWER", {"type": "USER"}, True, 1)  # fmt: skip

    token = server.key("--user", name)
    mine = httpx.get(f"{server.url}/api/v1/whoami", headers=bearer(token)).json()
    assert mine["rolesByModel"][MODEL_ID]["roleName"] == "VIEWER"
    assert mine["rolesByModel"][MODEL_ID]["permissions"] == []

    by_connection = api.post(roles_url(user["id"]),
                             json={"connectionId": connection, "roleName": "MODELER"})  # fmt: skip
    assert by_connection.json() == {"membershipId": user["id"], "modelId": None,
                                    "connectionId": connection, "roleName": "MODELER",
                                    "modelIds": [MODEL_ID]}  # fmt: skip
    mine = httpx.get(f"{server.url}/api/v1/whoami", headers=bearer(token)).json()
    assert "UPDATE" in mine["rolesByModel"][MODEL_ID]["permissions"]
    both = api.post(roles_url(user["id"]), json={"modelId": MODEL_ID, "connectionId": connection,
                                                  "roleName": "RESTRICTED_QUERIER"})  # fmt: skip
    assert both.status_code == 200 and both.json()["modelId"] == MODEL_ID
    filtered = api.get(roles_url(user["id"]), params={"connectionId": connection}).json()
    assert [r["roleName"] for r in filtered["results"]] == ["RESTRICTED_QUERIER"]
    assert detail(api.get(roles_url(user["id"]), params={"modelId": NOBODY}), 404)


def test_bad_assignments_are_refused(server: Server, api: httpx.Client) -> None:
    user = scim_user(api, email())
    url = roles_url(user["id"])
    for body, status, message in (
        ({"modelId": MODEL_ID, "roleName": "ADMIN"}, 422, "Invalid role"),
        ({"modelId": MODEL_ID, "roleName": "VIEWR"}, 422, 'Did you mean "VIEWER"?'),
        ({"roleName": "VIEWER"}, 400, "connectionId or modelId required"),
        ({"modelId": MODEL_ID}, 400, "roleName: Invalid input: expected string"),
        ({"modelId": "tpch", "roleName": "VIEWER"}, 400, "Invalid model ID"),
        ({"modelId": NOBODY, "roleName": "VIEWER"}, 404, "Model does not exist"),
        ({"connectionId": NOBODY, "roleName": "VIEWER"}, 404, "Connection does not exist"),
        ({"modelId": MODEL_ID, "connectionId": NOBODY, "roleName": "VIEWER"}, 404,
         "Connection does not exist"),
    ):  # fmt: skip
        assert message in detail(api.post(url, json=body), status)
    assert detail(api.post(roles_url(NOBODY), json={"modelId": MODEL_ID, "roleName": "VIEWER"}),
                  404) == f"User {NOBODY} not found in organization"  # fmt: skip
    assert detail(api.get(roles_url("nope")), 404)
    (row,) = api.get(url).json()["results"]
    assert row["from"] == {"type": "BASE"}, "no refused assignment was stored"

    token = server.key("--user", user["userName"])
    with httpx.Client(base_url=server.url, headers=bearer(token)) as pat:
        forbidden = "Permission denied - admin role required"
        assert detail(pat.get(url), 403) == forbidden
        assert detail(pat.post(url, json={"modelId": MODEL_ID, "roleName": "MODELER"}),
                      403) == forbidden  # fmt: skip
