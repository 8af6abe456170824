"""Job lines and the responses built from them, as Omni's clients read them.

NDJSON bodies are streamed: a job line's ``result`` (base64 of an Arrow IPC stream) is written
from the result file chunk by chunk, so a large result never sits in memory as one string.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from assay.jobs.model import Job
from assay.results.arrow import base64_chunks, base64_size
from assay.server.transfer import PartsResponse

NDJSON = "text/ndjson"
# Results up to this size are sent as one body: streaming costs a thread hop and a socket
# write per chunk, which dominates small answers (the cached-run benchmark).
STREAM_ABOVE_BYTES = 256 * 1024
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


#: A piece of an answer: text, or a result file and its size (sent as base64)
Piece = bytes | tuple[Path, int]


def _pieces(
    header: Mapping[str, Any] | None,
    done: Iterable[tuple[Job, Path | None]],
    extra_lines: Iterable[dict[str, Any]],
    remaining: Sequence[str],
) -> list[Piece]:
    """The NDJSON answer in order. A job whose result file is gone gets its line alone."""
    pieces: list[Piece] = []
    if header is not None:
        pieces.append((_dumps(header) + "\n").encode())
    for job, path in done:
        size = _size(path)
        if path is None or size is None:
            pieces.append((_dumps(job_line(job)) + "\n").encode())
            continue
        head = _dumps(job_line(job))
        pieces += [(head[:-1] + ',"result":"').encode(), (path, size), b'"}\n']
    pieces += [(_dumps(line) + "\n").encode() for line in extra_lines]
    pieces.append((_dumps(footer(remaining, as_string=True)) + "\n").encode())
    return pieces


def ndjson_response(
    header: Mapping[str, Any] | None,
    done: Iterable[tuple[Job, Path | None]],
    extra_lines: Iterable[dict[str, Any]],
    remaining: Sequence[str],
) -> Response:
    return _answer(_pieces(header, done, extra_lines, remaining), NDJSON)


def _answer(pieces: list[Piece], media_type: str) -> Response:
    """An answer whose length is known before it is made (a Content-Length, so no chunked
    framing): results are encoded from their files as they are sent, in a worker thread
    when they are large."""
    length = sum(len(p) if isinstance(p, bytes) else base64_size(p[1]) for p in pieces)
    results = sum(p[1] for p in pieces if not isinstance(p, bytes))

    def body() -> Generator[bytes, None, None]:
        for piece in pieces:
            if isinstance(piece, bytes):
                yield piece
            else:
                yield from base64_chunks(*piece)

    return PartsResponse(body, length, media_type=media_type, stream=results > STREAM_ABOVE_BYTES)


def _size(path: Path | None) -> int | None:
    """A result file's size; None when there is none (one stat, not an exists() and a stat)."""
    if path is None:
        return None
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def json_document(
    header: Mapping[str, Any] | None,
    done: Sequence[tuple[Job, Path | None]],
    extra_lines: Sequence[dict[str, Any]],
    remaining: Sequence[str],
) -> Response:
    """One document, as Omni's docs show it: the (first) finished job's fields at the top
    level, ``remaining_job_ids``, boolean ``timed_out``, and ``jobs`` when several finished.

    Each ``result`` is first a mark (a random one: no text a user sent can match it) that the
    document's JSON text is cut at, so results are spliced in from their files as they are
    sent, as in NDJSON answers, never held in memory as one string."""
    files: dict[str, tuple[Path, int]] = {}
    lines = []
    for job, path in done:
        line = job_line(job)
        size = _size(path)
        if path is not None and size is not None:
            mark = f"result-{uuid.uuid4().hex}"
            files[mark] = (path, size)
            line["result"] = mark
        lines.append(line)
    lines.extend(extra_lines)
    doc: dict[str, Any] = dict(header or {})
    if lines:
        doc.update(lines[0])
    if len(lines) > 1:
        doc["jobs"] = lines
    doc.update(footer(remaining, as_string=False))
    text = _dumps(doc)
    if not files:
        return _answer([text.encode()], "application/json")
    cuts = re.split(f"({'|'.join(files)})", text)  # text, mark, text, mark ..., text
    pieces: list[Piece] = [files[cut] if i % 2 else cut.encode() for i, cut in enumerate(cuts)]
    return _answer(pieces, "application/json")
