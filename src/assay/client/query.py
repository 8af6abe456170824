"""Run a semantic query through ``/api/v1/query/run`` and ``/query/wait``, as Omni's own
clients do: read the NDJSON stream, follow ``remaining_job_ids`` until nothing remains."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc

from assay.client.base import ApiClient, QueryFailed


@dataclass(frozen=True)
class QueryResult:
    table: pa.Table
    summary: dict[str, Any]
    job_id: str


class QueryClient(ApiClient):
    def run(self, query: dict[str, Any], **options: Any) -> QueryResult:
        response = self._http.post("/api/v1/query/run", json={"query": query, **options})
        lines = self._lines(response)
        found = {line["job_id"]: line for line in lines if "job_id" in line}
        remaining = lines[-1].get("remaining_job_ids", []) if lines else []
        while remaining:
            response = self._http.get(
                "/api/v1/query/wait", params={"job_ids": json.dumps(remaining)}
            )
            lines = self._lines(response)
            found.update({line["job_id"]: line for line in lines if "job_id" in line})
            remaining = lines[-1].get("remaining_job_ids", []) if lines else []
        if not found:
            raise QueryFailed("The server returned no job")
        line = next(iter(found.values()))
        if line.get("status") != "COMPLETE":
            kind, message = line.get("error_type", "FAILED"), line.get("error_message", "")
            raise QueryFailed(f"{kind}: {message or 'the query failed'}")
        table = pa.ipc.open_stream(io.BytesIO(base64.b64decode(line["result"]))).read_all()
        return QueryResult(table, line.get("summary", {}), line["job_id"])

    @staticmethod
    def _lines(response: httpx.Response) -> list[dict[str, Any]]:
        if response.status_code != 200:
            raise ApiClient.refused(response)
        return [json.loads(text) for text in response.text.splitlines() if text.strip()]
