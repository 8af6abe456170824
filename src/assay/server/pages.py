"""Omni's cursor pages (contract section 1.5): ``pageSize`` 1..100, an opaque ``cursor`` and a
``pageInfo``, with the errors Omni sends for bad ones, shared by every list so they all fail
alike. A cursor is base64 of a small JSON object; each list decides what it holds (an offset
for models, the last conversation's position for conversations) and checks it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from assay.server.errors import ApiError


def page_size(params: Mapping[str, str], default: int = 20) -> int:
    try:
        size = int(params.get("pageSize") or default)
    except ValueError:
        raise ApiError(400, "pageSize: expected a number from 1 to 100") from None
    if not 1 <= size <= 100:
        raise ApiError(400, "pageSize: expected a number from 1 to 100")
    return size


def invalid_cursor() -> ApiError:
    """Omni's answer to a cursor it cannot read: ``{"error": "Invalid cursor", "success":
    false}`` (with Assay's usual error fields)."""
    return ApiError(400, "Invalid cursor", extra={"error": "Invalid cursor", "success": False})


def read_cursor(cursor: str | None) -> dict[str, Any] | None:
    """The position a cursor holds; None without one; ``invalid_cursor`` for anything that is
    not one this server made (the caller checks the fields it expects)."""
    if not cursor:
        return None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, RecursionError):  # not base64, not UTF-8, not JSON
        raise invalid_cursor() from None
    if not isinstance(position, dict):
        raise invalid_cursor()
    return position


def make_cursor(position: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(dict(position)).encode()).decode()


def page_info(*, next_cursor: str | None, size: int, total: int) -> dict[str, Any]:
    return {"hasNextPage": next_cursor is not None, "nextCursor": next_cursor,
            "pageSize": size, "totalRecords": total}  # fmt: skip
