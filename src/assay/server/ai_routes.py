"""``/api/v1/ai/jobs``: submit a question, follow it, cancel it, read its answer (contract
section 5), with Omni's exact messages. A job is its user's: anyone else (but an organization
key) gets the same 404 as for an id that does not exist."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assay.ai.jobs import main_query
from assay.ai.store import AIJob
from assay.jobs.summaries import iso
from assay.outbound import OutboundRefused, check_destination
from assay.server.errors import ApiError
from assay.server.observe import note
from assay.server.requests import canonical_uuid, json_body, prompt_of
from assay.server.state import ServerState, authorized, caller, state_of, unfinished

router = APIRouter()


def chat_url(state: ServerState, conversation_id: str) -> str:
    base = state.settings.public_url or f"http://{state.settings.host}:{state.settings.port}"
    return f"{base.rstrip('/')}/chat/{conversation_id}"


def _job(request: Request, job_id: str) -> AIJob:
    principal = caller(request, None)
    canonical = canonical_uuid(job_id)
    if canonical is None:
        raise ApiError(400, "Invalid job ID")
    job = state_of(request).ai.store.get(canonical)
    if job is None or not principal.owns(job.user_id):
        raise ApiError(404, "Job not found")
    note(request, job_ids=[job.id], model_id=job.model_id)
    return job


@router.post("/api/v1/ai/jobs", status_code=201)
async def create_job(request: Request, userId: str | None = None) -> JSONResponse:  # noqa: N803
    state = state_of(request)
    key = authorized(request)
    body = await json_body(request)
    principal = caller(request, userId, key)
    prompt = prompt_of(body)
    model_id = canonical_uuid(body.get("modelId"))
    if model_id is None:
        raise ApiError(
            400, "Bad Request: modelId: " + ("Invalid uuid" if body.get("modelId") else "Required")
        )
    conversation = body.get("conversationId")
    if conversation is not None and canonical_uuid(conversation) is None:
        raise ApiError(400, "Bad Request: conversationId: Invalid uuid")
    viewer = principal.viewer(model_id)
    model = state.ai.model(model_id, viewer)  # ai_chat_topics: the others are not the AI's
    topic = body.get("topicName")
    if topic is not None and (not isinstance(topic, str) or topic not in model.topics):
        raise ApiError(404, f"Topic {topic} not found")
    webhook = None
    if body.get("webhookUrl") is not None:
        url, secret = body.get("webhookUrl"), body.get("webhookSigningSecret")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: webhookUrl: Invalid url")
        if not isinstance(secret, str) or not secret:
            raise ApiError(
                400, "Bad Request: webhookSigningSecret: Required if webhookUrl is specified"
            )
        try:  # resolved once, now; delivered to this address only
            where = await asyncio.to_thread(check_destination, url, state.ai.webhook_hosts)
        except OutboundRefused as exc:
            raise ApiError(400, f"Bad Request: {exc.message}", code=exc.code) from None
        webhook = {"url": url, "secret": secret, "metadata": body.get("webhookMetadata"),
                   "address": where.address}  # fmt: skip
    conversation_id = canonical_uuid(conversation) if conversation else None
    state.quotas.admit_job(key.id, lambda ids: unfinished(state, ids))
    job = state.ai.submit(
        prompt, model_id, conversation_id=conversation_id,
        topic_name=topic, key_id=key.id, user_id=principal.user.id, viewer=viewer,
        webhook=webhook,
    )  # fmt: skip
    state.quotas.track_job(key.id, job.id)
    note(request, job_ids=[job.id], model_id=model_id)
    return JSONResponse(
        {"jobId": job.id, "conversationId": job.conversation_id,
         "omniChatUrl": chat_url(state, job.conversation_id)},
        status_code=201,
    )  # fmt: skip


def status_document(state: ServerState, job: AIJob) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": job.id, "state": job.state, "prompt": job.prompt,
        "conversationId": job.conversation_id, "modelId": job.model_id, "branchId": None,
        "organizationId": None, "userId": job.user_id, "topicName": job.topic_name,
        "omniChatUrl": chat_url(state, job.conversation_id),
        "createdAt": iso(job.created_at), "updatedAt": iso(job.updated_at),
    }  # fmt: skip
    if job.execution_started_at:
        doc["executionStartedAt"] = iso(job.execution_started_at)
    doc["progress"] = job.progress if job.state == "EXECUTING" else None
    if job.completed_at and job.state in ("COMPLETE", "FAILED"):
        doc["completedAt"] = iso(job.completed_at)
    if job.state == "COMPLETE":
        doc["resultSummary"] = job.result_summary
    if job.state == "FAILED":
        doc["error"] = job.error
    if job.state == "CANCELLED" and job.cancelled_at:
        doc["cancelledAt"] = iso(job.cancelled_at)
        doc["cancelledBy"] = job.key_id
    return doc


@router.get("/api/v1/ai/jobs/{job_id}")
async def job_status(request: Request, job_id: str) -> JSONResponse:
    return JSONResponse(status_document(state_of(request), _job(request, job_id)))


@router.post("/api/v1/ai/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str) -> JSONResponse:
    """Idempotent: a finished job is returned as it is; its running queries stop too."""
    job = _job(request, job_id)
    after = state_of(request).ai.cancel(job.id) or job
    return JSONResponse({"jobId": after.id, "state": after.state})


def _result(request: Request, job_id: str) -> tuple[AIJob, dict[str, Any]]:
    job = _job(request, job_id)
    if job.state != "COMPLETE":
        raise ApiError(404, "Job results not yet available")
    if job.result is None:
        raise ApiError(404, "Result is no longer available")
    return job, job.result


@router.get("/api/v1/ai/jobs/{job_id}/result")
async def job_result(request: Request, job_id: str) -> JSONResponse:
    job, result = _result(request, job_id)
    return JSONResponse({**result, "omniChatUrl": chat_url(state_of(request), job.conversation_id)})


@router.get("/api/v1/ai/jobs/{job_id}/vis")
async def job_chart(request: Request, job_id: str) -> Response:
    """A PNG chart of the answer's main result (a single number is a card); 422 when there is
    nothing to chart (no rows, a refusal). Rendering runs in a thread, off the event loop."""
    state = state_of(request)
    job, result = _result(request, job_id)
    main = main_query(result)
    png = await state.ai.chart(main, job) if main else None
    if png is None:
        return JSONResponse({"error": "No Arrow IPC data available for visualization"}, 422)
    return Response(png, media_type="image/png")
