"""whoami, user attribute definitions and per-model roles, shaped as Omni's (governance
sections 1 and 6): who a key acts as and what they may do, and the admin's controls over it.

Omni lists attribute definitions but has no endpoint to write them (its UI does); Assay adds
POST, PUT and DELETE on the same path, in the same record shape, so a deployment is scriptable.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from assay.errors import did_you_mean
from assay.jobs.users import (
    SYSTEM_ATTRIBUTES,
    AttributeDef,
    AttributeType,
    DirectoryError,
    InvalidAttributeValue,
    User,
    all_definitions,
    attribute_values,
)
from assay.semantic.viewer import ADMIN_ROLE, DEFAULT_ROLE, ROLES
from assay.server.auth import Principal
from assay.server.errors import ApiError
from assay.server.requests import canonical_uuid, json_body, received
from assay.server.state import caller, state_of

router = APIRouter()
#: Omni truncates ``rolesByModel`` past this many models
WHOAMI_MODEL_LIMIT = 200
ADMIN_REQUIRED = "Permission denied - admin role required"
_ATTRIBUTE_FIELDS = ("name", "label", "type", "multiple_values", "default_value", "description")
#: higher is more permissive (Omni's ``priority``)
_PRIORITY = {role: rank for rank, role in enumerate(("NO_ACCESS", *ROLES, ADMIN_ROLE))}


def org_key_only(request: Request) -> Principal:
    """Writes to the directory need an organization key (it acts with admin rights)."""
    principal = caller(request, None)
    if not principal.org_key:
        raise ApiError(403, ADMIN_REQUIRED)
    return principal


def _admin(request: Request) -> Principal:
    """Reads need an organization key or the token of an organization admin."""
    principal = caller(request, None)
    if not (principal.org_key or principal.user.org_admin):
        raise ApiError(403, ADMIN_REQUIRED)
    return principal


def _directory_error(exc: DirectoryError) -> ApiError:
    return ApiError(exc.status, exc.message, code=exc.code)


# ---------------------------------------------------------------------- whoami


@router.get("/api/v1/whoami")
async def whoami(request: Request) -> JSONResponse:
    """Who the key acts as and what they may do on each model (omniframes asks this first)."""
    state = state_of(request)
    principal = caller(request, None)
    ids = state.registry.ids()
    asked = [p.strip() for v in request.query_params.getlist("modelId") for p in v.split(",")
             if p.strip()]  # fmt: skip
    if asked:
        canonical = list(dict.fromkeys(canonical_uuid(a) or a for a in asked))
        unknown = [a for a in canonical if a not in ids]
        if unknown:
            raise ApiError(404, f"Model(s) not found: {', '.join(unknown)}")
        ids = canonical
    truncated = len(ids) > WHOAMI_MODEL_LIMIT
    roles: dict[str, Any] = {}
    for model_id in ids[:WHOAMI_MODEL_LIMIT]:
        viewer = principal.viewer(model_id)
        roles[model_id] = {
            "roleName": viewer.resolved_role,
            "baseRole": viewer.resolved_role,
            "connectionId": state.registry.connection_id(model_id),
            "permissions": list(viewer.permissions),
        }
    user = principal.user
    return JSONResponse({
        "user": {"id": user.id, "membershipId": user.id, "email": user.user_name,
                 "name": user.display_name},
        "keyScope": "organization" if principal.org_key else "user",
        "orgRole": "ORG_ADMIN" if user.org_admin else "MEMBER",
        "rolesByModel": roles,
        "rolesByModelTruncated": truncated,
    })  # fmt: skip


# ---------------------------------------------------------------------- attribute definitions


@router.get("/api/v1/user-attributes")
async def list_attributes(request: Request) -> JSONResponse:
    """Every definition, system attributes first, in Omni's record shape."""
    _admin(request)
    custom = state_of(request).store.users.attribute_definitions()
    return JSONResponse({"records": [d.record() for d in all_definitions(custom)]})


@router.post("/api/v1/user-attributes", status_code=201)
async def create_attribute(request: Request) -> JSONResponse:
    org_key_only(request)
    body = await json_body(request)
    definition = _definition(_required_text(body, "name"), body)
    directory = state_of(request).store.users
    try:
        directory.add_attribute(definition)
    except DirectoryError as exc:
        raise _directory_error(exc) from None
    return JSONResponse(_stored(request, definition.name).record(), status_code=201)


