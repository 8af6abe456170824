"""``/chat``: the interactive chat behind ``omniChatUrl``, served by Assay itself and working
offline (its stylesheet and script come from the package, nothing from a CDN).

``/chat`` lists the person's conversations and starts one; ``/chat/{id}`` shows one, asks
follow-ups, follows a running question and cancels it. Questions go through the same AI job
runner as ``POST /api/v1/ai/jobs``, as the signed-in user: one open question per
conversation (a second is 409), and every query runs under that user's access rules.

A browser signs in with an API key for a server-side session (``chat_sessions``); every POST
carries the session's CSRF token. A conversation of someone else reads as one that does not
exist (404), whoever asks, an organization key's holder included: the page is a person's.
"""

from __future__ import annotations

import time
from importlib import resources
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assay.ai.jobs import UnknownConversation
from assay.ai.store import AIJob, ConversationBusy
from assay.errors import AssayError
from assay.server import chat_views as views
from assay.server.auth import authenticate
from assay.server.chat_answers import chart_of, queries_of, render_turn, rerun, rows_of
from assay.server.chat_answers import download as download_rows
from assay.server.chat_sessions import (
    CSRF_FIELD,
    ChatUser,
    SignInNeeded,
    check_origin,
    check_post,
    clear_session_cookie,
    current_user,
    end_session,
    open_session,
    set_session_cookie,
)
from assay.server.errors import ApiError
from assay.server.limits import ARRIVED
from assay.server.observe import note
from assay.server.requests import MAX_PROMPT_CHARS, canonical_uuid
from assay.server.state import ServerState, unfinished

