"""``/api/v1/ai/conversations``: a user's AI conversations (contract section 5.9), listed
newest first, read with their messages, renamed and deleted. Omni's newer SDK spec lists and
reads them and has no rename or delete, so those two are Assay's: ``PATCH`` with ``{"name"}``
and ``DELETE``.

A conversation is its user's, as its jobs are: every store query is filtered by the caller's
user (an organization key reaches everyone's, as it does jobs), so another user's conversation
is the same 404 as one that does not exist, and is never renamed or deleted by them.

Two clients read two spellings of the same things: omni-app-mcp reads ``data``,
``lastUserPrompt`` and messages' ``content``/``timestamp``; Omni's newer SDK reads ``records``,
``lastPrompt`` and ``text``/``createdAt``. Both are sent.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assay.ai.conversations import MAX_NAME_CHARS, Conversation, ConversationCursor
from assay.ai.store import AIJob
from assay.jobs.summaries import iso
from assay.server.ai_routes import chat_url
from assay.server.auth import Principal
from assay.server.errors import ApiError
from assay.server.pages import invalid_cursor, make_cursor, page_info, page_size, read_cursor
from assay.server.requests import canonical_uuid, json_body, received
from assay.server.state import ServerState, authorized, caller, state_of

router = APIRouter()
_LIST_PARAMS = {"pageSize", "cursor", "userId"}
_RENAME_KEYS = {"name"}
NOT_FOUND = "Conversation not found"


def _reach(principal: Principal) -> str | None:
    """Whose conversations the caller may touch by id: everyone's for an organization key (as
    with jobs), otherwise only its own user's."""
    return None if principal.org_key else principal.user.id


def _conversation_id(raw: str) -> str:
    canonical = canonical_uuid(raw)
    if canonical is None:
        raise ApiError(400, "Invalid conversation ID")
    return canonical


def _position(cursor: str | None) -> ConversationCursor | None:
    """The conversation a page ended at, from a cursor this server made; anything else is
    Omni's ``Invalid cursor`` (never a page of someone else's: the query filters by user)."""
    position = read_cursor(cursor)
    if position is None:
        return None
    at, conversation = position.get("updatedAt"), canonical_uuid(position.get("id"))
    if (
        not isinstance(at, int | float)
        or isinstance(at, bool)
        or not math.isfinite(at)
        or conversation is None
    ):
        raise invalid_cursor()
    return ConversationCursor(float(at), conversation)


def _record(state: ServerState, conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id, "name": conversation.name,
        "lastUserPrompt": conversation.last_user_prompt,
        "lastPrompt": conversation.last_user_prompt,
        "userId": conversation.user_id, "modelId": conversation.model_id,
        "createdAt": iso(conversation.created_at), "updatedAt": iso(conversation.updated_at),
        "omniChatUrl": chat_url(state, conversation.id),
    }  # fmt: skip


def _answer(job: AIJob) -> str:
    """The assistant's turn for a job: its markdown answer, or why there is none (yet)."""
    if job.state == "COMPLETE":
        return job.result_summary or ""
    if job.state == "FAILED":
        return f"The answer could not be produced: {(job.error or {}).get('message', 'failed')}"
    if job.state == "CANCELLED":
        return "Cancelled before an answer was given."
    return ""  # still being answered: its state says so, its jobId can be polled


def _messages(state: ServerState, jobs: list[AIJob]) -> list[dict[str, Any]]:
    """Alternating turns: each job's prompt, then its answer (with the job's id and the chat
    link, as Omni sets them on assistant turns only)."""
    turns: list[dict[str, Any]] = []
    for job in jobs:
        asked = iso(job.created_at)
        answered = iso(job.completed_at or job.cancelled_at or job.updated_at)
        answer = _answer(job)
        turns.append({"role": "user", "content": job.prompt, "text": job.prompt,
                      "createdAt": asked, "timestamp": asked, "jobId": None,
                      "omniChatUrl": None})  # fmt: skip
        turns.append({"role": "assistant", "content": answer, "text": answer,
                      "createdAt": answered, "timestamp": answered, "jobId": job.id,
                      "omniChatUrl": chat_url(state, job.conversation_id),
                      "state": job.state})  # fmt: skip
    return turns


