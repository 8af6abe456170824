"""Models, topics, views and model YAML, shaped as Omni's (contract section 6): what
Omni's clients and agents read before they ask a question."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assay.engines import DuckDBEngine
from assay.engines.introspect import describe_duckdb
from assay.semantic.access import visible_model
from assay.semantic.describe import topic_payload, topic_summary, view_payload
from assay.semantic.model import SemanticModel
from assay.semantic.starter import starter_files
from assay.semantic.viewer import Viewer
from assay.server.errors import ApiError
from assay.server.pages import invalid_cursor, make_cursor, page_info, page_size, read_cursor
from assay.server.requests import canonical_uuid, json_body
from assay.server.state import ServerState, authorized, caller, state_of

router = APIRouter()
_MODEL_PARAMS = {
    "pageSize", "cursor", "modelKind", "name", "modelId", "connectionId", "baseModelId",
    "include", "includeDeleted", "sortField", "sortDirection", "explorable",
}  # fmt: skip
_SORT_FIELDS = {"name", "modelKind", "connectionId", "baseModelId", "createdAt", "updatedAt"}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seen(request: Request, model_id: str) -> SemanticModel:
    """The model as the caller's user sees it: topics, views and fields they may not see are
    absent, and access-filtered fields offer only their values."""
    principal = caller(request, None)
    model = _model(request, model_id)
    return visible_model(model, principal.viewer(model.id))


def _editable(request: Request, model_id: str) -> tuple[SemanticModel, Viewer]:
    """The whole model and the caller's user, who must be a modeler of it."""
    principal = caller(request, None)
    model = _model(request, model_id)
    viewer = principal.viewer(model.id)
    return state_of(request).registry.editable(model.id, viewer), viewer


def _model(request: Request, model_id: str) -> SemanticModel:
    canonical = canonical_uuid(model_id)
    if canonical is None:
        raise ApiError(400, "modelId: Invalid uuid")
    model = state_of(request).registry.model(canonical)
    branch = request.query_params.get("branchId") or request.query_params.get("branch_id")
    if branch:  # Assay serves shared models only: no branch exists
        raise ApiError(404, f"Branch model with id {branch} does not exist")
    return model


def _record(state: ServerState, model: SemanticModel) -> dict[str, Any]:
    served = state.registry.served(model.id)
    return {
        "id": model.id,
        "name": model.name,
        "modelKind": "SHARED",
        "connectionId": state.registry.connection_id(model.id),
        "baseModelId": None,
        "createdAt": _iso(served.created_at),
        "updatedAt": _iso(served.updated_at),
        "deletedAt": None,
    }


def _cursor_offset(cursor: str | None) -> int:
    position = read_cursor(cursor)
    if position is None:
        return 0
    offset = position.get("offset")
    if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
        return offset
    raise invalid_cursor()


@router.get("/api/v1/models")
async def list_models(request: Request) -> JSONResponse:
    """The served models, with Omni's filters, sorting and cursor paging."""
    state = state_of(request)
    authorized(request)
    params = request.query_params
    unknown = sorted(set(params) - _MODEL_PARAMS)
    if unknown:
        keys = ", ".join(f"'{k}'" for k in unknown)
        raise ApiError(400, f"Unrecognized key(s) in object: {keys}")
    size = page_size(params)
    records = [_record(state, state.registry.model(i)) for i in state.registry.ids()]
    if params.get("modelId"):
        wanted = canonical_uuid(params["modelId"])
        if wanted is None:
            raise ApiError(400, "modelId: Invalid uuid")
        records = [r for r in records if r["id"] == wanted]
    if params.get("name"):
        records = [r for r in records if r["name"].lower() == params["name"].lower()]
    for key in ("connectionId", "modelKind", "baseModelId"):
        if params.get(key):
            records = [r for r in records if str(r[key]).lower() == params[key].lower()]
    sort_field = params.get("sortField") or "name"
    if sort_field not in _SORT_FIELDS:
        raise ApiError(400, f"sortField: expected one of {', '.join(sorted(_SORT_FIELDS))}")
    direction = params.get("sortDirection") or "asc"
    if direction not in ("asc", "desc"):
        raise ApiError(400, "sortDirection: expected asc or desc")
    records.sort(key=lambda r: str(r[sort_field] or ""), reverse=direction == "desc")
    offset = _cursor_offset(params.get("cursor"))
    page = records[offset : offset + size]
    more = offset + size < len(records)
    token = make_cursor({"offset": offset + size}) if more else None
    info = page_info(next_cursor=token, size=size, total=len(records))
    return JSONResponse({"pageInfo": info, "records": page})


@router.get("/api/v1/models/{model_id}/topic")
async def list_topics(request: Request, model_id: str) -> JSONResponse:
    model = _seen(request, model_id)
    topics = [topic_summary(model, t) for t in model.topics.values()]
    return JSONResponse({"success": True, "topics": topics})


