"""SCIM 2.0 users over a real `assay serve` (governance section 1.3): create, list with
filters and pages, replace, patch in every path form, delete, and what a bad request leaves
behind (nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.conftest import Server
from tests.server.directory import ATTRIBUTES, SCIM, attribute, bearer, email, scim_user, unique

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def attrs(api: httpx.Client) -> Iterator[dict[str, str]]:
    """region (String), brands (String, several values), level (Number), each this test's."""
    with (
        attribute(api, "region_") as region,
        attribute(api, "brands_", multiple_values=True) as brands,
        attribute(api, "level_", type="Number") as level,
    ):
        yield {"region": region, "brands": brands, "level": level}


def patch(api: httpx.Client, user_id: str, *operations: dict[str, Any]) -> httpx.Response:
    return api.patch(f"{SCIM}/{user_id}", json={"schemas": [PATCH], "Operations": operations})


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["schemas"] == [ERROR_SCHEMA] and body["status"] == status
    detail: str = body["detail"]
    return detail


def test_create_then_read_on_either_path_and_a_duplicate_is_409(
    api: httpx.Client, attrs: dict[str, str]
) -> None:
    name = email("Ann")
    values = {attrs["region"]: "west", attrs["brands"]: ["a", "b"], attrs["level"]: 7.50}
    created = api.post(SCIM, json={"userName": name, "displayName": "Ann Lee", ATTRIBUTES: values})
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User"]
    assert (user["userName"], user["displayName"], user["active"]) == (name, "Ann Lee", True)
    assert user["emails"] == [{"primary": True, "value": name, "type": "work"}]
    assert user["groups"] == []
    assert user[ATTRIBUTES] == {attrs["region"]: "west", attrs["brands"]: ["a", "b"],
                                attrs["level"]: "7.5"}  # fmt: skip
    meta = user["meta"]
    assert meta["resourceType"] == "User" and meta["created"].endswith("Z")
    assert created.headers["location"] == meta["location"]
    assert meta["location"].endswith(f"/api/scim/v2/Users/{user['id']}")

    assert api.get(f"/api/scim/v2/users/{user['id']}").json() == user
    assert api.get(f"{SCIM}/{user['id'].upper()}").json() == user, "any spelling of the uuid"

    again = api.post("/api/scim/v2/users", json={"userName": name.upper()})
    assert "already exists" in error(again, 409)
    assert again.json()["scimType"] == "uniqueness"
    listed = api.get(SCIM, params={"filter": f'userName eq "{name}"'}).json()
    assert listed["totalResults"] == 1


