"""``/chat/{conversationId}``: the page behind ``omniChatUrl``. Server-rendered, no script and
no CDN (it works offline): each prompt, the queries the answer ran with their rows and a
chart, and the markdown answer.

A browser has no bearer header, so ``POST /chat/login`` trades a key for an HttpOnly,
SameSite=Strict cookie holding it; every request is still checked against the key store, so a
revoked key stops working at once. API clients may send the usual header instead.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from html import escape
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markdown_it import MarkdownIt

from assay.ai.store import AIJob
from assay.errors import AssayError
from assay.server.auth import act_as, authenticate, signed_in
from assay.server.requests import canonical_uuid
from assay.server.state import ServerState

router = APIRouter(include_in_schema=False)
COOKIE = "assay_key"
_MARKDOWN = MarkdownIt("js-default")  # no raw HTML: an answer can never inject markup

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1d232a;background:#fafbfc}
h1{font-size:1.3rem}.turn{background:#fff;border:1px solid #dde2e8;border-radius:8px;
padding:1rem 1.25rem;margin:1rem 0}.prompt{font-weight:600;font-size:1.05rem}
.state{font-size:.8rem;color:#5b6673;margin-left:.5rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #dde2e8;padding:.25rem .6rem;text-align:left}th{background:#f1f4f7}
details{margin:.5rem 0}pre{background:#f1f4f7;padding:.6rem;overflow:auto;font-size:.8rem}
.action{color:#5b6673}.error{color:#b42318}img{max-width:100%}
form{display:flex;gap:.5rem}input{flex:1;padding:.4rem}
"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _login_form(target: str, message: str, status: int) -> HTMLResponse:
    return _page(
        "Sign in · Assay",
        f"<h1>Assay</h1><p>{escape(message)}</p>"
        '<form method="post" action="/chat/login">'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<input type="password" name="key" placeholder="API key" aria-label="API key" required>'
        '<button type="submit">Open</button></form>',
        status,
    )


def _csv_table(text: str) -> str:
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return ""
    head = "".join(f"<th>{escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


async def _action(state: ServerState, action: dict[str, Any], job: AIJob) -> str:
    kind, message = action.get("type"), str(action.get("message", ""))
    if kind != "generate_query":
        return ""  # the summarize action is the answer, shown below
    result = action.get("result") or {}
    parts = [f'<p class="action">{escape(message)}</p>']
    if result.get("status") != "success":
        parts.append(f'<p class="error">The query failed: {escape(str(result.get("error")))}</p>')
    else:
        png = await state.ai.chart(result, job)
        if png is not None:
            data = base64.b64encode(png).decode()
            parts.append(f'<img alt="Chart of the result" src="data:image/png;base64,{data}">')
        total = result.get("totalRowCount")
        shown = "first rows of " if result.get("csvResultWasTruncated") else ""
        parts.append(  # the answer shows them formatted; these are the raw values
            f"<details><summary>Rows ({shown}{total})</summary>"
            f"{_csv_table(str(result.get('csvResult', '')))}</details>"
        )
    query = json.dumps(result.get("query"), indent=2)
    parts.append(f"<details><summary>Semantic query</summary><pre>{escape(query)}</pre></details>")
    return "".join(parts)


async def _turn(state: ServerState, job: AIJob) -> str:
    head = (
        f'<div class="turn" id="job-{job.id}"><p class="prompt">{escape(job.prompt)}'
        f'<span class="state">{escape(job.state)}</span></p>'
    )
    if job.state != "COMPLETE":
        note = {
            "FAILED": f"This question could not be answered: {(job.error or {}).get('detail', '')}",
            "CANCELLED": "This question was cancelled.",
        }.get(job.state, "Working on it; reload the page to see the answer.")
        return f"{head}<p class=action>{escape(note)}</p></div>"
    if job.result is None:
        return f"{head}<p class=action>This answer is no longer available.</p></div>"
    actions = [await _action(state, a, job) for a in job.result.get("actions", [])]
    answer = _MARKDOWN.render(str(job.result.get("message", "")))
    return f"{head}{''.join(actions)}<div class='answer'>{answer}</div></div>"


@router.get("/chat/{conversation_id}")
async def chat(request: Request, conversation_id: str) -> Response:
    state: ServerState = request.app.state.assay
    target = f"/chat/{conversation_id}"
    header = request.headers.get("authorization")
    cookie = request.cookies.get(COOKIE)
    if header is None and cookie is None:
        return _login_form(target, "Enter an API key to open this conversation.", 401)
    try:
        key, own = signed_in(state.store, header or f"Bearer {cookie}")
        state.limiter.check(key.id)
        principal = act_as(state.store, key, None, own)
    except AssayError as exc:
        return _login_form(target, f"{exc} Enter a valid API key.", exc.status)
    canonical = canonical_uuid(conversation_id)
    jobs = state.ai.store.conversation(canonical) if canonical else []
    if not all(principal.owns(job.user_id) for job in jobs):
        jobs = []  # another user's conversation reads as one that does not exist
    if not jobs:
        return _page("Not found · Assay", "<h1>Conversation not found</h1>", 404)
    turns = [await _turn(state, job) for job in jobs]
    return _page(f"{jobs[0].prompt} · Assay", f"<h1>Conversation</h1>{''.join(turns)}")


@router.post("/chat/login")
async def login(request: Request) -> Response:
    """Trade a key for the session cookie, then go back to the conversation."""
    state: ServerState = request.app.state.assay
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token, target = form.get("key", [""])[0].strip(), form.get("next", ["/"])[0]
    if not target.startswith("/chat/") or "//" in target:
        target = "/"  # only ever back to a chat page on this server
    try:
        authenticate(state.store, f"Bearer {token}")
    except AssayError as exc:
        return _login_form(target, f"{exc} Enter a valid API key.", exc.status)
    response = RedirectResponse(target, status_code=303)
    secure = (state.settings.public_url or "").startswith("https://")
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure,
                        path="/chat", max_age=8 * 3600)  # fmt: skip
    return response
