"""Reading query requests: everything wrong with a request's shape is a 400 before any job
exists, worded as Omni's (zod-style) validation messages are."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import Request

from assay.jobs.work import REFRESH, USE_CACHE
from assay.server.errors import ApiError
from assay.server.lines import RESULT_TYPES

# Bounds on one request (the body's size is bounded before it is read: server.limits).
MAX_PROMPT_CHARS = 4000  # as Omni's AI endpoints document
MAX_JSON_DEPTH = 64
MAX_JSON_ITEMS = 100_000
MAX_FIELDS = 500
MAX_FILTERS = 500
MAX_SORTS = 100
MAX_JOB_IDS = 200
# Omni's cache values (docs) and the OpenAPI spec's (accepted as aliases).
CACHE_MODES = {
    "Standard": USE_CACHE, "SkipRequery": USE_CACHE, "normal": USE_CACHE,
    "SkipCache": REFRESH, "SkipCacheAndRebuildExtracts": REFRESH, "disabled": REFRESH,
    "refresh": REFRESH, "refresh_all": REFRESH,
}  # fmt: skip
_JSON_TYPES: dict[type, str] = {
    bool: "boolean", int: "number", float: "number", str: "string", dict: "object",
    list: "array", type(None): "null",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RunBody:
    query: dict[str, Any]
    model_id: str
    cache: str
    plan_only: bool
    result_type: str | None
    format_results: bool
    user_id: str | None
    branch_id: str | None


def received(value: Any, *, present: bool = True) -> str:
    """A value's JSON type as zod names it ("received number"); "undefined" when absent."""
    return _JSON_TYPES.get(type(value), "unknown") if present else "undefined"


def canonical_uuid(value: Any) -> str | None:
    """The canonical form of a UUID in any spelling uuid accepts; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "Invalid input: expected object, received undefined")
    try:
        body = json.loads(raw)
    except ValueError as exc:  # not JSON, not UTF-8, or a number of over 4,300 digits
        reason = "" if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError) else f" ({exc})"
        raise ApiError(400, f"Unable to parse the request body as JSON{reason}") from None
    except RecursionError:  # the C parser stops at the interpreter's recursion limit
        raise _too_deep() from None
    if not isinstance(body, dict):
        raise ApiError(400, f"Invalid input: expected object, received {received(body)}")
    check_shape(body)
    return body


def check_shape(value: Any) -> None:
    """Refuse a JSON value nested deeper than ``MAX_JSON_DEPTH`` or holding more than
    ``MAX_JSON_ITEMS`` values: walked with a stack, never recursively, so no value can make
    this (or anything after it) recurse without bound."""
    stack = [(value, 1)]
    items = 0
    while stack:
        node, depth = stack.pop()
        items += 1
        if items > MAX_JSON_ITEMS:
            raise ApiError(400, f"The request body holds more than {MAX_JSON_ITEMS:,} values")
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        )
        if children and depth >= MAX_JSON_DEPTH:
            raise _too_deep()
        stack.extend((child, depth + 1) for child in children)


def _too_deep() -> ApiError:
    return ApiError(400, f"The request body is nested more than {MAX_JSON_DEPTH} levels deep")


def _at_most(name: str, value: Any, limit: int) -> None:
    if isinstance(value, list | dict) and len(value) > limit:
        raise ApiError(400, f"{name}: Too big: expected at most {limit} items, received "
                       f"{len(value)}")  # fmt: skip


def prompt_of(body: dict[str, Any]) -> str:
    """An AI request's question: present, and no longer than ``MAX_PROMPT_CHARS``."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ApiError(400, "Bad Request: prompt: Required")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ApiError(400, f"Bad Request: prompt: Too big: expected string to have "
                       f"<={MAX_PROMPT_CHARS} characters (it has {len(prompt)})")  # fmt: skip
    return prompt.strip()


def _expect(name: str, expected: str, value: Any, *, present: bool = True) -> ApiError:
    return ApiError(
        400,
        f"{name}: Invalid input: expected {expected}, received {received(value, present=present)}",
    )


TIMEZONE_REFUSAL = (
    "The timezone parameter requires user-specific timezones to be enabled on the connection."
)