def test_filter_any_case_and_pages_oldest_first(api: httpx.Client) -> None:
    tag = unique("f")
    names = [f"{tag}-{i}@Example.com" for i in range(3)]
    ids = [scim_user(api, n)["id"] for n in names]

    exact = api.get(SCIM, params={"filter": f'userName eq "{names[1].upper()}"'}).json()
    assert exact["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert (exact["totalResults"], [u["id"] for u in exact["Resources"]]) == (1, [ids[1]])
    contains = api.get("/api/scim/v2/users", params={"filter": f'userName co "{tag.upper()}"'})
    assert [u["id"] for u in contains.json()["Resources"]] == ids
    starts = api.get(SCIM, params={"filter": f'USERNAME SW "{tag}-2"'}).json()
    assert [u["id"] for u in starts["Resources"]] == ids[2:]
    nobody = api.get(SCIM, params={"filter": 'userName eq "nobody@nowhere.example"'}).json()
    assert (nobody["totalResults"], nobody["Resources"]) == (0, [])

    page = api.get(SCIM, params={"filter": f'userName sw "{tag}"', "startIndex": 2, "count": 1})
    body = page.json()
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (3, 2, 1)
    assert [u["id"] for u in body["Resources"]] == ids[1:2]
    rest = api.get(SCIM, params={"filter": f'userName co "{tag}"', "startIndex": 3}).json()
    assert [u["id"] for u in rest["Resources"]] == ids[2:]
    everyone = api.get(SCIM, params={"count": 1000}).json()
    assert everyone["itemsPerPage"] == everyone["totalResults"] >= 4  # and the admin
    assert "admin@localhost" in {u["userName"] for u in everyone["Resources"]}

    for params, message in (
        ({"filter": 'displayName eq "x"'}, "userName only, not 'displayName'"),
        ({"filter": 'userName ne "x"'}, "operator 'ne' is not supported"),
        ({"filter": "userName eq x"}, "cannot read"),
        ({"startIndex": "first"}, "startIndex must be an integer"),
    ):
        assert message in error(api.get(SCIM, params=params), 400)


def test_put_replaces_the_whole_resource(api: httpx.Client, attrs: dict[str, str]) -> None:
    name = email()
    user = scim_user(api, name, displayName="Ann", **{ATTRIBUTES: {attrs["region"]: "west"}})
    url = f"{SCIM}/{user['id']}"
    bare = api.put(url, json={"userName": name})
    assert bare.status_code == 200, bare.text
    got = bare.json()
    assert (got[ATTRIBUTES], got["displayName"], got["active"]) == ({}, name.split("@")[0], True)
    assert got["meta"]["created"] == user["meta"]["created"]
    full = api.put(url, json={"userName": name, "displayName": "Ann B", "active": False,
                              ATTRIBUTES: {attrs["brands"]: "solo"}}).json()  # fmt: skip
    assert (full["displayName"], full["active"], full[ATTRIBUTES]) == (
        "Ann B", False, {attrs["brands"]: ["solo"]}
    )  # fmt: skip
    assert api.get(url).json() == full
    assert "userName" in error(api.put(url, json={"displayName": "x"}), 400)


def test_patch_each_path_form(api: httpx.Client, attrs: dict[str, str]) -> None:
    region, brands, level = attrs["region"], attrs["brands"], attrs["level"]
    name = email()
    user = scim_user(api, name, **{ATTRIBUTES: {region: "west", brands: ["a"]}})
    uid = user["id"]

    def now() -> dict[str, Any]:
        body: dict[str, Any] = api.get(f"{SCIM}/{uid}").json()
        return body

    done = patch(api, uid, {"op": "Replace", "path": "displayName", "value": "Ann Q"},
                 {"op": "replace", "path": "active", "value": "False"})  # fmt: skip
    assert done.status_code == 200, done.text
    assert (done.json()["displayName"], done.json()["active"]) == ("Ann Q", False)
    patch(api, uid, {"op": "replace", "path": ATTRIBUTES, "value": {level: "3", region: None}})
    assert now()[ATTRIBUTES] == {brands: ["a"], level: "3"}, "merged; null clears"
    patch(api, uid, {"op": "add", "path": f"{ATTRIBUTES}:{brands}", "value": ["b", "a"]})
    assert now()[ATTRIBUTES][brands] == ["a", "b"], "add appends to a multi-valued attribute"
    patch(api, uid, {"op": "replace", "path": f"{ATTRIBUTES}:{brands}", "value": "c"})
    assert now()[ATTRIBUTES][brands] == ["c"]
    patch(api, uid, {"op": "remove", "path": f"{ATTRIBUTES}:{level}"})
    assert now()[ATTRIBUTES] == {brands: ["c"]}
    patch(api, uid, {"op": "replace", "value": {"active": True, "displayName": "Ann R",
                                                f"{ATTRIBUTES}:{region}": "north"}})  # fmt: skip
    got = now()
    assert (got["active"], got["displayName"], got[ATTRIBUTES][region]) == (True, "Ann R", "north")
    patch(api, uid, {"op": "remove", "path": ATTRIBUTES})
    assert now()[ATTRIBUTES] == {}
    renamed = email("renamed")
    patch(api, uid, {"op": "replace", "path": "userName", "value": renamed},
          {"op": "remove", "path": "displayName"})  # fmt: skip
    got = now()
    assert (got["userName"], got["displayName"]) == (renamed, renamed.split("@")[0])
    assert got["meta"]["lastModified"] >= user["meta"]["lastModified"]


def test_bad_requests_change_nothing(api: httpx.Client, attrs: dict[str, str]) -> None:
    region, brands, level = attrs["region"], attrs["brands"], attrs["level"]
    name = email()
    for values, message in (
        ({region[:-1]: "x"}, f'Did you mean "{region}"?'),
        ({"omni_user_email": "x@y.z"}, "system attribute"),
        ({level: "high"}, "'high' is not a number"),
        ({region: ["a", "b"]}, "takes one value, not a list of 2"),
    ):
        assert message in error(api.post(SCIM, json={"userName": name, ATTRIBUTES: values}), 400)
    assert "not an email address" in error(api.post(SCIM, json={"userName": "ann"}), 400)
    nobody = api.get(SCIM, params={"filter": f'userName eq "{name}"'}).json()
    assert nobody["totalResults"] == 0, "no refused create left a user"

    user = scim_user(api, name, **{ATTRIBUTES: {region: "west", brands: ["a"]}})
    url = f"{SCIM}/{user['id']}"
    good = {"op": "replace", "path": "displayName", "value": "Changed"}
    for operation, message in (
        ({"op": "replace", "path": f"{ATTRIBUTES}:{level}", "value": "x"}, "not a number"),
        ({"op": "move", "path": "displayName", "value": "x"}, "op must be add, replace or remove"),
        ({"op": "replace", "path": "nickName", "value": "x"}, "path 'nickName' is not supported"),
        ({"op": "remove", "path": "userName"}, "userName is required"),
        ({"op": "replace", "path": "active", "value": "maybe"}, "expected boolean"),
        ({"op": "remove"}, "remove needs a path"),
        ({"op": "replace", "path": "displayName"}, "replace needs a value"),
    ):
        detail = error(patch(api, user["id"], good, operation), 400)
        assert detail.startswith("Operations[1]: ") and message in detail, detail
    assert "PatchOp" in error(api.patch(url, json={"Operations": [good]}), 400)
    taken = scim_user(api, email())["userName"]
    rename = {"op": "replace", "path": "userName", "value": taken}
    assert "already exists" in error(patch(api, user["id"], rename), 409)
    assert "not a number" in error(
        api.put(url, json={"userName": name, ATTRIBUTES: {level: "x"}}), 400)  # fmt: skip
    after = api.get(url).json()
    assert after == user, "every refused write left the user as it was"


def test_delete_removes_the_user_and_refuses_their_token(server: Server, api: httpx.Client) -> None:
    name = email("gone")
    user = scim_user(api, name)
    token = server.key("--user", name)  # the operator's CLI gives the SCIM user a token
    me = httpx.get(f"{server.url}/api/v1/whoami", headers=bearer(token))
    assert me.status_code == 200 and me.json()["user"]["id"] == user["id"]

    deleted = api.delete(f"/api/scim/v2/users/{user['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    refused = httpx.get(f"{server.url}/api/v1/whoami", headers=bearer(token))
    assert refused.status_code == 401
    assert "not found" in error(api.get(f"{SCIM}/{user['id']}"), 404)
    assert "not found" in error(api.delete(f"{SCIM}/{user['id']}"), 404)
    listed = api.get(SCIM, params={"filter": f'userName eq "{name}"'}).json()
    assert listed["totalResults"] == 0


def test_personal_tokens_are_refused_with_omnis_words(server: Server, api: httpx.Client) -> None:
    token = server.key("--user", email("pat"))
    someone = scim_user(api, email())
    with httpx.Client(base_url=server.url, headers=bearer(token)) as pat:
        for response in (
            pat.get(SCIM),
            pat.get(f"/api/scim/v2/users/{someone['id']}"),
            pat.post(SCIM, json={"userName": email()}),
            pat.delete(f"{SCIM}/{someone['id']}"),
        ):
            assert error(response, 403) == (
                "User-scoped API keys are not allowed to access the SCIM API."
            )
    assert api.get(f"{SCIM}/{someone['id']}").status_code == 200


def test_unknown_and_malformed_ids_are_404(api: httpx.Client) -> None:
    for user_id in ("00000000-0000-0000-0000-000000000000", "not-a-uuid"):
        assert error(api.get(f"{SCIM}/{user_id}"), 404) == f"User {user_id} not found"
        assert error(api.put(f"{SCIM}/{user_id}", json={"userName": email()}), 404)
        assert error(api.delete(f"{SCIM}/{user_id}"), 404)


def test_the_key_cannot_delete_or_deactivate_its_own_user(api: httpx.Client) -> None:
    me = api.get("/api/v1/whoami").json()["user"]
    assert "the user this API key acts as" in error(api.delete(f"{SCIM}/{me['id']}"), 409)
    deactivate = {"op": "replace", "path": "active", "value": False}
    assert "acts as" in error(patch(api, me["id"], deactivate), 409)
    assert api.get("/api/v1/whoami").status_code == 200