@router.put("/api/v1/user-attributes/{name}")
async def replace_attribute(request: Request, name: str) -> JSONResponse:
    """Replace everything but the name: omitted fields go back to their defaults."""
    org_key_only(request)
    body = await json_body(request)
    _existing(request, name)
    given = body.get("name", name)
    if given != name:
        raise ApiError(400, f"name: a user attribute cannot be renamed ({name!r} to {given!r}): "
                       "create the new one and delete the old")  # fmt: skip
    try:
        state_of(request).store.users.replace_attribute(_definition(name, body))
    except DirectoryError as exc:
        raise _directory_error(exc) from None
    return JSONResponse(_stored(request, name).record())


@router.delete("/api/v1/user-attributes/{name}", status_code=204)
async def delete_attribute(request: Request, name: str) -> Response:
    """Remove a definition and every user's value for it; refused while a served model reads
    it (the model would stop loading)."""
    org_key_only(request)
    state = state_of(request)
    _existing(request, name)
    readers = state.registry.models_using_attribute(name)
    if readers:
        raise ApiError(409, f"User attribute {name!r} is read by model(s) {', '.join(readers)}: "
                       "remove it from them first", code="attribute_in_use")  # fmt: skip
    state.store.users.delete_attribute(name)
    return Response(status_code=204)


def _existing(request: Request, name: str) -> AttributeDef:
    if name in SYSTEM_ATTRIBUTES:
        raise ApiError(400, f"User attribute {name!r} is a system attribute: it is built in "
                       "and cannot be changed or deleted")  # fmt: skip
    custom = {d.name: d for d in state_of(request).store.users.attribute_definitions()}
    if name not in custom:
        hint = did_you_mean(name, custom)
        raise ApiError(404, f"No user attribute named {name!r}.{hint}", code="attribute_not_found")
    return custom[name]


def _stored(request: Request, name: str) -> AttributeDef:
    custom = {d.name: d for d in state_of(request).store.users.attribute_definitions()}
    return custom[name]


def _definition(name: str, body: dict[str, Any]) -> AttributeDef:
    """A definition from a request body, every field checked (the store checks it again)."""
    for key in body:
        if key not in _ATTRIBUTE_FIELDS:
            hint = did_you_mean(key, _ATTRIBUTE_FIELDS)
            raise ApiError(400, f"Unrecognized key {key!r} in a user attribute: expected "
                           f"{', '.join(_ATTRIBUTE_FIELDS)}.{hint}")  # fmt: skip
    label = _optional_text(body, "label") or ""
    description = _optional_text(body, "description")
    kind = body.get("type", "String")
    if not isinstance(kind, str):
        raise ApiError(400, f"type: expected String or Number, received {received(kind)}")
    kind = {"string": "String", "number": "Number"}.get(kind.lower(), kind)
    if kind not in ("String", "Number"):
        hint = did_you_mean(kind, ("String", "Number"))
        raise ApiError(400, f"type: expected String or Number, not {kind!r}.{hint}")
    multiple = body.get("multiple_values", False)
    if not isinstance(multiple, bool):
        raise ApiError(400, f"multiple_values: expected boolean, received {received(multiple)}")
    typed: AttributeType = "Number" if kind == "Number" else "String"
    draft = AttributeDef(name, label, type=typed, multiple_values=multiple)
    try:
        default = attribute_values(draft, body.get("default_value"))
    except InvalidAttributeValue as exc:
        raise ApiError(400, f"default_value: {exc.message}") from None
    return AttributeDef(name, label, type=typed, multiple_values=multiple,
                        default_value=default, description=description)  # fmt: skip


def _required_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"{key}: Invalid input: expected string, received "
                       f"{received(value, present=key in body)}")  # fmt: skip
    return value.strip()


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{key}: expected string, received {received(value)}")
    return value


# ---------------------------------------------------------------------- model roles


