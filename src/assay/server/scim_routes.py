"""SCIM 2.0 users (RFC 7643/7644), as Omni serves them: how an identity provider, Omni's SDK
(``upsert_user``) or an agent provisions users and sets their user attribute values.

Served at ``/api/scim/v2/Users`` and ``/api/scim/v2/users`` (Omni's clients use both). A user's
``id`` is their membership id, the ``userId`` queries run as. Organization keys only. A write
is checked whole before anything is stored: a bad operation or value changes nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from assay.errors import did_you_mean
from assay.jobs.users import (
    AttributeDef,
    DirectoryError,
    User,
    checked_attributes,
    is_email,
    new_user,
)
from assay.server.auth import Principal
from assay.server.errors import ApiError
from assay.server.requests import canonical_uuid, json_body, received
from assay.server.state import caller, state_of

router = APIRouter()
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
PATS_REFUSED = "User-scoped API keys are not allowed to access the SCIM API."
PATHS = ("/api/scim/v2/Users", "/api/scim/v2/users")
_FILTER = re.compile(r'^\s*(\S+)\s+(\S+)\s+"((?:[^"\\]|\\.)*)"\s*$')
_FILTER_OPS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda name, value: name == value,
    "co": lambda name, value: value in name,
    "sw": lambda name, value: name.startswith(value),
}
_CORE_PATHS = {"active": "active", "displayname": "displayName", "username": "userName"}


def scim_error(
    status: int, message: str, scim_type: str | None = None, *, code: str | None = None
) -> ApiError:
    """Our usual error body, with SCIM's ``schemas`` (and ``scimType``) added."""
    extra: dict[str, Any] = {"schemas": [ERROR_SCHEMA]}
    if scim_type:
        extra["scimType"] = scim_type
    return ApiError(status, message, code=code, extra=extra)


def _directory_error(exc: DirectoryError) -> ApiError:
    scim_type = "uniqueness" if exc.status == 409 else "invalidValue"
    return scim_error(exc.status, exc.message, scim_type, code=exc.code)


def _org_key(request: Request) -> Principal:
    principal = caller(request, None)
    if not principal.org_key:
        raise scim_error(403, PATS_REFUSED)
    return principal


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def resource(request: Request, user: User, definitions: list[AttributeDef]) -> dict[str, Any]:
    """A user as SCIM shows them: their own attribute values (not defaults), a single-valued
    attribute's as a string, a multi-valued one's as a list."""
    multiple = {d.name for d in definitions if d.multiple_values}
    values = {name: list(v) if name in multiple else v[0]
              for name, v in sorted(user.attributes.items()) if v}  # fmt: skip
    return {
        "schemas": [USER_SCHEMA],
        "id": user.id,
        "userName": user.user_name,
        "displayName": user.display_name,
        "active": user.active,
        "emails": [{"primary": True, "value": user.user_name, "type": "work"}],
        "groups": [],
        ATTRIBUTES: values,
        "meta": {
            "resourceType": "User",
            "created": _iso(user.created_at),
            "lastModified": _iso(user.updated_at),
            "location": f"{str(request.base_url).rstrip('/')}{PATHS[0]}/{user.id}",
        },
    }


def _answer(request: Request, user: User, status: int = 200) -> JSONResponse:
    definitions = state_of(request).store.users.attribute_definitions()
    body = resource(request, user, definitions)
    headers = {"Location": body["meta"]["location"]}
    return JSONResponse(body, status_code=status, headers=headers)


def _user(request: Request, user_id: str) -> User:
    """The user with this id; 404 for an unknown id and for one that is not a UUID (no user
    can have it), as SCIM answers for a resource that is not there."""
    canonical = canonical_uuid(user_id)
    user = state_of(request).store.users.user(canonical) if canonical else None
    if user is None:
        raise scim_error(404, f"User {user_id} not found")
    return user


