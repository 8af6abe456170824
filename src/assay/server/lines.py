"""Job lines and the responses built from them, as Omni's clients read them.

NDJSON bodies are streamed: a job line's ``result`` (base64 of an Arrow IPC stream) is written
from the result file chunk by chunk, so a large result never sits in memory as one string.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from assay.jobs.model import Job
from assay.results.arrow import base64_chunks, read_table, to_csv, to_json, to_xlsx
from assay.results.formats import format_value

NDJSON = "text/ndjson"
# Results up to this size are sent as one body: streaming costs a thread hop and a socket
# write per chunk, which dominates small answers (the cached-run benchmark).
STREAM_ABOVE_BYTES = 256 * 1024
# A streamed body goes out in parts of about this size (a part holds whole chunks)
SEND_BYTES = 1024 * 1024
RESULT_TYPES = {"csv": "text/csv", "json": "application/json", "xlsx": "application/vnd.ms-excel"}


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)


def _dumps(value: Any) -> str:
    return _ENCODER.encode(value)


def wants_single_json(request: Request) -> bool:
    """A client that accepts only ``application/json`` gets one document instead of NDJSON."""
    accept = request.headers.get("accept", "")
    types = {part.split(";")[0].strip().lower() for part in accept.split(",") if part.strip()}
    streamable = {"text/ndjson", "application/x-ndjson", "application/ndjson", "*/*", "text/*"}
    return "application/json" in types and not (types & streamable)


def job_line(job: Job) -> dict[str, Any]:
    """A job as Omni's stream shows it, without ``result`` (streamed separately)."""
    line: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "client_result_id": job.client_result_id,
    }
    if job.status == "FAILED":
        line["error_type"] = job.error_type
        line["error_message"] = job.error_message
        if job.error_type == "KILL":
            line["kill_reason"] = job.error_message
    if job.summary is not None:
        line["summary"] = job.summary
    if job.cache_metadata is not None:
        line["cache_metadata"] = job.cache_metadata
    line["query"] = job.request.get("query", {})
    if job.status == "COMPLETE":
        line["stream_stats"] = {"server_stream": 1}
    return line


# Omni's words for a failed job's error, to a caller whose role may not view SQL.
SQL_WITHHELD = "Query failed. Error details are only visible to users with permission to view SQL."


def withhold_sql(job: Job) -> Job:
    """The job with its SQL blanked, as Omni shows it to a role without VIEW_SQL: the
    summary's SQL, and a database error (which may quote the SQL). A planning error (a field
    that does not exist, an access rule) is about the semantic query and stays."""
    changes: dict[str, Any] = {}
    if job.summary is not None and ("sql" in job.summary or "display_sql" in job.summary):
        summary = dict(job.summary)
        for key in ("sql", "display_sql"):
            if key in summary:
                summary[key] = ""
        changes["summary"] = summary
    if job.status == "FAILED" and job.error_type in ("QUERY", "INTERNAL", "OFFLINE"):
        changes["error_message"] = SQL_WITHHELD
    return replace(job, **changes) if changes else job


def missing_line(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "status": "FAILED", "error_type": "UNKNOWN",
            "error_message": "Unable to find job"}  # fmt: skip


def footer(remaining: Sequence[str], *, as_string: bool) -> dict[str, Any]:
    """``timed_out`` is the string "true"/"false" in NDJSON (the official SDK compares strings)
    and a boolean in single JSON documents."""
    timed_out = bool(remaining)
    return {
        "remaining_job_ids": list(remaining),
        "timed_out": ("true" if timed_out else "false") if as_string else timed_out,
    }


def _encoded_line(job: Job, result: Path | None) -> Iterator[bytes]:
    """The job's line; with its result when ``result`` is given (a file that exists)."""
    line = job_line(job)
    if result is None:
        yield (_dumps(line) + "\n").encode()
        return
    head = _dumps(line)
    yield (head[:-1] + ',"result":"').encode()
    yield from base64_chunks(result)
    yield b'"}\n'