@router.get("/api/v1/ai/conversations")
async def list_conversations(request: Request) -> JSONResponse:
    """The caller's user's conversations, or (organization key, ``userId``) another user's."""
    state = state_of(request)
    key = authorized(request)
    params = request.query_params
    unknown = sorted(set(params) - _LIST_PARAMS)
    if unknown:
        keys = ", ".join(f"'{k}'" for k in unknown)
        raise ApiError(400, f"Unrecognized key(s) in object: {keys}")
    user_id = params.get("userId") or None
    if user_id is not None and key.kind != "org":
        raise ApiError(403, "User-scoped tokens cannot filter by userId")
    principal = caller(request, user_id, key)
    size = page_size(params)
    after = _position(params.get("cursor"))
    owner = principal.user.id
    found = await asyncio.to_thread(state.ai.store.conversations, owner, limit=size + 1,
                                    after=after)  # fmt: skip
    total = await asyncio.to_thread(state.ai.store.conversation_count, owner)
    page = found[:size]
    last = page[-1].cursor if len(found) > size else None
    token = make_cursor({"updatedAt": last.updated_at, "id": last.id}) if last else None
    records = [_record(state, c) for c in page]
    return JSONResponse(
        {"data": records, "records": records,
         "pageInfo": page_info(next_cursor=token, size=size, total=total)}
    )  # fmt: skip


@router.get("/api/v1/ai/conversations/{conversation_id}")
async def read_conversation(request: Request, conversation_id: str) -> JSONResponse:
    state = state_of(request)
    principal = caller(request, None)
    wanted = _conversation_id(conversation_id)
    found = await asyncio.to_thread(
        state.ai.store.read_conversation, wanted, user_id=_reach(principal)
    )
    if found is None:
        raise ApiError(404, NOT_FOUND)
    conversation, jobs = found
    return JSONResponse(
        {**_record(state, conversation), "organizationId": None,
         "messages": _messages(state, jobs)}
    )  # fmt: skip


def _new_name(body: dict[str, Any]) -> str:
    unknown = sorted(set(body) - _RENAME_KEYS)
    if unknown:
        keys = ", ".join(f"'{k}'" for k in unknown)
        raise ApiError(400, f"Unrecognized key(s) in object: {keys}")
    if "name" not in body:
        raise ApiError(400, "Bad Request: name: Required")
    name = body["name"]
    if not isinstance(name, str):
        raise ApiError(400, f"Bad Request: name: Invalid input: expected string, received "
                       f"{received(name)}")  # fmt: skip
    name = name.strip()
    if not name:
        raise ApiError(400, "Bad Request: name: Too small: expected string to have >=1 characters")
    if len(name) > MAX_NAME_CHARS:
        raise ApiError(400, f"Bad Request: name: Too big: expected string to have "
                       f"<={MAX_NAME_CHARS} characters (it has {len(name)})")  # fmt: skip
    return name


@router.patch("/api/v1/ai/conversations/{conversation_id}")
async def rename_conversation(request: Request, conversation_id: str) -> JSONResponse:
    """Rename: the name a list shows instead of the first prompt. Answers the conversation."""
    state = state_of(request)
    principal = caller(request, None)
    wanted = _conversation_id(conversation_id)
    name = _new_name(await json_body(request))
    reach = _reach(principal)
    store = state.ai.store
    renamed = await asyncio.to_thread(store.rename_conversation, wanted, name, user_id=reach)
    found = await asyncio.to_thread(store.read_conversation, wanted, user_id=reach)
    if not renamed or found is None:
        raise ApiError(404, NOT_FOUND)
    return JSONResponse(_record(state, found[0]))


@router.delete("/api/v1/ai/conversations/{conversation_id}")
async def delete_conversation(request: Request, conversation_id: str) -> JSONResponse:
    """Delete the conversation, its jobs and their answers; a job still running is cancelled
    first (its queries stop). The query jobs they ran end as any others do: pruned with
    their results after ``result_retention_hours``."""
    state = state_of(request)
    principal = caller(request, None)
    wanted = _conversation_id(conversation_id)
    reach = _reach(principal)
    store = state.ai.store
    found = await asyncio.to_thread(store.read_conversation, wanted, user_id=reach)
    if found is None:
        raise ApiError(404, NOT_FOUND)
    for job in found[1]:
        if not job.done:
            state.ai.cancel(job.id)
    if not await asyncio.to_thread(store.delete_conversation, wanted, user_id=reach):
        raise ApiError(404, NOT_FOUND)  # deleted meanwhile by another request
    return JSONResponse({"success": True, "id": wanted, "deletedJobs": len(found[1])})
