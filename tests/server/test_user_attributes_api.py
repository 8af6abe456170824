"""User attribute definitions over a real `assay serve`: Omni's list (system attributes first,
read-only), and Assay's create, replace and delete on the same path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import MODEL_ID, Server, make_home
from tests.server.directory import ATTRIBUTES, SCIM, assay, attribute, bearer, email, scim_user

URL = "/api/v1/user-attributes"
SYSTEM = ["omni_user_email", "omni_user_id", "omni_user_name", "omni_user_groups",
          "omni_is_org_admin"]  # fmt: skip


def detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    text: str = response.json()["detail"]
    return text


def records(api: httpx.Client) -> dict[str, dict[str, object]]:
    listed = api.get(URL)
    assert listed.status_code == 200, listed.text
    return {r["name"]: r for r in listed.json()["records"]}


def test_system_attributes_come_first_and_are_read_only(api: httpx.Client) -> None:
    listed = api.get(URL).json()["records"]
    assert [r["name"] for r in listed[:5]] == SYSTEM
    groups = listed[3]
    assert groups == {"id": "", "name": "omni_user_groups", "label": "User groups",
                      "type": "String", "multiple_values": True, "default_value": None,
                      "description": None, "system": True}  # fmt: skip
    assert all(r["system"] is False for r in listed[5:])
    for response in (
        api.put(f"{URL}/omni_user_email", json={"label": "Mail"}),
        api.delete(f"{URL}/omni_is_org_admin"),
        api.post(URL, json={"name": "omni_user_id"}),
    ):
        assert "system attribute" in detail(response, 400)
    assert [r["name"] for r in api.get(URL).json()["records"][:5]] == SYSTEM


def test_create_checks_every_field(api: httpx.Client) -> None:
    with attribute(api, "sales_region_", description="where they sell") as name:
        record = records(api)[name]
        assert record["label"] == f"Sales region {name.removeprefix('sales_region_')}"
        assert (record["type"], record["multiple_values"], record["default_value"],
                record["description"], record["system"]) == (
            "String", False, None, "where they sell", False)  # fmt: skip
        assert "already exists" in detail(api.post(URL, json={"name": name}), 409)
    with attribute(api, "lvl_", type="number", multiple_values=True, default_value=[1, "2.50"],
                   label="Levels") as name:  # fmt: skip
        record = records(api)[name]
        assert (record["type"], record["default_value"], record["label"]) == (
            "Number", ["1", "2.5"], "Levels")  # fmt: skip
    for body, status, message in (
        ({"name": "Bad-Name"}, 400, "is not valid"),
        ({"label": "x"}, 400, "name: Invalid input: expected string, received undefined"),
        ({"name": "ok_name", "type": "Numbr"}, 400, 'Did you mean "Number"?'),
        ({"name": "ok_name", "multipleValues": True}, 400, 'Did you mean "multiple_values"?'),
        ({"name": "ok_name", "type": "Number", "default_value": "x"}, 400,
         "default_value: User attribute 'ok_name' is of type Number: 'x' is not a number"),
        ({"name": "ok_name", "default_value": ["a", "b"]}, 400, "takes one value"),
        ({"name": "ok_name", "multiple_values": "yes"}, 400, "expected boolean"),
    ):  # fmt: skip
        assert message in detail(api.post(URL, json=body), status)
    assert "ok_name" not in records(api)


def test_replace_refuses_a_type_change_a_stored_value_would_not_fit(api: httpx.Client) -> None:
    with attribute(api, "tier_", description="old") as name:
        user = scim_user(api, email(), **{ATTRIBUTES: {name: "gold"}})
        url = f"{URL}/{name}"
        refused = api.put(url, json={"type": "Number", "label": "Tier"})
        message = detail(refused, 409)
        assert user["userName"] in message and "gold" in message and "not a number" in message
        assert records(api)[name]["type"] == "String" and records(api)[name]["description"] == "old"

        api.patch(f"{SCIM}/{user['id']}", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": f"{ATTRIBUTES}:{name}", "value": "03"}],
        })  # fmt: skip
        changed = api.put(url, json={"type": "Number", "label": "Tier", "default_value": 1})
        assert changed.status_code == 200, changed.text
        assert {
            k: changed.json()[k] for k in ("type", "label", "default_value", "description")
        } == {"type": "Number", "label": "Tier", "default_value": "1", "description": None}
        assert api.get(f"{SCIM}/{user['id']}").json()[ATTRIBUTES] == {name: "3"}, "normalised"
        assert "cannot be renamed" in detail(api.put(url, json={"name": "other"}), 400)
    assert f'Did you mean "{name}"' not in detail(api.put(url, json={}), 404), "it is gone"


def test_delete_clears_every_users_value(api: httpx.Client) -> None:
    with attribute(api, "team_") as name, attribute(api, "keep_") as kept:
        user = scim_user(api, email(), **{ATTRIBUTES: {name: "a", kept: "b"}})
        typo = name[:-1]
        assert f'Did you mean "{name}"?' in detail(api.delete(f"{URL}/{typo}"), 404)
        deleted = api.delete(f"{URL}/{name}")
        assert (deleted.status_code, deleted.content) == (204, b"")
        assert name not in records(api)
        assert api.get(f"{SCIM}/{user['id']}").json()[ATTRIBUTES] == {kept: "b"}
        assert "No user attribute named" in detail(api.delete(f"{URL}/{name}"), 404)


def test_who_may_read_and_write(server: Server, api: httpx.Client) -> None:
    member = server.key("--user", email("member"))
    admin_name = email("boss")
    assay(server, "users", "create", admin_name, "--admin")
    admin = server.key("--user", admin_name)
    forbidden = "Permission denied - admin role required"
    with httpx.Client(base_url=server.url, headers=bearer(member)) as pat:
        assert detail(pat.get(URL), 403) == forbidden
    with httpx.Client(base_url=server.url, headers=bearer(admin)) as pat:
        assert [r["name"] for r in pat.get(URL).json()["records"][:1]] == ["omni_user_email"]
        assert detail(pat.post(URL, json={"name": "nope_x"}), 403) == forbidden
        assert detail(pat.delete(f"{URL}/nope_x"), 403) == forbidden


@pytest.fixture
def governed(tmp_path: Path, tpch_path: Path) -> Iterator[tuple[Server, str]]:
    """A server of its own (its model is edited) and an org key."""
    srv = Server(make_home(tmp_path), tpch_path).start()
    try:
        yield srv, srv.key("--org")
    finally:
        srv.stop()


def test_an_attribute_a_served_model_reads_cannot_be_deleted(
    governed: tuple[Server, str],
) -> None:
    server, key = governed
    with httpx.Client(base_url=server.url, headers=bearer(key), timeout=60) as api:
        created = api.post(URL, json={"name": "sales_region"})
        assert created.status_code == 201, created.text
        topic = ("base_view: region\naccess_filters:\n"
                 "  - field: region.r_name\n    user_attribute: sales_region\n")  # fmt: skip
        wrote = api.post(f"/api/v1/models/{MODEL_ID}/yaml",
                         json={"fileName": "governed_region.topic", "yaml": topic})  # fmt: skip
        assert wrote.status_code == 200, wrote.text
        message = detail(api.delete(f"{URL}/sales_region"), 409)
        assert message == ("User attribute 'sales_region' is read by model(s) tpch: remove it "
                           "from them first")  # fmt: skip
        assert "sales_region" in records(api)