def ndjson_response(
    header: Mapping[str, Any] | None,
    done: Iterable[tuple[Job, Path | None]],
    extra_lines: Iterable[dict[str, Any]],
    remaining: Sequence[str],
) -> Response:
    sized = [(job, path, _size(path)) for job, path in done]
    extra = list(extra_lines)
    size = sum(n or 0 for _, _, n in sized)

    def body() -> Generator[bytes, None, None]:  # read in a worker thread (``released``)
        if header is not None:
            yield (_dumps(header) + "\n").encode()
        for job, path, n in sized:
            yield from _encoded_line(job, path if n is not None else None)
        for line in extra:
            yield (_dumps(line) + "\n").encode()
        yield (_dumps(footer(remaining, as_string=True)) + "\n").encode()

    if size <= STREAM_ABOVE_BYTES:
        return Response(b"".join(body()), media_type=NDJSON)
    return StreamingResponse(released(body()), media_type=NDJSON)


def _size(path: Path | None) -> int | None:
    """A result file's size; None when there is none (one stat, not an exists() and a stat)."""
    if path is None:
        return None
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


async def released(chunks: Generator[bytes, None, None]) -> AsyncGenerator[bytes, None]:
    """``chunks``, read in a worker thread one at a time, and closed the moment the response
    stops, finished or not: a client that leaves mid-result releases the result file and its
    buffers at once, not whenever the garbage collector gets to a dropped generator."""
    try:
        while True:
            # Not abandoned on cancel: when the client leaves, the part being read finishes
            # first, so the generator is idle when it is closed below.
            part = await anyio.to_thread.run_sync(_take, chunks, SEND_BYTES)
            if not part:
                return
            yield part
    finally:
        chunks.close()


def _take(chunks: Iterator[bytes], size: int) -> bytes:
    """The next ``size`` bytes or so of ``chunks`` (all that is left, at the end): one thread
    hop and one socket write per part, not per line or per file chunk."""
    parts: list[bytes] = []
    taken = 0
    for chunk in chunks:
        parts.append(chunk)
        taken += len(chunk)
        if taken >= size:
            break
    return b"".join(parts)


def json_document(
    header: Mapping[str, Any] | None,
    done: Sequence[tuple[Job, Path | None]],
    extra_lines: Sequence[dict[str, Any]],
    remaining: Sequence[str],
) -> JSONResponse:
    """One document, as Omni's docs show it: the (first) finished job's fields at the top
    level, ``remaining_job_ids``, boolean ``timed_out``, and ``jobs`` when several finished."""
    lines = []
    for job, path in done:
        line = job_line(job)
        if path is not None and path.exists():
            line["result"] = b"".join(base64_chunks(path)).decode()
        lines.append(line)
    lines.extend(extra_lines)
    doc: dict[str, Any] = dict(header or {})
    if lines:
        doc.update(lines[0])
    if len(lines) > 1:
        doc["jobs"] = lines
    doc.update(footer(remaining, as_string=False))
    return JSONResponse(doc)


def _formatted(table: pa.Table, fields: Mapping[str, Any]) -> pa.Table:
    """Every value as text in its field's format (``formatResults``)."""
    columns = []
    for name in table.column_names:
        fmt = fields.get(name, {}).get("format")
        values = [format_value(v, fmt) for v in table.column(name).to_pylist()]
        columns.append(pa.array([None if v is None else str(v) for v in values], pa.string()))
    return pa.table(columns, names=table.column_names)


def result_document(kind: str, job: Job, path: Path, *, formatted: bool = False) -> Response:
    """``resultType`` csv/json/xlsx: the rows alone, as one document."""
    table = read_table(path)
    fields = (job.summary or {}).get("fields", {})
    labels = [fields.get(name, {}).get("label", name) for name in table.column_names]
    if formatted:
        table = _formatted(table, fields)
    if kind == "csv":
        body = to_csv(table)
    elif kind == "json":
        body = to_json(table, labels)  # rows keyed by display label, as Omni does
    else:
        body = to_xlsx(table, labels)
    return Response(body, media_type=RESULT_TYPES[kind])
