"""Assay's own client and `assay query` against a real server."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.ipc
import pytest
from typer.testing import CliRunner

from assay.cli.app import app
from assay.cli.main import main  # noqa: F401 (registers the commands)
from assay.client import QueryClient, QueryFailed
from tests.server.conftest import MODEL_ID, Server

QUERY = {"modelId": MODEL_ID, "join_paths_from_topic_name": "customer",
         "fields": ["customer.c_mktsegment", "customer.count"],
         "sorts": [{"column_name": "customer.c_mktsegment"}]}  # fmt: skip


def test_client_runs_a_query(server: Server, org_key: str) -> None:
    with QueryClient(server.url, org_key) as client:
        result = client.run(QUERY)
    assert result.table.column_names == ["customer.c_mktsegment", "customer.count"]
    assert result.table.num_rows == 5
    assert result.summary["fields"]["customer.count"]["is_dimension"] is False


def test_client_reports_a_failed_job(server: Server, org_key: str) -> None:
    with QueryClient(server.url, org_key) as client, pytest.raises(QueryFailed, match="PLAN"):
        client.run({**QUERY, "fields": ["customer.cuont"]})


def test_client_reports_a_refused_request(server: Server) -> None:
    with (
        QueryClient(server.url, "not-a-key") as client,
        pytest.raises(QueryFailed, match="HTTP 401"),
    ):
        client.run(QUERY)


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "arrow"])
def test_assay_query_against_the_server(server: Server, org_key: str, fmt: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["query", json.dumps(QUERY), "--url", server.url, "--key", org_key, "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    if fmt == "arrow":
        table = pa.ipc.open_stream(io.BytesIO(result.stdout_bytes)).read_all()
        assert table.num_rows == 5
    elif fmt == "json":
        rows = json.loads(result.stdout)
        assert len(rows) == 5 and "Market Segment" in rows[0]
    else:
        assert "AUTOMOBILE" in result.stdout


def test_assay_query_needs_a_key(server: Server) -> None:
    result = CliRunner().invoke(
        app, ["query", json.dumps(QUERY), "--url", server.url], env={"ASSAY_API_KEY": ""}
    )
    assert result.exit_code == 2
    assert "give --key or set ASSAY_API_KEY" in result.output
