"""The chat page's HTML: every value that came from a person, a model file or a database is
escaped here (``escape``) or rendered as markdown without raw HTML, so a prompt, an answer, a
label or a field value can only ever show as text.

The pages work without script; ``static/chat.js`` (served by Assay, no CDN) follows a running
question, cancels it and pages rows without reloads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt

from assay import __version__
from assay.ai.conversations import Conversation
from assay.ai.store import AI_TERMINAL, AIJob
from assay.server.chat_sessions import CSRF_FIELD, ChatUser

_MARKDOWN = MarkdownIt("js-default")  # no raw HTML: an answer can never inject markup
ASSUMED = "_Assumed: "
ROWS_PER_PAGE = 25
_STATIC = f"/chat/static/{{name}}?v={escape(__version__)}"
# markdown-it aligns table columns with style attributes, which the page's CSP (no inline
# style) would block: the stylesheet aligns these classes instead
_ALIGN = {f' style="text-align:{side}"': f' class="align-{side}"'
          for side in ("left", "center", "right")}  # fmt: skip


@dataclass(frozen=True)
class ModelChoice:
    """A model the person may ask about, with the topics the AI answers from."""

    id: str
    label: str
    topics: tuple[tuple[str, str], ...]  # (name, label)


@dataclass(frozen=True)
class RowsPage:
    """One page of a query's rows, as people read them (labels, grains as text)."""

    labels: Sequence[str]
    rows: Sequence[Sequence[str]]
    numeric: Sequence[bool]
    page: int
    pages: int
    total: int


def page(title: str, body: str, user: ChatUser | None, status: int = 200) -> HTMLResponse:
    csrf = f'<meta name="csrf-token" content="{escape(user.csrf)}">' if user else ""
    nav = '<a href="/chat">Conversations</a>'
    if user is not None and user.csrf:
        who = escape(user.principal.user.display_name or user.principal.user.user_name)
        nav += (f'<span class="muted">{who}</span><form method="post" action="/chat/logout">'
                f'{_csrf_field(user)}<button class="quiet" type="submit">Sign out</button>'
                "</form>")  # fmt: skip
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark"><link rel="icon" href="data:,">'
        f'{csrf}<link rel="stylesheet" href="{_STATIC.format(name="chat.css")}">'
        f'<script src="{_STATIC.format(name="chat.js")}" defer></script></head><body>'
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header class="bar"><a class="brand" href="/chat">Assay</a><nav aria-label="Account">'
        f"{nav}</nav></header>"
        f'<main id="main">{body}</main>'
        '<div id="announce" class="sr-only" role="status" aria-live="polite"></div>'
        "</body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _csrf_field(user: ChatUser) -> str:
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{escape(user.csrf)}">'


def sign_in(target: str, message: str, status: int) -> HTMLResponse:
    body = (
        '<div class="card"><h1>Sign in</h1>'
        f'<p role="alert">{escape(message)}</p>'
        '<form class="ask" method="post" action="/chat/login">'
        f'<input type="hidden" name="next" value="{escape(target)}">'
        '<div><label for="key">API key</label>'
        '<input id="key" type="password" name="key" autocomplete="current-password" required '
        'autofocus></div><div><button type="submit">Sign in</button></div></form></div>'
    )
    return page("Sign in · Assay", body, None, status)


def message_page(user: ChatUser | None, title: str, text: str, status: int,
                 back: str = "/chat") -> HTMLResponse:  # fmt: skip
    body = (f'<div class="card"><h1>{escape(title)}</h1><p role="alert">{escape(text)}</p>'
            f'<p><a href="{escape(back)}">Back</a></p></div>')  # fmt: skip
    return page(f"{title} · Assay", body, user, status)


def ask_form(
    user: ChatUser,
    models: Sequence[ModelChoice],
    *,
    conversation_id: str | None = None,
    model_id: str | None = None,
    topic: str | None = None,
    busy: bool = False,
) -> str:
    """The box to ask in, with the model and topic to ask about (a topic option names its
    model; the script hides the others, the server checks the pair either way)."""
    chosen = model_id or (models[0].id if models else "")
    model_options = "".join(
        f'<option value="{escape(m.id)}"{" selected" if m.id == chosen else ""}>'
        f"{escape(m.label)}</option>"
        for m in models
    )
    topic_options = '<option value="">Any topic (let Assay pick)</option>' + "".join(
        f'<option value="{escape(name)}" data-model="{escape(m.id)}"'
        f"{' selected' if m.id == chosen and name == topic else ''}>{escape(label)}</option>"
        for m in models
        for name, label in m.topics
    )
    hidden = (f'<input type="hidden" name="conversation" value="{escape(conversation_id)}">'
              if conversation_id else "")  # fmt: skip
    heading = "Ask a follow-up" if conversation_id else "Ask a new question"
    return (
        f'<section class="card" aria-labelledby="ask-heading"><h2 id="ask-heading">{heading}'
        '</h2><form class="ask" method="post" action="/chat/ask">'
        f"{_csrf_field(user)}{hidden}"
        '<div class="choices"><div><label for="model">Model</label>'
        f'<select id="model" name="model">{model_options}</select></div>'
        '<div><label for="topic">Topic</label>'
        f'<select id="topic" name="topic">{topic_options}</select></div></div>'
        '<div><label for="prompt">Question</label><textarea id="prompt" name="prompt" '
        'maxlength="4000" required placeholder="e.g. What is total revenue by region?">'
        "</textarea></div>"
        f'<div class="row"><button type="submit"{" disabled" if busy else ""}>Ask</button>'
        '<span class="muted">Ctrl+Enter asks too</span></div></form></section>'
    )