router = APIRouter(include_in_schema=False)
# An SVG opened on its own is a document: it may run nothing and load nothing (an <img> never
# runs script anyway). Its styles are its own, inline.
_SVG_HEADERS = {
    "Cache-Control": "private, no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
#: the conversations /chat lists (the newest; the API pages through all of them)
LISTED = 50
_STATIC = {"chat.js": "text/javascript; charset=utf-8", "chat.css": "text/css; charset=utf-8"}
_FILES = {name: (resources.files("assay.server") / "static" / name).read_bytes()
          for name in _STATIC}  # fmt: skip


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.assay
    return state


def _timed(request: Request, response: Response) -> Response:
    """The server's time on a render (``Server-Timing: render``): what bench/chat_page.py
    holds to 100 ms, apart from the network and the browser."""
    arrived = request.scope.get(ARRIVED)
    if arrived is not None:
        took = (time.perf_counter() - arrived) * 1000
        response.headers["Server-Timing"] = f"render;dur={took:.2f}"
    return response


def _wants_fragment(request: Request) -> bool:
    return request.headers.get("x-fragment") == "1"


def _refused(request: Request, exc: AssayError, target: str) -> Response:
    """Back to sign-in, remembering where the person was (a script's request gets the bare
    status: on a 401 it reloads the page, which lands here). A refusal that is not about
    signing in (429: too many requests) is said as it is, with its headers."""
    headers = getattr(exc, "headers", None) or {}
    if _wants_fragment(request):
        return Response(exc.message, exc.status, headers, media_type="text/plain")
    if exc.status != 401:
        title = {403: "Refused", 429: "Too many requests"}.get(exc.status, "Not possible")
        refused = views.message_page(None, title, exc.message, exc.status, target)
        refused.headers.update(headers)
        return refused
    response = views.sign_in(target, exc.message, 401)
    if isinstance(exc, SignInNeeded):
        clear_session_cookie(response)
    return response


async def _form(request: Request) -> dict[str, str]:
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


def _conversation(state: ServerState, user: ChatUser, conversation_id: str) -> list[AIJob]:
    """The person's conversation; [] when it is not there or not theirs (the same answer)."""
    canonical = canonical_uuid(conversation_id)
    jobs = state.ai.store.conversation(canonical) if canonical else []
    if not jobs or any(job.user_id != user.principal.user.id for job in jobs):
        return []
    return jobs


def _turn_job(state: ServerState, user: ChatUser, conversation_id: str, job_id: str) -> AIJob:
    job = next((j for j in _conversation(state, user, conversation_id) if j.id == job_id), None)
    if job is None:
        raise ApiError(404, "Question not found")
    return job


def _models(state: ServerState, user: ChatUser) -> list[views.ModelChoice]:
    """The models this person may ask about, with the topics the AI answers from."""
    choices = []
    for model_id in state.runner.targets:
        viewer = user.principal.viewer(model_id)
        try:
            model = state.ai.model(model_id, viewer)
        except AssayError:
            continue
        if not viewer.may("QUERY_TOPICS"):
            continue
        topics = tuple((t.name, t.label) for t in model.topics.values() if not t.hidden)
        choices.append(views.ModelChoice(model_id, model.label or model.name, topics))
    return choices


@router.get("/chat/static/{name}")
async def static(name: str) -> Response:
    if name not in _FILES:
        raise ApiError(404, "Not Found")
    return Response(_FILES[name], media_type=_STATIC[name],
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


@router.get("/chat/login")
async def login_page(next: str = "/chat") -> Response:
    return views.sign_in(_safe_target(next), "Sign in with an API key.", 200)


@router.post("/chat/login")
async def login(request: Request) -> Response:
    """Trade a key for a session, then go back where the person was going."""
    state = _state(request)
    form = await _form(request)
    token, target = form.get("key", "").strip(), _safe_target(form.get("next", "/chat"))
    try:
        check_origin(request)
        key = authenticate(state.store, f"Bearer {token}")
        state.limiter.check(key.id)
    except AssayError as exc:
        return views.sign_in(target, f"{exc} Enter a valid API key.", exc.status)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(state, response, open_session(state, key))
    return response


@router.post("/chat/logout")
async def logout(request: Request) -> Response:
    state = _state(request)
    form = await _form(request)
    try:
        user = current_user(request)
        check_post(request, user, form.get(CSRF_FIELD))
    except SignInNeeded:
        user = None  # nothing to end; still clear the cookie
    except AssayError as exc:
        return views.message_page(None, "Not signed out", exc.message, exc.status)
    if user is not None:
        end_session(state, request)
    response = views.sign_in("/chat", "You are signed out.", 200)
    clear_session_cookie(response)
    return response


@router.get("/chat")
async def conversations(request: Request) -> Response:
    state = _state(request)
    try:
        user = current_user(request)
    except AssayError as exc:
        return _refused(request, exc, "/chat")
    items = state.ai.store.conversations(user.principal.user.id, limit=LISTED, after=None)
    return _timed(request, views.conversations(user, items, _models(state, user)))


@router.post("/chat/ask")
async def ask(request: Request) -> Response:
    """Ask a question (a new conversation, or a follow-up), as the signed-in person."""
    state = _state(request)
    form = await _form(request)
    conversation = form.get("conversation") or None
    back = f"/chat/{quote(conversation)}" if conversation else "/chat"
    try:
        user = current_user(request)
        check_post(request, user, form.get(CSRF_FIELD))
    except AssayError as exc:
        return _refused(request, exc, back)
    try:
        job = _submit(state, user, form, conversation)
    except ConversationBusy as exc:
        return views.message_page(user, "Still answering", f"{exc.message}: wait for the "
                                  "answer or cancel it, then ask again.", 409, back)  # fmt: skip
    except AssayError as exc:
        return views.message_page(user, "Not asked", exc.message, exc.status, back)
    note(request, job_ids=[job.id], model_id=job.model_id)
    return RedirectResponse(f"/chat/{job.conversation_id}#turn-{job.id}", status_code=303)


def _submit(state: ServerState, user: ChatUser, form: dict[str, str],
            conversation: str | None) -> AIJob:  # fmt: skip
    prompt = form.get("prompt", "").strip()
    if not prompt:
        raise ApiError(400, "Write a question first.")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"The question is {len(prompt):,} characters long; the limit is "
                       f"{MAX_PROMPT_CHARS:,}.")  # fmt: skip
    model_id = canonical_uuid(form.get("model"))
    if model_id is None or model_id not in state.runner.targets:
        raise ApiError(404, "Choose a model to ask about.")
    conversation_id = canonical_uuid(conversation) if conversation else None
    if conversation and conversation_id is None:
        raise ApiError(404, "Conversation not found")
    principal = user.principal
    viewer = principal.viewer(model_id)
    topic = form.get("topic") or None
    if topic is not None and topic not in state.ai.model(model_id, viewer).topics:
        raise ApiError(404, f"Topic {topic} not found in this model")
    state.quotas.admit_job(user.key.id, lambda ids: unfinished(state, ids))
    try:
        job = state.ai.submit(prompt, model_id, conversation_id=conversation_id,
                              topic_name=topic, key_id=user.key.id, user_id=principal.user.id,
                              viewer=viewer)  # fmt: skip
    except UnknownConversation as exc:
        raise ApiError(404, exc.message) from None
    state.quotas.track_job(user.key.id, job.id)
    return job


@router.get("/chat/{conversation_id}")
async def chat(request: Request, conversation_id: str) -> Response:
    state = _state(request)
    target = f"/chat/{quote(conversation_id)}"
    try:
        user = current_user(request)
    except AssayError as exc:
        return _refused(request, exc, target)
    jobs = _conversation(state, user, conversation_id)
    if not jobs:
        return views.message_page(user, "Conversation not found", "There is no conversation "
                                  "of yours at this address.", 404)  # fmt: skip
    turns = [await render_turn(state, user, job) for job in jobs]
    return _timed(request, views.conversation(user, jobs, turns, _models(state, user)))


@router.get("/chat/{conversation_id}/turns/{job_id}")
async def turn(request: Request, conversation_id: str, job_id: str) -> Response:
    """One question: the fragment a script polls (its state in ``X-Assay-State``)."""
    state = _state(request)
    try:
        user = current_user(request)
    except AssayError as exc:
        return _refused(request, exc, f"/chat/{quote(conversation_id)}")
    try:
        job = _turn_job(state, user, conversation_id, job_id)
    except ApiError as exc:
        return views.message_page(user, "Not found", exc.message, 404)
    html = await render_turn(state, user, job)
    if not _wants_fragment(request):
        return RedirectResponse(f"/chat/{job.conversation_id}#turn-{job.id}", status_code=303)
    headers = {"X-Assay-State": job.state, "Cache-Control": "no-store"}
    return _timed(request, HTMLResponse(html, headers=headers))


@router.post("/chat/{conversation_id}/turns/{job_id}/cancel")
async def cancel(request: Request, conversation_id: str, job_id: str) -> Response:
    state = _state(request)
    form = await _form(request)
    back = f"/chat/{quote(conversation_id)}"
    try:
        user = current_user(request)
        check_post(request, user, form.get(CSRF_FIELD))
        job = _turn_job(state, user, conversation_id, job_id)
    except AssayError as exc:
        return _refused(request, exc, back)
    after = state.ai.cancel(job.id) or job
    if _wants_fragment(request):
        return HTMLResponse("", headers={"X-Assay-State": after.state})
    return RedirectResponse(f"/chat/{job.conversation_id}#turn-{job.id}", status_code=303)


@router.get("/chat/{conversation_id}/turns/{job_id}/queries/{index}/rows")
async def rows(request: Request, conversation_id: str, job_id: str, index: int,
               page: int = 1) -> Response:  # fmt: skip
    """A page of a query's rows, run again as the person looking (a fragment for the
    script; a page of its own for the 'Run it again' link)."""
    state = _state(request)
    back = f"/chat/{quote(conversation_id)}"
    try:
        user = current_user(request)
    except AssayError as exc:
        return _refused(request, exc, back)
    try:
        job = _turn_job(state, user, conversation_id, job_id)
        found = rows_of(state, await rerun(state, user, job, index), page)
    except AssayError as exc:
        return views.message_page(user, "No rows", exc.message, exc.status, back)
    at = f"/chat/{job.conversation_id}/turns/{job.id}/queries/{index}"
    if _wants_fragment(request):
        return HTMLResponse(views.rows_fragment(at, found), headers={"Cache-Control": "no-store"})
    title = str(queries_of(job)[index].get("message") or "Rows")
    return views.rows_page(user, f"{back}#turn-{job.id}", title, at, found)


@router.get("/chat/{conversation_id}/turns/{job_id}/queries/{index}/chart")
async def chart(request: Request, conversation_id: str, job_id: str, index: int,
                theme: str = "light") -> Response:  # fmt: skip
    """A query's chart as an SVG image of its own, in the page's light or dark theme; 404
    when there is nothing to chart or the question is not the viewer's."""
    state = _state(request)
    try:
        user = current_user(request)
        job = _turn_job(state, user, conversation_id, job_id)
    except AssayError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain")
    drawn = await chart_of(state, job, index, "dark" if theme == "dark" else "light")
    if drawn is None:
        return Response("Nothing to chart", status_code=404, media_type="text/plain")
    image = Response(drawn, media_type="image/svg+xml", headers=_SVG_HEADERS)
    return _timed(request, image)


@router.get("/chat/{conversation_id}/turns/{job_id}/queries/{name}")
async def download(request: Request, conversation_id: str, job_id: str, name: str) -> Response:
    """``{index}.csv`` or ``{index}.xlsx``: every row, through the API's result formats."""
    state = _state(request)
    back = f"/chat/{quote(conversation_id)}"
    index, _, kind = name.partition(".")
    try:
        user = current_user(request)
    except AssayError as exc:
        return _refused(request, exc, back)
    try:
        if kind not in ("csv", "xlsx") or not index.isdigit():
            raise ApiError(404, "Not Found")
        job = _turn_job(state, user, conversation_id, job_id)
        finished = await rerun(state, user, job, int(index))
        return download_rows(state, finished, kind, f"assay-{job.id[:8]}-{index}")
    except AssayError as exc:
        return views.message_page(user, "No download", exc.message, exc.status, back)


def _safe_target(target: str) -> str:
    """Only ever back to a chat page on this server."""
    if target == "/chat" or (target.startswith("/chat/") and "//" not in target
                             and "\\" not in target):  # fmt: skip
        return target
    return "/chat"
