"""A server whose settings plug in an OpenAI-compatible LLM: the planner it builds talks to a
scripted chat endpoint on loopback (the only stand-in allowed: no LLM runs here), repairs an
invalid query with the semantic layer's error, and the answer comes from the real rows."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ai.test_llm import BAD, GOOD, Scripted, openai_call
from tests.server.conftest import Server, make_home
from tests.server.test_ai_jobs import TERMINAL, submit, wait_state


@pytest.fixture
def scripted_llm() -> Iterator[Scripted]:
    llm = Scripted()
    yield llm
    llm.close()


@pytest.fixture
def llm_server(tmp_path: Path, tpch_path: Path, scripted_llm: Scripted) -> Iterator[Server]:
    env = {"ASSAY_AI_PLANNER": "openai", "ASSAY_AI_BASE_URL": scripted_llm.url + "/v1",
           "ASSAY_AI_MODEL": "scripted-model", "ASSAY_AI_API_KEY": "sk-scripted"}  # fmt: skip
    srv = Server(make_home(tmp_path), tpch_path, env=env).start()
    yield srv
    srv.stop(signal.SIGKILL)


def test_an_llm_planned_job_is_repaired_validated_and_answered(
    llm_server: Server, scripted_llm: Scripted
) -> None:
    scripted_llm.script = [(200, openai_call(BAD)), (200, openai_call(GOOD, call_id="call_2"))]
    headers = {"Authorization": f"Bearer {llm_server.key('--org')}"}
    with httpx.Client(base_url=llm_server.url, headers=headers, timeout=60) as api:
        created = submit(api, "revenue by region in 1995")
        assert wait_state(api, created["jobId"], TERMINAL)["state"] == "COMPLETE"
        result = api.get(f"/api/v1/ai/jobs/{created['jobId']}/result").json()
    assert len(scripted_llm.requests) == 2  # one invalid answer, one repair
    first = scripted_llm.requests[0]
    assert first["headers"]["Authorization"] == "Bearer sk-scripted"
    assert first["body"]["model"] == "scripted-model"
    repair = str(scripted_llm.requests[1]["body"]["messages"])
    assert "lineitem.revenu" in repair  # the semantic layer's error went back to the LLM
    (action,) = [a for a in result["actions"] if a["type"] == "generate_query"]
    assert action["result"]["status"] == "success"
    assert action["result"]["query"]["fields"] == ["region.r_name", "lineitem.revenue"]
    assert action["result"]["totalRowCount"] == 5
    assert "ASIA" in result["message"]


def test_a_broken_llm_endpoint_falls_back_to_the_builtin_planner(
    llm_server: Server, scripted_llm: Scripted
) -> None:
    scripted_llm.script = [(500, {"error": "overloaded"})] * 5
    headers = {"Authorization": f"Bearer {llm_server.key('--org')}"}
    with httpx.Client(base_url=llm_server.url, headers=headers, timeout=60) as api:
        created = submit(api, "What is total revenue by region?")
        assert wait_state(api, created["jobId"], TERMINAL)["state"] == "COMPLETE"
        result = api.get(f"/api/v1/ai/jobs/{created['jobId']}/result").json()
    (action,) = [a for a in result["actions"] if a["type"] == "generate_query"]
    assert action["result"]["query"]["fields"] == ["region.r_name", "lineitem.revenue"]
    assert "AFRICA" in result["message"]


def test_an_unknown_planner_setting_stops_the_server_with_a_clear_message(
    tmp_path: Path, tpch_path: Path
) -> None:
    srv = Server(make_home(tmp_path), tpch_path, env={"ASSAY_AI_PLANNER": "gpt"})
    with pytest.raises(RuntimeError, match='Unknown planner "gpt"'):
        srv.start()