def _not_self(principal: Principal, user: User, action: str) -> None:
    """Refuse to lock out the key making the request: its own user is what it acts as."""
    if principal.key.user_id == user.id:
        raise scim_error(409, f"Cannot {action} {user.user_name}: it is the user this API key "
                         "acts as, and the key would stop working. Use another organization key, "
                         "or the assay command line", "mutability")  # fmt: skip


# ---------------------------------------------------------------------- list and read


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return int(float(raw))
    except ValueError:
        raise scim_error(400, f"{name} must be an integer, not {raw!r}") from None


def _parse_filter(text: str) -> tuple[str, str]:
    """``userName eq|co|sw "value"`` -> (operator, lower-cased value)."""
    match = _FILTER.match(text)
    if match is None:
        raise scim_error(400, f'filter: cannot read {text!r}: expected userName eq "value" '
                         "(or co, sw)", "invalidFilter")  # fmt: skip
    attribute, operator, value = match.groups()
    if attribute.lower() not in ("username", "emails", "emails.value"):
        hint = did_you_mean(attribute, ["userName"])
        raise scim_error(400, f"filter: users can be filtered on userName only, not "
                         f"{attribute!r}.{hint}", "invalidFilter")  # fmt: skip
    if operator.lower() not in _FILTER_OPS:
        raise scim_error(400, f"filter: operator {operator!r} is not supported: use eq, co or sw",
                         "invalidFilter")  # fmt: skip
    return operator.lower(), re.sub(r"\\(.)", r"\1", value).lower()


@router.get("/api/scim/v2/Users")
@router.get("/api/scim/v2/users")
async def list_users(request: Request) -> JSONResponse:
    """A page of users, oldest first (``startIndex`` 1-based, ``count``), optionally filtered
    on userName (eq, co, sw; case does not count)."""
    _org_key(request)
    directory = state_of(request).store.users
    start = max(1, _int_param(request, "startIndex", 1))
    count = max(0, _int_param(request, "count", 100))
    text = request.query_params.get("filter")
    if text and text.strip():
        operator, value = _parse_filter(text)
        if operator == "eq":
            total, page = directory.users(user_name=value, start=start - 1, count=count)
        else:
            _, everyone = directory.users()
            matches = [u for u in everyone if _FILTER_OPS[operator](u.user_name.lower(), value)]
            total, page = len(matches), matches[start - 1 : start - 1 + count]
    else:
        total, page = directory.users(start=start - 1, count=count)
    definitions = directory.attribute_definitions()
    return JSONResponse({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(page),
        "Resources": [resource(request, u, definitions) for u in page],
    })  # fmt: skip


@router.get("/api/scim/v2/Users/{user_id}")
@router.get("/api/scim/v2/users/{user_id}")
async def get_user(request: Request, user_id: str) -> JSONResponse:
    _org_key(request)
    return _answer(request, _user(request, user_id))


# ---------------------------------------------------------------------- create and replace


@router.post("/api/scim/v2/Users", status_code=201)
@router.post("/api/scim/v2/users", status_code=201)
async def create_user(request: Request) -> JSONResponse:
    _org_key(request)
    body = await json_body(request)
    directory = state_of(request).store.users
    user_name = _user_name(body.get("userName"), present="userName" in body)
    values = _values(body, directory.attribute_definitions())
    user = new_user(user_name, _display_name(body), time.time(), attributes=values)
    user = replace(user, active=_active(body.get("active", True), "active"))
    try:
        directory.add_user(user)
    except DirectoryError as exc:
        raise _directory_error(exc) from None
    return _answer(request, directory.user(user.id) or user, 201)


@router.put("/api/scim/v2/Users/{user_id}")
@router.put("/api/scim/v2/users/{user_id}")
async def replace_user(request: Request, user_id: str) -> JSONResponse:
    """The whole resource: an optional part left out goes back to its default (no attribute
    values, active, a display name from the userName)."""
    principal = _org_key(request)
    body = await json_body(request)
    directory = state_of(request).store.users
    user = _user(request, user_id)
    user_name = _user_name(body.get("userName"), present="userName" in body)
    values = _values(body, directory.attribute_definitions())
    fresh = new_user(user_name, _display_name(body), time.time(), attributes=values)
    active = _active(body.get("active", True), "active")
    if not active:
        _not_self(principal, user, "deactivate")
    return _store(request, replace(user, user_name=fresh.user_name, active=active,
                                   display_name=fresh.display_name, attributes=fresh.attributes,
                                   updated_at=fresh.updated_at))  # fmt: skip