def parse_run_body(body: dict[str, Any], query_user: str | None) -> RunBody:
    query = body.get("query")
    if not isinstance(query, dict):
        raise _expect("query", "object", query, present="query" in body)
    query = dict(query)
    if "branchId" in query:
        raise ApiError(400, "query.branchId: branchId belongs at the top level of the body")
    present = "modelId" in query or "modelId" in body
    model_id = query.get("modelId", body.get("modelId"))
    if not isinstance(model_id, str):
        raise _expect("query.modelId", "string", model_id, present=present)
    canonical = canonical_uuid(model_id)
    if canonical is None:
        raise ApiError(400, "query.modelId: Invalid uuid")
    query["modelId"] = canonical
    fields = query.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise _expect("query.fields", "array of strings", fields, present="fields" in query)
    _at_most("query.fields", fields, MAX_FIELDS)
    _at_most("query.filters", query.get("filters"), MAX_FILTERS)
    _at_most("query.sorts", query.get("sorts"), MAX_SORTS)
    limit = query.get("limit", 1)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        shown = limit if type(limit) is int else received(limit)
        raise ApiError(400, f"query.limit: expected a positive integer or null, received {shown}")
    cache = body.get("cache", "SkipRequery")
    if cache not in CACHE_MODES:
        options = "|".join(f'"{c}"' for c in CACHE_MODES)
        raise ApiError(400, f"cache: Invalid option: expected one of {options}")
    result_type = body.get("resultType")
    if result_type is not None and result_type not in RESULT_TYPES:
        raise ApiError(400, 'resultType: Invalid option: expected one of "csv"|"json"|"xlsx"')
    if query.get("pivots") and "limit" in query and limit is None and not result_type:
        raise ApiError(400, "Unlimited limit (null) cannot be used with pivoted queries")
    flags = {name: body.get(name, False) for name in ("planOnly", "formatResults", "workbookUrl")}
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise _expect(name, "boolean", value)
    if flags["planOnly"] and result_type:
        raise ApiError(400, "planOnly cannot be combined with resultType")
    if flags["planOnly"] and flags["workbookUrl"]:
        raise ApiError(400, "planOnly cannot be combined with workbookUrl")
    if flags["formatResults"] and not result_type:
        raise ApiError(400, "formatResults is only valid with resultType")
    if body.get("timezone") is not None:  # Omni's answer while the connection does not allow
        # user-specific time zones; Assay's model sets one query zone for everyone
        raise ApiError(400, TIMEZONE_REFUSAL)
    if "userId" in body and query_user is not None:
        raise ApiError(400, "userId may be given in the query string or in the body, not both")
    user_id = query_user if query_user is not None else body.get("userId")
    if user_id is not None and not isinstance(user_id, str):
        raise _expect("userId", "string", user_id)
    branch = body.get("branchId")
    return RunBody(
        query=query,
        model_id=canonical,
        cache=CACHE_MODES[cache],
        plan_only=flags["planOnly"],
        result_type=result_type,
        format_results=flags["formatResults"],
        user_id=user_id,
        branch_id=None if branch is None else str(branch),
    )


def parse_job_ids(request: Request) -> list[str]:
    """``job_ids`` as a JSON array (``+`` reads as a space) or comma-separated, or ``jobIds``."""
    raw = request.query_params.get("job_ids")
    if raw is None:
        raw = request.query_params.get("jobIds")
    if raw is None or not raw.strip():
        raise ApiError(400, "job_ids parameter is required")
    text = raw.strip()
    if text.startswith("["):
        try:
            ids = json.loads(text)
        except (ValueError, RecursionError):
            raise ApiError(400, "job_ids must be a valid JSON array of UUIDs") from None
        if not isinstance(ids, list):
            raise ApiError(400, "job_ids must be a valid JSON array of UUIDs")
    else:
        ids = [part.strip() for part in text.split(",") if part.strip()]
    _at_most("job_ids", ids, MAX_JOB_IDS)
    canonical = [canonical_uuid(i) for i in ids]
    if not canonical or None in canonical:
        raise ApiError(400, "job_ids must be a valid JSON array of UUIDs")
    return list(dict.fromkeys(c for c in canonical if c))


def parse_cancel_ids(body: dict[str, Any]) -> list[str]:
    raw = body.get("job_ids", body.get("jobIds"))
    if isinstance(raw, str):
        raw = [p.strip() for p in raw.split(",") if p.strip()]
    _at_most("job_ids", raw, MAX_JOB_IDS)
    canonical = [canonical_uuid(i) for i in raw] if isinstance(raw, list) else []
    if not canonical or None in canonical:
        raise ApiError(400, "job_ids must be a non-empty JSON array of UUIDs")
    return list(dict.fromkeys(c for c in canonical if c))