def _member(request: Request, membership_id: str) -> User:
    canonical = canonical_uuid(membership_id)
    user = state_of(request).store.users.user(canonical) if canonical else None
    if user is None:
        raise ApiError(404, f"User {membership_id} not found in organization")
    return user


@router.get("/api/v1/users/{membership_id}/model-roles")
async def get_model_roles(request: Request, membership_id: str) -> JSONResponse:
    """The user's role on each served model, and where it comes from: assigned to them
    (USER), the default (BASE), or their organization admin rights (ORG, which win)."""
    org_key_only(request)
    state = state_of(request)
    user = _member(request, membership_id)
    ids = state.registry.ids()
    model_filter = request.query_params.get("modelId")
    if model_filter:
        ids = [_served_model(request, model_filter)]
    connection_filter = request.query_params.get("connectionId")
    if connection_filter:
        on_connection = set(_connection_models(request, connection_filter))
        ids = [i for i in ids if i in on_connection]
    assigned = state.store.users.model_roles(user.id)
    results: list[dict[str, Any]] = []
    for model_id in ids:
        where = (model_id, state.registry.connection_id(model_id))
        role = assigned.get(model_id)
        if user.org_admin:
            results.append(_role_row(ADMIN_ROLE, "ORG", True, *where))
        if role is not None:
            results.append(_role_row(role, "USER", not user.org_admin, *where))
        elif not user.org_admin:
            results.append(_role_row(DEFAULT_ROLE, "BASE", True, *where))
    return JSONResponse({"membershipId": user.id, "results": results})


def _role_row(
    role: str, origin: str, resolved: bool, model_id: str, connection_id: str
) -> dict[str, Any]:
    return {"roleName": role, "baseRole": role, "modelId": model_id,
            "connectionId": connection_id, "priority": _PRIORITY.get(role, 0),
            "resolved": resolved, "from": {"type": origin}}  # fmt: skip


@router.post("/api/v1/users/{membership_id}/model-roles")
async def assign_model_role(request: Request, membership_id: str) -> JSONResponse:
    """Give the user a role on a model, or on every served model of a connection."""
    org_key_only(request)
    body = await json_body(request)
    role = _required_text(body, "roleName")
    if role.strip().upper() not in ROLES:
        hint = did_you_mean(role.strip(), ROLES)
        raise ApiError(422, f"Invalid role: {role!r} is not one of {', '.join(ROLES)}.{hint}",
                       code="invalid_role")  # fmt: skip
    role = role.strip().upper()
    model_id, connection_id = body.get("modelId"), body.get("connectionId")
    if model_id is None and connection_id is None:
        raise ApiError(400, "connectionId or modelId required")
    user = _member(request, membership_id)
    state = state_of(request)
    if model_id is not None:
        model_ids = [_served_model(request, model_id)]
        if connection_id is not None:
            on_connection = _connection_models(request, connection_id)
            if model_ids[0] not in on_connection:
                raise ApiError(422, "Model does not belong to connection")
    else:
        model_ids = _connection_models(request, connection_id)
    for target in model_ids:
        try:
            state.store.users.set_model_role(user.id, target, role)
        except DirectoryError as exc:
            raise _directory_error(exc) from None
    answer: dict[str, Any] = {
        "membershipId": user.id,
        "modelId": model_ids[0] if model_id is not None else None,
        "connectionId": state.registry.connection_id(model_ids[0]),
        "roleName": role,
    }
    if model_id is None:
        answer["modelIds"] = model_ids
    return JSONResponse(answer)


def _served_model(request: Request, value: Any) -> str:
    canonical = canonical_uuid(value)
    if canonical is None:
        raise ApiError(400, f"Invalid model ID: {value!r} is not a UUID")
    if canonical not in state_of(request).registry.ids():
        raise ApiError(404, f"Model does not exist: {canonical}")
    return canonical


def _connection_models(request: Request, value: Any) -> list[str]:
    canonical = canonical_uuid(value)
    if canonical is None:
        raise ApiError(400, f"Invalid connection ID: {value!r} is not a UUID")
    registry = state_of(request).registry
    models = [i for i in registry.ids() if registry.connection_id(i) == canonical]
    if not models:
        raise ApiError(404, f"Connection does not exist: {canonical}")
    return models
