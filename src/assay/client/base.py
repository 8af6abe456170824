"""What Assay's clients share: one authenticated httpx client, and refusals turned into an
exception whose message names the status and the server's own detail."""

from __future__ import annotations

from typing import Self

import httpx


class QueryFailed(Exception):
    """The server refused the request or the job failed; the message says why."""


class ApiClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 120.0,
                 transport: httpx.BaseTransport | None = None) -> None:  # fmt: skip
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @staticmethod
    def refused(response: httpx.Response) -> QueryFailed:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        return QueryFailed(f"HTTP {response.status_code}: {detail}")
