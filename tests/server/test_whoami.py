"""whoami over a real `assay serve` (contract section 6.6): who the key acts as, and the role
and permissions that user resolves to on each model."""

from __future__ import annotations

import httpx

from tests.server.conftest import MODEL_ID, Server
from tests.server.directory import bearer, email, scim_user


def test_an_organization_key_acts_as_the_org_admin(api: httpx.Client) -> None:
    me = api.get("/api/v1/whoami").json()
    assert me["keyScope"] == "organization" and me["orgRole"] == "ORG_ADMIN"
    assert me["user"]["email"] == "admin@localhost" and me["user"]["name"] == "Organization admin"
    assert me["user"]["id"] == me["user"]["membershipId"]
    role = me["rolesByModel"][MODEL_ID]
    assert (role["roleName"], role["baseRole"]) == ("CONNECTION_ADMIN", "CONNECTION_ADMIN")
    assert role["permissions"] == ["QUERY_TOPICS", "QUERY_FULL_MODEL", "QUERY_SQL", "VIEW_SQL",
                                   "UPDATE"]  # fmt: skip
    assert me["rolesByModelTruncated"] is False


def test_a_personal_token_acts_as_its_member_user(server: Server, api: httpx.Client) -> None:
    name = email("Member")
    user = scim_user(api, name, displayName="Mem Ber")
    token = server.key("--user", name.lower())
    with httpx.Client(base_url=server.url, headers=bearer(token)) as pat:
        me = pat.get("/api/v1/whoami").json()
        assert me["user"] == {"id": user["id"], "membershipId": user["id"], "email": name,
                              "name": "Mem Ber"}  # fmt: skip
        assert (me["keyScope"], me["orgRole"]) == ("user", "MEMBER")
        role = me["rolesByModel"][MODEL_ID]
        assert (role["roleName"], role["permissions"]) == (
            "QUERIER", ["QUERY_TOPICS", "QUERY_FULL_MODEL", "QUERY_SQL", "VIEW_SQL"])  # fmt: skip
        api.post(f"/api/v1/users/{user['id']}/model-roles",
                 json={"modelId": MODEL_ID, "roleName": "RESTRICTED_QUERIER"})  # fmt: skip
        role = pat.get("/api/v1/whoami").json()["rolesByModel"][MODEL_ID]
        assert (role["roleName"], role["permissions"]) == ("RESTRICTED_QUERIER", ["QUERY_TOPICS"])


def test_model_ids_narrow_the_answer(api: httpx.Client) -> None:
    for params in ({"modelId": MODEL_ID}, {"modelId": f"{MODEL_ID},{MODEL_ID.upper()}"}):
        assert list(api.get("/api/v1/whoami", params=params).json()["rolesByModel"]) == [MODEL_ID]
    nope = "00000000-0000-0000-0000-000000000000"
    missing = api.get("/api/v1/whoami", params=[("modelId", MODEL_ID), ("modelId", nope)])
    assert (missing.status_code, missing.json()["detail"]) == (404, f"Model(s) not found: {nope}")


def test_a_deactivated_users_token_is_refused(server: Server, api: httpx.Client) -> None:
    name = email()
    user = scim_user(api, name)
    token = server.key("--user", name)
    api.patch(f"/api/scim/v2/Users/{user['id']}", json={
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    })  # fmt: skip
    refused = httpx.get(f"{server.url}/api/v1/whoami", headers=bearer(token))
    assert (refused.status_code, refused.json()["detail"]) == (
        403, "User no longer has the required permissions to use this API key")  # fmt: skip
