"""The one error body of the API: Omni's ``{"detail", "status"}`` plus ``error`` and
``message`` (Omni's documented error fields) and Assay's stable ``code``."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from assay.errors import AssayError


class ApiError(AssayError):
    """An error answered as HTTP with a given status (request shape, auth, limits)."""

    code = "bad_request"
    status = 400

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status  # type: ignore[misc]
        self.code = code or _default_code(status)  # type: ignore[misc]
        self.headers = headers or {}
        self.extra = extra or {}


def _default_code(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")


def error_body(
    status: int, message: str, code: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return {
        "detail": message,
        "status": status,
        "error": phrase,
        "message": message,
        "code": code,
        **(extra or {}),
    }


def error_response(exc: AssayError) -> JSONResponse:
    headers = getattr(exc, "headers", None) or {}
    extra = getattr(exc, "extra", None)
    return JSONResponse(
        error_body(exc.status, exc.message, exc.code, extra), exc.status, headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(AssayError)
    async def _assay(_: Request, exc: AssayError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return JSONResponse(error_body(400, "; ".join(parts) or "Bad request", "bad_request"), 400)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return JSONResponse(
            error_body(exc.status_code, message, _default_code(exc.status_code)),
            exc.status_code,
            headers=getattr(exc, "headers", None),
        )
