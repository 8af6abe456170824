"""``/api/v1/ai/generate-query`` and ``/api/v1/ai/pick-topic`` (contract 5.6, 5.7): the
planner's two single-shot tools, for agents that want the semantic query (and optionally its
rows) without a whole AI job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from assay.ai import answer
from assay.ai.jobs import AIJobRunner
from assay.ai.planner import Plan
from assay.errors import PermissionDenied
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import QUERY_TOPICS
from assay.server.auth import Principal
from assay.server.errors import ApiError
from assay.server.requests import canonical_uuid, json_body, prompt_of
from assay.server.state import ServerState, authorized, caller

router = APIRouter()


async def _question(
    request: Request,
    userId: str | None,  # noqa: N803
) -> tuple[ServerState, dict[str, Any], Principal]:
    state: ServerState = request.app.state.assay
    key = authorized(request)
    body = await json_body(request)
    principal = caller(request, userId, key)
    body["prompt"] = prompt_of(body)
    model_id = canonical_uuid(body.get("modelId"))
    if model_id is None:
        raise ApiError(
            400, "Bad Request: modelId: " + ("Invalid uuid" if body.get("modelId") else "Required")
        )
    body["modelId"] = model_id
    return state, body, principal


def _context_query(body: dict[str, Any]) -> dict[str, Any] | None:
    """``contextQuery`` comes flat or wrapped in ``model_job`` (omni-app-mcp documents both)."""
    context = body.get("contextQuery")
    if context is None:
        return None
    if not isinstance(context, dict):
        raise ApiError(400, "Bad Request: contextQuery: Expected object")
    inner = context.get("model_job", context)
    return inner if isinstance(inner, dict) else None


def _topic_hint(model: SemanticModel, name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or name not in model.topics:
        raise ApiError(404, f"Topic {name} not found")
    return name


@router.post("/api/v1/ai/generate-query")
async def generate_query(request: Request, userId: str | None = None) -> JSONResponse:  # noqa: N803
    state, body, principal = await _question(request, userId)
    ai: AIJobRunner = state.ai
    viewer = principal.viewer(body["modelId"])
    if not viewer.may(QUERY_TOPICS):
        raise PermissionDenied("Permission denied - querier role required on the model")
    model = ai.model(body["modelId"], viewer)
    current = _topic_hint(model, body.get("currentTopicName"))
    context = _context_query(body)
    prompt = body["prompt"].strip()
    # currentTopicName steers (omniframes' `topic=`): that topic first, any topic if it can't
    plan: Plan = await ai.plan(prompt, body["modelId"], context, current, viewer)
    if current is not None and not plan.queries:
        plan = await ai.plan(prompt, body["modelId"], context, viewer=viewer)
    if not plan.queries:
        raise ApiError(400, f"No query generated: {plan.refusal or 'the question has no answer'}")
    planned = plan.queries[0]
    doc: dict[str, Any] = {
        "query": planned.query,
        "topic": plan.topic or planned.query.get("join_paths_from_topic_name"),
        "baseView": None,
        "error": None,
        "intent": planned.intent,
        "provenance": planned.provenance,
    }
    if body.get("runQuery", True) is not False:
        outcome = await ai.run_planned(body["modelId"], planned, key_id=principal.key.id,
                                       user_id=principal.user.id, viewer=viewer)  # fmt: skip
        if isinstance(outcome, answer.QueryFailed):
            doc["error"] = {"message": "The query failed", "detail": outcome.message}
        else:
            text, cut = answer.csv_result(outcome.table, outcome.labels)
            doc["result"] = {
                "rows": jsonable_encoder(outcome.table.to_pylist()),
                "totalRowCount": outcome.total,
                "csvResult": text,
                "csvResultWasTruncated": cut or outcome.total > outcome.table.num_rows,
            }
    return JSONResponse(doc)


@router.post("/api/v1/ai/pick-topic")
async def pick_topic(request: Request, userId: str | None = None) -> JSONResponse:  # noqa: N803
    state, body, principal = await _question(request, userId)
    viewer = principal.viewer(body["modelId"])
    model = state.ai.model(body["modelId"], viewer)
    topics = [name for name, topic in model.topics.items() if not topic.hidden]
    potential = body.get("potentialTopicNames")
    if potential is not None:
        if not isinstance(potential, list) or not all(isinstance(n, str) for n in potential):
            raise ApiError(400, "Bad Request: potentialTopicNames: Expected array of strings")
        topics = [name for name in topics if name in potential]
    if not topics:
        raise ApiError(404, "No topics found")
    current = _topic_hint(model, body.get("currentTopicName"))
    plan = await state.ai.plan(body["prompt"].strip(), body["modelId"], viewer=viewer)
    if plan.topic in topics:
        return JSONResponse({"topicId": plan.topic})
    if current in topics:
        return JSONResponse({"topicId": current})
    if plan.topic is None:
        raise ApiError(400, f"No topic matches this question: {plan.refusal or ''}".rstrip(": "))
    return JSONResponse({"topicId": topics[0]})
