"""``/api/v1/query/run``, ``/query/wait`` and ``/query/cancel``, exactly as Omni's clients
expect them (see shared/docs/omni-contract.md section 2)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assay.jobs.model import Job
from assay.jobs.runner import REFRESH, USE_CACHE, JobRequest, JobRunner
from assay.server.errors import ApiError, error_body
from assay.server.lines import (
    RESULT_TYPES,
    json_document,
    missing_line,
    ndjson_response,
    result_document,
    wants_single_json,
)
from assay.server.schemas import CancelRequest, RunRequest, request_body
from assay.server.state import ServerState, caller

router = APIRouter()

# Omni's cache values (docs) and the OpenAPI spec's (accepted as aliases).
CACHE_MODES = {
    "Standard": USE_CACHE, "SkipRequery": USE_CACHE, "normal": USE_CACHE,
    "SkipCache": REFRESH, "SkipCacheAndRebuildExtracts": REFRESH, "disabled": REFRESH,
    "refresh": REFRESH, "refresh_all": REFRESH,
}  # fmt: skip
_HTTP_FOR_ERROR = {"PLAN": 400, "PLAN_PK_REQUIRED_DUE_TO_JOIN_FANOUT": 400, "KILL": 499}


@dataclass(frozen=True, slots=True)
class RunBody:
    query: dict[str, Any]
    model_id: str
    cache: str
    plan_only: bool
    result_type: str | None
    user_id: str | None
    branch_id: str | None


def _received(value: Any) -> str:
    return (
        "undefined"
        if value is None
        else type(value).__name__.replace("dict", "object").replace("list", "array")
    )


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "Unable to parse the request body as JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, f"Invalid input: expected object, received {_received(body)}")
    return body


def parse_run_body(body: dict[str, Any], query_user: str | None) -> RunBody:
    """Everything wrong with the request shape is a 400 before any job exists."""
    query = body.get("query")
    if not isinstance(query, dict):
        raise ApiError(400, f"query: Invalid input: expected object, received {_received(query)}")
    query = dict(query)
    if "branchId" in query:
        raise ApiError(400, "query.branchId: branchId belongs at the top level of the body")
    model_id = query.get("modelId", body.get("modelId"))
    if not isinstance(model_id, str):
        raise ApiError(
            400, f"query.modelId: Invalid input: expected string, received {_received(model_id)}"
        )
    if not _is_uuid(model_id):
        raise ApiError(400, "query.modelId: Invalid uuid")
    query["modelId"] = model_id
    fields = query.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ApiError(
            400,
            f"query.fields: Invalid input: expected array of strings, received {_received(fields)}",
        )
    limit = query.get("limit", 1)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ApiError(400, f"query.limit: expected a positive integer or null, received {limit!r}")
    cache = body.get("cache", "SkipRequery")
    if cache not in CACHE_MODES:
        options = "|".join(f'"{c}"' for c in CACHE_MODES)
        raise ApiError(400, f"cache: Invalid option: expected one of {options}")
    result_type = body.get("resultType")
    if result_type is not None and result_type not in RESULT_TYPES:
        raise ApiError(400, 'resultType: Invalid option: expected one of "csv"|"json"|"xlsx"')
    plan_only = body.get("planOnly", False)
    for name, value in (
        ("planOnly", plan_only),
        ("formatResults", body.get("formatResults", False)),
    ):
        if not isinstance(value, bool):
            raise ApiError(
                400, f"{name}: Invalid input: expected boolean, received {_received(value)}"
            )
    if plan_only and result_type:
        raise ApiError(400, "planOnly cannot be combined with resultType")
    if body.get("formatResults") and not result_type:
        raise ApiError(400, "formatResults is only valid with resultType")
    if body.get("workbookUrl") and plan_only:
        raise ApiError(400, "planOnly cannot be combined with workbookUrl")
    if "userId" in body and query_user is not None:
        raise ApiError(400, "userId may be given in the query string or in the body, not both")
    user_id = query_user if query_user is not None else body.get("userId")
    if user_id is not None and not isinstance(user_id, str):
        raise ApiError(
            400, f"userId: Invalid input: expected string, received {_received(user_id)}"
        )
    branch = body.get("branchId")
    return RunBody(
        query, model_id, CACHE_MODES[cache], plan_only, result_type, user_id,
        None if branch is None else str(branch),
    )  # fmt: skip


def _with_paths(runner: JobRunner, jobs: Sequence[Job]) -> list[tuple[Job, Path | None]]:
    return [(j, runner.result_path(j) if j.status == "COMPLETE" else None) for j in jobs]


def _respond(
    request: Request,
    header: dict[str, Any] | None,
    done: Sequence[Job],
    extra: Sequence[dict[str, Any]],
    remaining: Sequence[str],
    runner: JobRunner,
) -> Response:
    if wants_single_json(request):
        return json_document(header, _with_paths(runner, done), extra, remaining)
    return ndjson_response(header, _with_paths(runner, done), extra, remaining)


@router.post("/api/v1/query/run", openapi_extra=request_body(RunRequest))
@router.post("/api/unstable/query/run", include_in_schema=False)
async def run_query(request: Request, userId: str | None = None) -> Response:  # noqa: N803
    """Run a semantic query as a job; wait up to the run window; hand back what is not done."""
    state: ServerState = request.app.state.assay
    body = parse_run_body(await _json_body(request), userId)
    principal = caller(request, body.user_id)
    if body.model_id not in state.runner.targets:
        raise ApiError(404, f"Model {body.model_id} not found")
    branch = body.branch_id or request.query_params.get("branch_id")
    if branch is not None:  # Assay serves shared models only: no branch exists
        raise ApiError(404, f"Branch {branch} not found")
    job = state.runner.submit(
        JobRequest(body.query, body.model_id, body.cache, body.plan_only, principal.key.id)
    )
    window = state.settings.run_wait_seconds
    jobs = await state.runner.wait([job.id], window) if not job.done else {job.id: job}
    job = jobs[job.id]
    if body.result_type:
        return _document(state.runner, job, body.result_type)
    header = {"jobs_submitted": {job.id: job.client_result_id}}
    done = [job] if job.done else []
    remaining = [] if job.done else [job.id]
    return _respond(request, header, done, [], remaining, state.runner)


def _document(runner: JobRunner, job: Job, kind: str) -> Response:
    if not job.done:
        body = error_body(408, "Query timed out", "query_timed_out",
                          {"remaining_job_ids": [job.id], "timed_out": True})  # fmt: skip
        return JSONResponse(body, 408)
    if job.status == "FAILED":
        status = _HTTP_FOR_ERROR.get(job.error_type or "", 500)
        message = job.error_message or "Query failed"
        extra = {"error_type": job.error_type, "job_id": job.id}
        body = error_body(status, message, (job.error_type or "query_failed").lower(), extra)
        return JSONResponse(body, status)
    path = runner.result_path(job)
    if path is None or not path.exists():
        raise ApiError(410, "Result is no longer available")
    return result_document(kind, job, path)


def parse_job_ids(request: Request) -> list[str]:
    """``job_ids`` as a JSON array (``+`` reads as a space) or comma-separated, or ``jobIds``."""
    raw = request.query_params.get("job_ids")
    if raw is None:
        raw = request.query_params.get("jobIds")
    if raw is None or not raw.strip():
        raise ApiError(400, "job_ids parameter is required")
    text = raw.strip()
    if text.startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError:
            raise ApiError(400, "job_ids must be a valid JSON array of UUIDs") from None
        if not isinstance(ids, list):
            raise ApiError(400, "job_ids must be a valid JSON array of UUIDs")
    else:
        ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(isinstance(i, str) and _is_uuid(i) for i in ids):
        raise ApiError(400, "job_ids must be a valid JSON array of UUIDs")
    return list(dict.fromkeys(ids))


@router.get("/api/v1/query/wait")
@router.get("/api/unstable/query/wait", include_in_schema=False)
async def wait_for_jobs(request: Request) -> Response:
    """Long-poll for jobs: the lines of those that finished, and the ids still running."""
    state: ServerState = request.app.state.assay
    caller(request, None)
    ids = parse_job_ids(request)
    known = state.runner.store.get_jobs(ids)
    if not known:
        raise ApiError(404, f"Job with id {ids[0]} does not exist")
    jobs = await state.runner.wait(list(known), state.settings.wait_seconds)
    done = [jobs[i] for i in ids if i in jobs and jobs[i].done]
    remaining = [i for i in ids if i in jobs and not jobs[i].done]
    missing = [missing_line(i) for i in ids if i not in jobs]
    return _respond(request, None, done, missing, remaining, state.runner)


@router.post("/api/v1/query/cancel", openapi_extra=request_body(CancelRequest))
async def cancel_jobs(request: Request) -> JSONResponse:
    """Stop jobs (beyond Omni, which has no public cancel): running engine work is
    interrupted and the jobs end FAILED with error_type KILL. Finished jobs are unchanged."""
    state: ServerState = request.app.state.assay
    caller(request, None)
    body = await _json_body(request)
    raw = body.get("job_ids", body.get("jobIds"))
    if isinstance(raw, str):
        raw = [p.strip() for p in raw.split(",") if p.strip()]
    if (
        not isinstance(raw, list)
        or not raw
        or not all(isinstance(i, str) and _is_uuid(i) for i in raw)
    ):
        raise ApiError(400, "job_ids must be a non-empty JSON array of UUIDs")
    known = state.runner.store.get_jobs(raw)
    if not known:
        raise ApiError(404, f"Job with id {raw[0]} does not exist")
    jobs = state.runner.cancel(list(known))
    return JSONResponse(
        {
            "jobs": [
                {"job_id": j.id, "status": j.status, "error_type": j.error_type}
                for j in jobs.values()
            ]
        }
    )
