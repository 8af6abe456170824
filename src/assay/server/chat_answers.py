"""An answer on the chat page, and its queries run again: the chart, pages of rows, the CSV
and XLSX downloads.

Whatever is run again runs as the person looking, through the query runner like any other
query job (their model role, access filters and field grants apply there, in the layers
below), never from what the page or the stored answer holds.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import pyarrow as pa
from fastapi.responses import Response

from assay.ai.chart_spec import Theme
from assay.ai.store import AIJob
from assay.errors import AssayError
from assay.jobs.model import Job
from assay.jobs.work import JobRequest
from assay.results.arrow import read_table
from assay.results.formats import date_types_of, format_value, grains_as_text
from assay.server import chat_views as views
from assay.server.chat_sessions import ChatUser
from assay.server.documents import result_document
from assay.server.errors import ApiError
from assay.server.quotas import KeyQuotas
from assay.server.state import ServerState, unfinished

ROWS = views.ROWS_PER_PAGE
#: how long a page waits for a query run again before saying so
RERUN_SECONDS = 60.0


def queries_of(job: AIJob) -> list[dict[str, Any]]:
    return [a for a in (job.result or {}).get("actions", []) if a.get("type") == "generate_query"]


async def render_turn(state: ServerState, user: ChatUser, job: AIJob) -> str:
    """The turn's HTML: progress while it runs; when it is complete, the markdown answer,
    each query's chart, rows, downloads and semantic query, then the assumptions; after a
    refusal, the sample questions of the topics this person may ask about."""
    if job.state != "COMPLETE" or job.result is None:
        return views.turn(user, job)
    markdown = str(job.result.get("message", ""))
    actions = queries_of(job)
    if not actions:
        return views.turn(user, job, views.refusal(markdown), _samples(state, user, job))
    base = f"/chat/{job.conversation_id}/turns/{job.id}"
    answer, assumed = views.answer_markdown(markdown)
    shown = [views.query(base, i, a, _first_rows(a)) for i, a in enumerate(actions)]
    return views.turn(user, job, answer + "".join(shown) + assumed)


async def chart_of(state: ServerState, job: AIJob, index: int, theme: Theme) -> str | None:
    """The SVG chart of the answer's ``index``-th query in the page's theme: its own request,
    so a page renders without waiting for any drawing (the image arrives beside it)."""
    actions = queries_of(job)
    if job.state != "COMPLETE" or not 0 <= index < len(actions):
        return None
    result = actions[index].get("result") or {}
    if result.get("status") != "success" or not result.get("totalRowCount"):
        return None
    return await state.ai.chart_svg(result, job, theme)


def _first_rows(action: dict[str, Any]) -> views.RowsPage | None:
    """The first page, from the rows the answer kept (no query runs to show it)."""
    result = action.get("result") or {}
    if result.get("status") != "success":
        return None
    table = list(csv.reader(io.StringIO(str(result.get("csvResult") or ""))))
    if not table:
        return None
    labels, rows = table[0], table[1:]
    total = int(result.get("totalRowCount") or len(rows))
    numeric = [all(_looks_numeric(r[i]) for r in rows if i < len(r)) and bool(rows)
               for i in range(len(labels))]  # fmt: skip
    shown = [[_grouped(v) if i < len(numeric) and numeric[i] else v for i, v in enumerate(r)]
             for r in rows[:ROWS]]  # fmt: skip
    return views.RowsPage(labels, shown, numeric, 1, max(1, math.ceil(total / ROWS)), total)


def _grouped(text: str) -> str:
    """A raw number as the rows run again show it (thousands separators, every digit)."""
    try:
        number: int | float = int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        return text
    return str(format_value(number, None))


def _looks_numeric(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return text == ""
    return True


def _samples(state: ServerState, user: ChatUser, job: AIJob) -> list[tuple[str, str, str]]:
    """Sample questions from the topics the AI answers from, as this person sees them."""
    try:
        model = state.ai.model(job.model_id, user.principal.viewer(job.model_id))
    except AssayError:
        return []
    found = []
    for topic in model.topics.values():
        if topic.hidden:
            continue
        for sample in topic.sample_queries:
            prompt = sample.prompt or sample.label
            if prompt:
                found.append((job.model_id, topic.name, prompt))
    return found[:8]


async def rerun(state: ServerState, user: ChatUser, job: AIJob, index: int) -> Job:
    """Run the answer's ``index``-th query again as ``user``; the finished query job (the
    result cache answers when nothing changed)."""
    actions = queries_of(job)
    if job.state != "COMPLETE" or not 0 <= index < len(actions):
        raise ApiError(404, "Query not found")
    query = (actions[index].get("result") or {}).get("query") or {}
    model_id = query.get("modelId") or job.model_id
    if model_id not in state.runner.targets:
        raise ApiError(404, f"Model {model_id} not found")
    principal = user.principal
    ask = JobRequest({**query, "modelId": model_id}, model_id, key_id=user.key.id,
                     user_id=principal.user.id, viewer=principal.viewer(model_id))  # fmt: skip
    quotas: KeyQuotas = state.quotas
    quotas.admit_job(user.key.id, lambda ids: unfinished(state, ids))
    submitted = await state.runner.submit_from_loop(ask)
    if not submitted.done:
        quotas.track_job(user.key.id, submitted.id)
    waited = await state.runner.wait([submitted.id], RERUN_SECONDS, known=[submitted])
    finished = waited[submitted.id]
    if not finished.done:
        state.runner.cancel([finished.id])
        raise ApiError(504, f"The query did not finish within {RERUN_SECONDS:g} s")
    if finished.status != "COMPLETE":
        raise ApiError(422, f"The query failed: {finished.error_message or finished.status}")
    return finished


def rows_of(state: ServerState, finished: Job, page: int) -> views.RowsPage:
    path = state.runner.result_path(finished)
    if path is None or not path.exists():
        raise ApiError(410, "Result is no longer available")
    table = read_table(path)
    fields = (finished.summary or {}).get("fields", {})
    labels = [(fields.get(n) or {}).get("label", n) for n in table.column_names]
    table = grains_as_text(table, date_types_of(table.column_names, fields))
    pages = max(1, math.ceil(table.num_rows / ROWS))
    page = min(max(1, page), pages)
    numeric = [_is_number(t) for t in table.schema.types]
    chunk = table.slice((page - 1) * ROWS, ROWS)
    columns = [chunk.column(i).to_pylist() for i in range(chunk.num_columns)]
    rows = [[_text(columns[c][r], numeric[c]) for c in range(len(columns))]
            for r in range(chunk.num_rows)]  # fmt: skip
    return views.RowsPage(labels, rows, numeric, page, pages, table.num_rows)


def download(state: ServerState, finished: Job, kind: str, name: str) -> Response:
    path = state.runner.result_path(finished)
    if path is None or not path.exists():
        raise ApiError(410, "Result is no longer available")
    response = result_document(kind, finished, path)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{kind}"'
    return response


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind)
                or pa.types.is_decimal(kind))  # fmt: skip


def _text(value: Any, numeric: bool) -> str:
    if value is None:
        return ""
    return str(format_value(value, None) if numeric else value)
