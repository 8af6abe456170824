"""`assay ask` and the AI client against a real server."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from assay.cli.app import app
from assay.cli.main import main  # noqa: F401 (registers the commands)
from assay.client import AIClient, QueryFailed
from tests.server.conftest import MODEL_ID, Server


def test_client_asks_and_reports_progress(server: Server, org_key: str) -> None:
    with AIClient(server.url, org_key) as client:
        status, result = client.ask("How many orders were placed in 1995?", MODEL_ID)
    assert status["state"] == "COMPLETE"
    query = next(a for a in result["actions"] if a["type"] == "generate_query")["result"]
    assert query["status"] == "success" and query["query"]["fields"] == ["orders.count"]


def test_client_names_a_refused_request(server: Server, org_key: str) -> None:
    with AIClient(server.url, org_key) as client, pytest.raises(QueryFailed, match="HTTP 404"):
        client.ask("revenue", "00000000-0000-0000-0000-000000000007")


def test_assay_ask_prints_the_answer_and_follows_up(server: Server, org_key: str) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["ask", "revenue by region", "--url", server.url, "--key", org_key])
    assert first.exit_code == 0, first.output
    assert "ASIA" in first.stdout and "EUROPE" in first.stdout
    conversation = re.search(r"conversation: ([0-9a-f-]{36})", first.stderr)
    assert conversation is not None
    follow = runner.invoke(app, ["ask", "only for ASIA", "--conversation", conversation[1],
                                 "--url", server.url, "--key", org_key, "--queries"])  # fmt: skip
    assert follow.exit_code == 0, follow.output
    assert '"ASIA"' in follow.stdout or "ASIA" in follow.stdout
    assert "EUROPE" not in follow.stdout


def test_assay_ask_needs_a_key(server: Server) -> None:
    result = CliRunner().invoke(app, ["ask", "revenue", "--url", server.url],
                                env={"ASSAY_API_KEY": ""})  # fmt: skip
    assert result.exit_code == 2 and "give --key or set ASSAY_API_KEY" in result.output