@router.get("/api/v1/models/{model_id}/topic/{topic_name}")
async def get_topic(request: Request, model_id: str, topic_name: str) -> JSONResponse:
    model = _seen(request, model_id)
    topic = model.topics.get(topic_name)
    if topic is None:
        raise ApiError(404, f"Topic {topic_name} not found")
    return JSONResponse({"success": True, "topic": topic_payload(model, topic)})


@router.get("/api/v1/models/{model_id}/view")
async def list_views(request: Request, model_id: str) -> JSONResponse:
    model = _seen(request, model_id)
    return JSONResponse(
        {"success": True, "views": [view_payload(model, v) for v in model.views.values()]}
    )


def _yaml_document(request: Request, model: SemanticModel, with_checksums: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"files": dict(model.files), "version": int(model.version[:12], 16)}
    if with_checksums:
        doc["checksums"] = state_of(request).registry.checksums(model.id)
    return doc


@router.get("/api/v1/models/{model_id}/yaml")
@router.get("/api/unstable/models/{model_id}/yaml", include_in_schema=False)
async def get_yaml(request: Request, model_id: str) -> JSONResponse:
    model, _ = _editable(request, model_id)
    doc = _yaml_document(
        request, model, request.query_params.get("includeChecksums") in ("true", "1")
    )
    name = request.query_params.get("fileName")
    if name:
        doc["files"] = _matching_files(model, name)
    return JSONResponse(doc)


def _matching_files(model: SemanticModel, name: str) -> dict[str, str]:
    """``fileName`` is a file's name or, as Omni's docs allow, a regex of names."""
    if name in model.files:
        return {name: model.files[name]}
    try:
        pattern = re.compile(name)
    except re.error as exc:
        raise ApiError(400, f"fileName is neither a file nor a valid pattern: {exc}") from exc
    found = {n: text for n, text in model.files.items() if pattern.fullmatch(n)}
    if not found:
        raise ApiError(404, f"No file {name} in model {model.name}")
    return found


@router.post("/api/v1/models/{model_id}/yaml")
@router.post("/api/unstable/models/{model_id}/yaml", include_in_schema=False)
async def write_yaml(request: Request, model_id: str) -> JSONResponse:
    """Write one file (empty ``yaml`` deletes it): validated against the whole model first,
    applied atomically; a stale ``previousChecksum`` is a 409."""
    state = state_of(request)
    model, viewer = _editable(request, model_id)
    body = await json_body(request)
    name, text = body.get("fileName"), body.get("yaml")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "fileName: Required")
    if not isinstance(text, str):
        raise ApiError(400, "yaml: Required")
    previous = body.get("previousChecksum")
    new = state.registry.write(
        model.id, name, text, previous if isinstance(previous, str) else None, viewer=viewer
    )
    return JSONResponse(_yaml_document(request, new, True))


@router.delete("/api/v1/models/{model_id}/yaml")
@router.delete("/api/unstable/models/{model_id}/yaml", include_in_schema=False)
async def delete_yaml(request: Request, model_id: str) -> JSONResponse:
    """Delete one file (``?fileName=``), if the model stays valid without it."""
    state = state_of(request)
    model, viewer = _editable(request, model_id)
    name = request.query_params.get("fileName")
    if not name:
        raise ApiError(400, "fileName: Required")
    new = state.registry.write(model.id, name, "", None, viewer=viewer)
    return JSONResponse(_yaml_document(request, new, True))


@router.post("/api/v1/models/{model_id}/refresh")
async def refresh_model(request: Request, model_id: str) -> JSONResponse:
    """Read the database again and add a starter view for each table the model lacks
    (existing files are never rewritten; relationships for new tables are left to add)."""
    state = state_of(request)
    model, viewer = _editable(request, model_id)
    engine = state.runner.targets[model.id].engine
    if not isinstance(engine, DuckDBEngine):
        raise ApiError(400, f"Refreshing a model on {engine.name} is not supported yet")
    shape = await asyncio.to_thread(describe_duckdb, engine)
    starter = starter_files(shape, model_name=model.name)
    have = {name.rsplit("/", 1)[-1] for name in model.files}
    added = {
        name.removesuffix(".yaml"): text
        for name, text in starter.items()
        if name.endswith(".view.yaml") and name.removesuffix(".yaml") not in have
    }
    new = state.registry.write_files(model.id, added, viewer=viewer) if added else model
    return JSONResponse(
        {"success": True, "addedFiles": sorted(added), **_yaml_document(request, new, False)}
    )


@router.get("/api/v1/models/{model_id}/validate")
async def validate_model(request: Request, model_id: str) -> JSONResponse:
    """The served model's issues, as omni-app-mcp reads them: a list (a served model has
    only warnings; errors refuse a write before it is served)."""
    model, _ = _editable(request, model_id)
    # yaml_path names the file, as Omni's does (omni-app-mcp groups issues by it); the place
    # inside the file leads the message.
    issues = [
        {"message": f"{w.yaml_path}: {w.message}" if w.yaml_path else w.message,
         "is_warning": w.is_warning, "yaml_path": w.file, "path": w.yaml_path}
        for w in model.warnings
    ]  # fmt: skip
    return JSONResponse(issues)
