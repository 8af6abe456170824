"""``/api/v1/query/run``, ``/query/wait`` and ``/query/cancel``, exactly as Omni's clients
expect them (see shared/docs/omni-contract.md section 2).

Every route authenticates first, before reading the body: a caller without a valid key
learns nothing about the request, and every request counts against the key's rate limit.
A job runs as its caller's user and belongs to them: another user's job id is answered as an
unknown one, and SQL is withheld from a caller whose role may not view it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assay.jobs.model import Job
from assay.jobs.runner import JobRunner
from assay.jobs.timing import Stopwatch
from assay.jobs.work import JobRequest
from assay.semantic.viewer import VIEW_SQL
from assay.server.auth import Principal
from assay.server.documents import result_document
from assay.server.errors import ApiError, error_body
from assay.server.limits import ARRIVED
from assay.server.lines import (
    NDJSON,
    json_document,
    missing_line,
    ndjson_response,
    wants_single_json,
    withhold_sql,
)
from assay.server.observe import STOPWATCH, note, request_id_of
from assay.server.quotas import unless_gone
from assay.server.requests import json_body, parse_cancel_ids, parse_job_ids, parse_run_body
from assay.server.schemas import CancelRequest, RunRequest, request_body
from assay.server.state import ServerState, authorized, caller, unfinished

router = APIRouter()
# resultType mode answers a failed job as an HTTP error; a cancelled one conflicts with the ask.
_HTTP_FOR_ERROR = {"PLAN": 400, "PLAN_PK_REQUIRED_DUE_TO_JOIN_FANOUT": 400, "KILL": 409,
                   "FORBIDDEN": 403, "CALCS_FAILED": 400}  # fmt: skip
_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "NDJSON: a jobs_submitted header (run only), a line per finished job, "
        "and a footer {remaining_job_ids, timed_out: 'true'|'false'}; one JSON document "
        "instead when the client accepts only application/json.",
        "content": {NDJSON: {"schema": {"type": "string"}}, "application/json": {}},
    }
}
_WAIT_PARAMETERS = [
    {"name": "job_ids", "in": "query", "required": False, "schema": {"type": "string"},
     "description": 'A JSON array of job ids (["id", ...]) or a comma-separated list.'},
    {"name": "jobIds", "in": "query", "required": False, "schema": {"type": "string"},
     "description": "Comma-separated job ids (the spec's form)."},
]  # fmt: skip


def _with_paths(
    runner: JobRunner, jobs: Sequence[Job], principal: Principal
) -> list[tuple[Job, Path | None]]:
    return [
        (as_seen_by(principal, j), runner.result_path(j) if j.status == "COMPLETE" else None)
        for j in jobs
    ]


def as_seen_by(principal: Principal, job: Job) -> Job:
    """The job as its reader may see it: without SQL unless their role may view SQL."""
    return job if principal.viewer(job.model_id).may(VIEW_SQL) else withhold_sql(job)


def _respond(
    request: Request,
    header: dict[str, Any] | None,
    done: Sequence[Job],
    extra: Sequence[dict[str, Any]],
    remaining: Sequence[str],
    runner: JobRunner,
    principal: Principal,
) -> Response:
    paths = _with_paths(runner, done, principal)
    if wants_single_json(request):
        return json_document(header, paths, extra, remaining)
    return ndjson_response(header, paths, extra, remaining)


def _owned(state: ServerState, principal: Principal, ids: Sequence[str]) -> dict[str, Job]:
    """The jobs among ``ids`` the caller may read; others are, to them, unknown ids."""
    jobs = state.runner.store.get_jobs(ids)
    return {i: j for i, j in jobs.items() if principal.owns(j.user_id)}


# read by hand, not declared as an argument: FastAPI's parameter solving costs every run
_USER_ID = {"name": "userId", "in": "query", "required": False, "schema": {"type": "string"},
            "description": "The user to run as (an organization key only)."}  # fmt: skip


@router.post(
    "/api/v1/query/run",
    openapi_extra={**request_body(RunRequest), "parameters": [_USER_ID]},
    responses=_STREAM_RESPONSES,
)
@router.post("/api/unstable/query/run", include_in_schema=False)
async def run_query(request: Request) -> Response:
    """Run a semantic query as a job; wait up to the run window; hand back what is not done."""
    state: ServerState = request.app.state.assay
    watch = Stopwatch(request.scope.get(ARRIVED))
    request.scope[STOPWATCH] = watch
    key = authorized(request)
    watch.mark("auth")
    body = parse_run_body(await json_body(request), request.query_params.get("userId"))
    principal = caller(request, body.user_id, key)
    watch.mark("parse")
    if body.model_id not in state.runner.targets:
        raise ApiError(404, f"Model {body.model_id} not found")
    branch = body.branch_id or request.query_params.get("branch_id")
    if branch is not None:  # Assay serves shared models only: no branch exists
        raise ApiError(404, f"Branch {branch} not found")
    ask = JobRequest(body.query, body.model_id, body.cache, body.plan_only, key_id=key.id,
                     user_id=principal.user.id, viewer=principal.viewer(body.model_id),
                     watch=watch, request_id=request_id_of(request))  # fmt: skip
    state.quotas.admit_job(key.id, lambda ids: unfinished(state, ids))
    job = await state.runner.submit_from_loop(ask)
    note(request, model_id=body.model_id, job_ids=[job.id])
    if not job.done:
        state.quotas.track_job(key.id, job.id)
    window = state.settings.run_wait_seconds
    if not job.done and window > 0:  # 0: the ids are handed back at once
        waited = await unless_gone(request, state.runner.wait([job.id], window, known=[job]))
        if waited is None:  # the client left; the job runs on, for /query/wait to fetch
            return Response(status_code=499)
        job = waited[job.id]
        if job.done:
            state.quotas.release_job(key.id, job.id)
        watch.mark("wake")
    if body.result_type:
        seen = as_seen_by(principal, job)
        response = _document(state.runner, seen, body.result_type, formatted=body.format_results)
    else:
        header = {"jobs_submitted": {job.id: job.client_result_id}}
        done, remaining = ([job], []) if job.done else ([], [job.id])
        response = _respond(request, header, done, [], remaining, state.runner, principal)
    watch.mark("answer")
    response.headers["Server-Timing"] = watch.header()
    return response


def _document(runner: JobRunner, job: Job, kind: str, *, formatted: bool) -> Response:
    if not job.done:
        extra = {"remaining_job_ids": [job.id], "timed_out": True}
        return JSONResponse(error_body(408, "Query timed out", "query_timed_out", extra), 408)
    if job.status == "FAILED":
        status = _HTTP_FOR_ERROR.get(job.error_type or "", 500)
        message = job.error_message or "Query failed"
        extra = {"error_type": job.error_type, "job_id": job.id}
        body = error_body(status, message, (job.error_type or "query_failed").lower(), extra)
        return JSONResponse(body, status)
    path = runner.result_path(job)
    if path is None or not path.exists():
        raise ApiError(410, "Result is no longer available")
    return result_document(kind, job, path, formatted=formatted)


@router.get(
    "/api/v1/query/wait",
    openapi_extra={"parameters": _WAIT_PARAMETERS},
    responses=_STREAM_RESPONSES,
)
@router.get("/api/unstable/query/wait", include_in_schema=False)
async def wait_for_jobs(request: Request) -> Response:
    """Long-poll for jobs: the lines of those that finished, and the ids still running."""
    state: ServerState = request.app.state.assay
    principal = caller(request, None)
    ids = parse_job_ids(request)
    known = _owned(state, principal, ids)
    if not known:
        raise ApiError(404, f"Job with id {ids[0]} does not exist")
    note(request, job_ids=list(known))
    with state.quotas.waiting(principal.key.id):
        waited = await unless_gone(
            request, state.runner.wait(list(known), state.settings.wait_seconds)
        )
    if waited is None:
        return Response(status_code=499)  # the client left: nothing to answer, nothing held
    jobs = waited
    done = [jobs[i] for i in ids if i in jobs and jobs[i].done]
    remaining = [i for i in ids if i in jobs and not jobs[i].done]
    missing = [missing_line(i) for i in ids if i not in jobs]
    return _respond(request, None, done, missing, remaining, state.runner, principal)


@router.post("/api/v1/query/cancel", openapi_extra=request_body(CancelRequest))
async def cancel_jobs(request: Request) -> JSONResponse:
    """Stop jobs (beyond Omni, which has no public cancel): running engine work is
    interrupted and the jobs end FAILED with error_type KILL. Finished jobs are unchanged."""
    state: ServerState = request.app.state.assay
    principal = caller(request, None)
    ids = parse_cancel_ids(await json_body(request))
    known = _owned(state, principal, ids)
    if not known:
        raise ApiError(404, f"Job with id {ids[0]} does not exist")
    note(request, job_ids=list(known))
    jobs = state.runner.cancel(list(known), request_id=request_id_of(request))
    listed = [
        {"job_id": j.id, "status": j.status, "error_type": j.error_type} for j in jobs.values()
    ]
    return JSONResponse({"jobs": listed})