def conversations(user: ChatUser, items: Sequence[Conversation],
                  models: Sequence[ModelChoice]) -> HTMLResponse:  # fmt: skip
    listed = "".join(
        f'<li><a href="/chat/{escape(c.id)}">{escape(_short(c.name, 120))}</a>'
        f'<div class="muted">{c.job_count} question{"s" if c.job_count != 1 else ""} · '
        f'last asked <time datetime="{_iso(c.updated_at)}">{_when(c.updated_at)}</time>'
        + (
            f" · “{escape(_short(c.last_user_prompt, 80))}”"
            if c.job_count > 1 and c.last_user_prompt
            else ""
        )
        + "</div></li>"
        for c in items
    )
    listing = (
        f'<ul class="conversations">{listed}</ul>'
        if items
        else '<p class="muted">No conversations yet: ask a first question above.</p>'
    )
    body = (
        "<h1>Conversations</h1>"
        + ask_form(user, models)
        + f'<section class="card" aria-labelledby="past"><h2 id="past">Your conversations</h2>'
        f"{listing}</section>"
    )
    return page("Conversations · Assay", body, user)


def conversation(user: ChatUser, jobs: Sequence[AIJob], turns: Sequence[str],
                 models: Sequence[ModelChoice]) -> HTMLResponse:  # fmt: skip
    last = jobs[-1]
    busy = any(j.state not in AI_TERMINAL for j in jobs)
    body = (
        f"<h1>{escape(_short(jobs[0].prompt, 200))}</h1>"
        + "".join(turns)
        + ask_form(
            user,
            models,
            conversation_id=last.conversation_id,
            model_id=last.model_id,
            topic=last.topic_name,
            busy=busy,
        )
    )
    return page(f"{_short(jobs[0].prompt, 60)} · Assay", body, user)


def turn(
    user: ChatUser,
    job: AIJob,
    answer: str = "",
    samples: Sequence[tuple[str, str, str]] = (),
) -> str:
    """One question and what became of it. ``answer``: the rendered queries (``query``) when
    complete; ``samples``: (model, topic, prompt) to offer after a refusal."""
    base = f"/chat/{job.conversation_id}/turns/{job.id}"
    head = (f'<h2 tabindex="-1">{escape(job.prompt)}</h2>'
            f'<p class="state">{escape(_state_words(job))}</p>')  # fmt: skip
    if job.state not in AI_TERMINAL:
        note = (job.progress or {}).get("message") or "Waiting to start…"
        return (
            f'<article class="turn" id="turn-{job.id}" data-poll="{base}" aria-busy="true">'
            f'{head}<div class="progress"><span class="spinner" aria-hidden="true"></span>'
            f'<span class="progress-message" role="status">{escape(str(note))}</span>'
            f'<form method="post" action="{base}/cancel" data-cancel>{_csrf_field(user)}'
            '<button class="quiet" type="submit">Cancel</button></form></div>'
            '<noscript><p class="muted">Reload the page to see the answer.</p></noscript>'
            "</article>"
        )
    body = answer
    if job.state == "FAILED":
        detail = (job.error or {}).get("detail") or (job.error or {}).get("message") or ""
        body = f'<p class="error">This question could not be answered: {escape(str(detail))}</p>'
    elif job.state == "CANCELLED":
        body = '<p class="muted">This question was cancelled.</p>'
    elif job.result is None:
        body = '<p class="muted">This answer is no longer available.</p>'
    elif samples:
        body += _samples(user, job, samples)
    return f'<article class="turn" id="turn-{job.id}">{head}{body}</article>'


def answer_markdown(markdown: str) -> tuple[str, str]:
    """The answer, and its assumptions apart (shown after the queries, where a reader checks
    what the numbers rest on)."""
    said, assumed = [], []
    for part in markdown.split("\n\n"):
        stripped = part.strip()
        if stripped.startswith(ASSUMED) and stripped.endswith("_"):
            assumed.append(stripped[len(ASSUMED) : -1])
        else:
            said.append(part)
    rendered = _markdown("\n\n".join(said))
    answer = f'<div class="answer">{rendered}</div>'
    if not assumed:
        return answer, ""
    items = "".join(f"<li>{_inline(a)}</li>" for a in assumed)
    return answer, (f'<aside class="assumptions" aria-label="Assumptions"><strong>Assumed'
                    f"</strong><ul>{items}</ul></aside>")  # fmt: skip