def _store(request: Request, user: User) -> JSONResponse:
    directory = state_of(request).store.users
    try:
        if not directory.replace_user(user):
            raise scim_error(404, f"User {user.id} not found")
    except DirectoryError as exc:
        raise _directory_error(exc) from None
    return _answer(request, directory.user(user.id) or user)


def _user_name(value: Any, *, present: bool = True) -> str:
    if not isinstance(value, str):
        raise scim_error(400, f"userName: Invalid input: expected string, received "
                         f"{received(value, present=present)}", "invalidValue")  # fmt: skip
    name = value.strip()
    if not is_email(name):
        raise scim_error(400, f"userName: {value!r} is not an email address", "invalidValue")
    return name


def _display_name(body: dict[str, Any]) -> str | None:
    value = body.get("displayName")
    if value is not None and not isinstance(value, str):
        raise scim_error(400, f"displayName: expected string, received {received(value)}",
                         "invalidValue")  # fmt: skip
    return value


def _active(value: Any, where: str) -> bool:
    """A boolean, or the strings "true"/"false" some identity providers send."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise scim_error(400, f"{where}: expected boolean, received {received(value)}",
                     "invalidValue")  # fmt: skip


def _values(body: dict[str, Any], definitions: list[AttributeDef]) -> dict[str, tuple[str, ...]]:
    raw = body.get(ATTRIBUTES, {})
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise scim_error(400, f"{ATTRIBUTES}: expected object, received {received(raw)}",
                         "invalidValue")  # fmt: skip
    checked = _checked(raw, definitions, ATTRIBUTES)
    return {name: v for name, v in checked.items() if v}


def _checked(
    raw: dict[str, Any], definitions: list[AttributeDef], where: str
) -> dict[str, tuple[str, ...] | None]:
    try:
        return checked_attributes(raw, definitions)
    except DirectoryError as exc:
        raise scim_error(400, f"{where}: {exc.message}", "invalidValue") from None


# ---------------------------------------------------------------------- patch and delete


@dataclass
class _Draft:
    """A user being patched: operations apply here in order; stored only if all are good."""

    user: User
    definitions: list[AttributeDef]
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    display_name_reset: bool = False

    def set_value(self, name: str, value: Any, op: str, where: str) -> None:
        checked = _checked({name: value if op != "remove" else None}, self.definitions, where)
        values = checked[name]
        multiple = any(d.name == name and d.multiple_values for d in self.definitions)
        if values is None:
            self.attributes.pop(name, None)
        elif op == "add" and multiple:
            old = self.attributes.get(name, ())
            self.attributes[name] = old + tuple(v for v in values if v not in old)
        else:
            self.attributes[name] = values

    def set_core(self, name: str, value: Any, op: str, where: str) -> None:
        if name == "active":
            if op == "remove":
                raise scim_error(400, f"{where}: active cannot be removed", "mutability")
            self.user = replace(self.user, active=_active(value, where))
        elif name == "displayName":
            if op == "remove" or value is None:
                self.display_name_reset = True
            elif not isinstance(value, str):
                raise scim_error(400, f"{where}: displayName: expected string, received "
                                 f"{received(value)}", "invalidValue")  # fmt: skip
            else:
                self.user = replace(self.user, display_name=value)
                self.display_name_reset = not value.strip()
        else:
            if op == "remove":
                raise scim_error(400, f"{where}: userName is required: it cannot be removed",
                                 "mutability")  # fmt: skip
            self.user = replace(self.user, user_name=_user_name(value))

    def apply(self, op: str, path: str, value: Any, where: str) -> None:
        lower = path.lower()
        prefix = ATTRIBUTES.lower()
        if lower in _CORE_PATHS:
            self.set_core(_CORE_PATHS[lower], value, op, where)
        elif lower == prefix:
            if op == "remove":
                self.attributes.clear()
                return
            if not isinstance(value, dict):
                raise scim_error(400, f"{where}: {ATTRIBUTES} takes an object of values, "
                                 f"received {received(value)}", "invalidValue")  # fmt: skip
            for name, item in value.items():
                self.set_value(name, item, op, where)
        elif lower.startswith(prefix + ":"):
            self.set_value(path[len(prefix) + 1 :], value, op, where)
        else:
            known = [*_CORE_PATHS.values(), ATTRIBUTES, f"{ATTRIBUTES}:<name>"]
            hint = did_you_mean(path, known)
            raise scim_error(400, f"{where}: path {path!r} is not supported: use "
                             f"{', '.join(known)}.{hint}", "invalidPath")  # fmt: skip


@router.patch("/api/scim/v2/Users/{user_id}")
@router.patch("/api/scim/v2/users/{user_id}")
async def patch_user(request: Request, user_id: str) -> JSONResponse:
    principal = _org_key(request)
    body = await json_body(request)
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or PATCH_SCHEMA not in schemas:
        raise scim_error(400, f'schemas: a PATCH body must be {{"schemas": ["{PATCH_SCHEMA}"], '
                         '"Operations": [...]}', "invalidSyntax")  # fmt: skip
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise scim_error(400, "Operations: expected a non-empty array of operations",
                         "invalidSyntax")  # fmt: skip
    user = _user(request, user_id)
    definitions = state_of(request).store.users.attribute_definitions()
    draft = _Draft(user, definitions, dict(user.attributes))
    for i, operation in enumerate(operations):
        _apply_operation(draft, operation, f"Operations[{i}]")
    if not draft.user.active and user.active:
        _not_self(principal, user, "deactivate")
    patched = draft.user
    if draft.display_name_reset:
        patched = replace(patched, display_name=new_user(patched.user_name, None, 0).display_name)
    return _store(request, replace(patched, attributes=draft.attributes, updated_at=time.time()))


def _apply_operation(draft: _Draft, operation: Any, where: str) -> None:
    if not isinstance(operation, dict):
        raise scim_error(400, f"{where}: expected object, received {received(operation)}",
                         "invalidSyntax")  # fmt: skip
    op = operation.get("op")
    if not isinstance(op, str) or op.lower() not in ("add", "replace", "remove"):
        raise scim_error(400, f"{where}: op must be add, replace or remove, not {op!r}",
                         "invalidSyntax")  # fmt: skip
    op = op.lower()
    path, value = operation.get("path"), operation.get("value")
    if op != "remove" and "value" not in operation:
        raise scim_error(400, f"{where}: {op} needs a value", "invalidValue")
    if path is None:
        if op == "remove":
            raise scim_error(400, f"{where}: remove needs a path", "noTarget")
        if not isinstance(value, dict):
            raise scim_error(400, f"{where}: without a path, the value must be an object of "
                             f"attributes, received {received(value)}", "invalidValue")  # fmt: skip
        for key, item in value.items():
            draft.apply(op, key, item, where)
        return
    if not isinstance(path, str) or not path.strip():
        raise scim_error(400, f"{where}: path must be a non-empty string", "invalidPath")
    draft.apply(op, path.strip(), value, where)


@router.delete("/api/scim/v2/Users/{user_id}", status_code=204)
@router.delete("/api/scim/v2/users/{user_id}", status_code=204)
async def delete_user(request: Request, user_id: str) -> Response:
    """Remove the user, their model roles, and (in the same transaction) every key of theirs."""
    principal = _org_key(request)
    user = _user(request, user_id)
    _not_self(principal, user, "delete")
    if not state_of(request).store.users.delete_user(user.id, time.time()):
        raise scim_error(404, f"User {user_id} not found")
    return Response(status_code=204)