def refusal(markdown: str) -> str:
    return f'<div class="answer refused" role="note">{_markdown(markdown)}</div>'


def query(base: str, index: int, action: dict[str, Any], rows: RowsPage | None) -> str:
    """One query the answer ran: its chart, its rows (paged), downloads, and the semantic
    query itself (copyable, and a link that runs it again)."""
    result = action.get("result") or {}
    at = f"{base}/queries/{index}"
    parts = [f'<section class="query" aria-label="Query {index + 1}">'
             f'<h3>{escape(str(action.get("message") or "Query"))}</h3>']  # fmt: skip
    if result.get("status") != "success":
        parts.append(f'<p class="error">The query failed: {escape(str(result.get("error")))}</p>')
    else:
        if result.get("totalRowCount"):
            parts.append(  # the system's light or dark setting picks the drawing
                f'<picture><source media="(prefers-color-scheme: dark)" '
                f'srcset="{at}/chart?theme=dark"><img class="chart" alt="Chart of the result" '
                f'src="{at}/chart?theme=light"></picture>'
            )
        if rows is not None:
            parts.append(rows_fragment(at, rows))
        parts.append(
            f'<p class="row"><a class="button quiet" href="{at}.csv" download>Download CSV</a>'
            f'<a class="button quiet" href="{at}.xlsx" download>Download XLSX</a></p>'
        )
    text = json.dumps(result.get("query"), indent=2)
    ident = f"q-{base.rsplit('/', 1)[-1]}-{index}"
    parts.append(
        f'<details><summary>Semantic query</summary><pre id="{ident}">{escape(text)}</pre>'
        f'<p class="row"><button class="quiet" type="button" data-copy="{ident}">Copy query'
        f'</button><a href="{at}/rows">Run it again</a></p></details></section>'
    )
    return "".join(parts)


def rows_fragment(at: str, rows: RowsPage) -> str:
    head = "".join(f'<th scope="col">{escape(label)}</th>' for label in rows.labels)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{escape(v)}</td>' if rows.numeric[i] else f"<td>{escape(v)}</td>"
            for i, v in enumerate(row)
        ) + "</tr>"
        for row in rows.rows
    )  # fmt: skip
    first = (rows.page - 1) * ROWS_PER_PAGE + 1 if rows.rows else 0
    last = first + len(rows.rows) - 1 if rows.rows else 0
    caption = f"Rows {first:,}–{last:,} of {rows.total:,}"
    links = []
    if rows.page > 1:
        links.append(f'<a data-page href="{at}/rows?page={rows.page - 1}">Previous rows</a>')
    if rows.page < rows.pages:
        links.append(f'<a data-page href="{at}/rows?page={rows.page + 1}">Next rows</a>')
    pager = f'<nav class="pager" aria-label="Rows pages">{"".join(links)}</nav>' if links else ""
    return (f'<div class="rows"><div class="scroll"><table><caption class="muted">{caption}'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
            f"{pager}</div>")  # fmt: skip


def rows_page(user: ChatUser, back: str, title: str, at: str, rows: RowsPage) -> HTMLResponse:
    body = (
        f'<p><a href="{escape(back)}">Back to the conversation</a></p>'
        f'<h1>{escape(title)}</h1><div class="card">{rows_fragment(at, rows)}'
        f'<p class="row"><a class="button quiet" href="{at}.csv" download>Download CSV</a>'
        f'<a class="button quiet" href="{at}.xlsx" download>Download XLSX</a></p></div>'
    )
    return page(f"{title} · Assay", body, user)


def _markdown(text: str) -> str:
    html = str(_MARKDOWN.render(text))
    for attribute, css in _ALIGN.items():
        html = html.replace(attribute, css)
    return html


def _inline(text: str) -> str:
    return str(_MARKDOWN.renderInline(text))


def _samples(user: ChatUser, job: AIJob, samples: Sequence[tuple[str, str, str]]) -> str:
    buttons = "".join(
        '<form method="post" action="/chat/ask">'
        f'{_csrf_field(user)}<input type="hidden" name="conversation" '
        f'value="{escape(job.conversation_id)}"><input type="hidden" name="model" '
        f'value="{escape(model)}"><input type="hidden" name="topic" value="{escape(topic)}">'
        f'<button class="quiet" type="submit" name="prompt" value="{escape(prompt)}">'
        f"{escape(prompt)}</button></form>"
        for model, topic, prompt in samples
    )
    return f'<p>Questions this model can answer:</p><div class="samples">{buttons}</div>'


def _state_words(job: AIJob) -> str:
    return {"QUEUED": "Queued", "EXECUTING": "Working…", "DELIVERING": "Writing the answer…",
            "COMPLETE": f"Answered {_when(job.completed_at or job.updated_at)}",
            "FAILED": "Failed", "CANCELLED": "Cancelled"}.get(job.state, job.state)  # fmt: skip


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="seconds")


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
