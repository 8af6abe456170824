"""LLM planners against scripted LLM HTTP servers on loopback (the only stand-in allowed).

Each server is a real ``ThreadingHTTPServer`` on 127.0.0.1 that replays scripted responses
and records every request, so the planners speak real HTTP and JSON end to end.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from assay.ai import planner as builtin
from assay.ai.llm import (
    QUERY_TOOL,
    AnthropicPlanner,
    BuiltinPlanner,
    OpenAICompatiblePlanner,
    model_catalog,
    planner_from_settings,
)
from assay.ai.plan_check import unaccounted
from assay.ai.planner import Plan, PlanStep
from assay.errors import ConfigError
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel

GOOD_DATE = {"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "1995"}
GOOD = {
    "topic": "lineitem",
    "fields": ["region.r_name", "lineitem.revenue"],
    "filters": {"orders.o_orderdate": GOOD_DATE},
    "sorts": [{"column_name": "lineitem.revenue", "sort_descending": True}],
    "limit": 5,
    "intent": "Revenue by customer region in 1995",
}
BAD = {**GOOD, "fields": ["region.r_name", "lineitem.revenu"]}
SQL = "SELECT r_name, SUM(l_extendedprice) FROM lineitem; DROP TABLE lineitem;"
QUESTION = "revenue by region in 1995"


class Scripted:
    """A loopback HTTP server answering POSTs with scripted (status, JSON body) pairs."""

    def __init__(self) -> None:
        self.script: list[tuple[int, Any]] = []
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(size) or b"{}")
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                status, reply = outer.script.pop(0) if outer.script else (500, {"error": "end"})
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.close()


def openai_call(args: Any, name: str = "semantic_query", call_id: str = "call_1") -> Any:
    arguments = args if isinstance(args, str) else json.dumps(args)
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}


def openai_text(text: str) -> Any:
    message = {"role": "assistant", "content": text}
    return {"id": "x", "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}


def anthropic_call(args: Any, name: str = "semantic_query", call_id: str = "toolu_1") -> Any:
    blocks = [
        {"type": "text", "text": "Let me query that."},
        {"type": "tool_use", "id": call_id, "name": name, "input": args},
    ]
    return {"id": "msg_1", "type": "message", "role": "assistant", "content": blocks}


def openai(server: Scripted | str, **kw: Any) -> OpenAICompatiblePlanner:
    url = server if isinstance(server, str) else server.url + "/v1"
    return OpenAICompatiblePlanner(url, "test-model", "sk-test", timeout=5, **kw)


def assert_fallback(got: Plan, question: str, model: SemanticModel, why: str) -> None:
    expected = builtin.plan(question, model)
    assert [q.query for q in got.queries] == [q.query for q in expected.queries]
    assert got.refusal == expected.refusal
    note = got.queries[0].provenance[0]
    assert "used the built-in planner" in note and why in note


def test_valid_tool_call(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_call(GOOD))]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert got.refusal is None and got.topic == "lineitem"
    (q,) = got.queries
    assert q.intent == GOOD["intent"]
    assert q.query["table"] == "lineitem" and q.query["join_paths_from_topic_name"] == "lineitem"
    assert q.query["modelId"] == tpch_model.id and q.query["limit"] == 5
    assert compile_query(tpch_model, q.query).columns == ["region.r_name", "lineitem.revenue"]
    assert "planned by OpenAI-compatible model test-model" in q.provenance[0]
    (req,) = llm.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    body = req["body"]
    assert body["model"] == "test-model" and body["tool_choice"] == "required"
    assert QUERY_TOOL in body["tools"]
    assert {t["function"]["name"] for t in body["tools"]} == {"semantic_query", "refuse"}
    system, user = body["messages"]
    assert system["role"] == "system" and "lineitem.revenue" in system["content"]
    assert user == {"role": "user", "content": QUESTION}


def test_one_repair_after_an_invalid_field(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_call(BAD)), (200, openai_call(GOOD, call_id="call_2"))]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert len(llm.requests) == 2
    assert got.queries[0].query["fields"] == GOOD["fields"]
    assert "repaired after 1 invalid attempt" in got.queries[0].provenance[1]
    repair = llm.requests[1]["body"]["messages"]
    assistant, tool = repair[-3], repair[-2]
    assert assistant["role"] == "assistant" and assistant["tool_calls"][0]["id"] == "call_1"
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_1"
    assert 'No such field "lineitem.revenu"' in tool["content"]
    assert 'Did you mean "lineitem.revenue"' in tool["content"]


def test_always_invalid_falls_back(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_call(BAD)) for _ in range(5)]
    got = openai(llm, max_repairs=2).plan(QUESTION, tpch_model)
    assert len(llm.requests) == 3  # the first try and two repairs
    assert_fallback(got, QUESTION, tpch_model, "no valid query after 2 repair(s)")
    assert "Did you mean" in got.queries[0].provenance[0]


@pytest.mark.parametrize("status", [500, 401, 429])
def test_http_error_falls_back(llm: Scripted, tpch_model: SemanticModel, status: int) -> None:
    llm.script = [(status, {"error": {"message": "boom"}})]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert len(llm.requests) == 1
    assert_fallback(got, QUESTION, tpch_model, f"HTTP {status}")


def test_server_down_falls_back(tpch_model: SemanticModel) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = openai(f"http://127.0.0.1:{port}/v1").plan(QUESTION, tpch_model)
    assert_fallback(got, QUESTION, tpch_model, "failed")


def test_malformed_response_falls_back(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, {"unexpected": True})]
    assert_fallback(openai(llm).plan(QUESTION, tpch_model), QUESTION, tpch_model, "failed")


def test_sql_text_is_never_run_but_repaired(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_text(SQL)), (200, openai_call(GOOD))]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert got.queries[0].query["fields"] == GOOD["fields"]
    feedback = llm.requests[1]["body"]["messages"][-1]
    assert feedback["role"] == "user" and "never run" in feedback["content"]
    assert "DROP" not in json.dumps(got.queries[0].query)


def test_sql_always_falls_back(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_text(SQL)) for _ in range(3)]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert len(llm.requests) == 3
    assert_fallback(got, QUESTION, tpch_model, "no valid query")
    assert all("DROP" not in json.dumps(q.query) for q in got.queries)


def test_sql_in_arguments_is_invalid(llm: Scripted, tpch_model: SemanticModel) -> None:
    sql_args = {"topic": "lineitem", "fields": [SQL], "intent": "x"}
    llm.script = [
        (200, openai_call(sql_args)),
        (200, openai_call("SELECT 1")),
        (200, openai_call(GOOD)),
    ]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert len(llm.requests) == 3 and got.queries[0].query["fields"] == GOOD["fields"]


def test_json_object_in_content_is_accepted(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_text("```json\n" + json.dumps(GOOD) + "\n```"))]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert got.queries[0].intent == GOOD["intent"]


def test_refuse_tool(llm: Scripted, tpch_model: SemanticModel) -> None:
    reason = "The model has no weather data."
    llm.script = [(200, openai_call({"reason": reason}, name="refuse"))]
    got = openai(llm).plan("what was the weather in Paris?", tpch_model)
    assert got == Plan(refusal=reason)


def test_unknown_topic_is_repaired(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_call({**GOOD, "topic": "lineitems"})), (200, openai_call(GOOD))]
    openai(llm).plan(QUESTION, tpch_model)
    assert 'Did you mean "lineitem"' in llm.requests[1]["body"]["messages"][-2]["content"]


def test_conversation_is_sent(llm: Scripted, tpch_model: SemanticModel) -> None:
    first = builtin.plan("revenue by year", tpch_model)
    llm.script = [(200, openai_call(GOOD))]
    openai(llm).plan("and by region?", tpch_model, [PlanStep("revenue by year", first)])
    messages = llm.requests[0]["body"]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1]["content"] == "revenue by year"
    assert "orders.o_orderdate[year]" in messages[2]["content"]


def test_catalog(tpch_model: SemanticModel) -> None:
    text = model_catalog(tpch_model)
    for key, label in [
        ("lineitem.revenue", "Revenue"),
        ("orders.o_orderpriority", "Order Priority"),
        ("region.r_name", ""),
    ]:
        assert f"- {key}: {label}" in text
    assert '"1-URGENT"' in text and "orders.o_orderdate[grain]" in text
    assert 'Topic "lineitem"' in text and "[measure]" in text
    only = model_catalog(tpch_model, "orders")
    assert 'Topic "orders"' in only and 'Topic "lineitem"' not in only
    assert "part.p_name" not in only and "orders.count" in only


def test_anthropic_happy_path(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, anthropic_call(GOOD))]
    got = AnthropicPlanner(llm.url, "claude-test", "ak-test", timeout=5).plan(QUESTION, tpch_model)
    (q,) = got.queries
    assert q.intent == GOOD["intent"] and compile_query(tpch_model, q.query).sql
    (req,) = llm.requests
    assert req["path"] == "/v1/messages"
    assert req["headers"]["x-api-key"] == "ak-test"
    assert req["headers"]["anthropic-version"] == "2023-06-01"
    body = req["body"]
    assert body["tool_choice"] == {"type": "any"} and "lineitem.revenue" in body["system"]
    tool = next(t for t in body["tools"] if t["name"] == "semantic_query")
    assert tool["input_schema"]["required"] == ["topic", "fields", "intent"]
    assert body["messages"] == [{"role": "user", "content": QUESTION}]


def test_anthropic_repair(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, anthropic_call(BAD)), (200, anthropic_call(GOOD, call_id="toolu_2"))]
    got = AnthropicPlanner(llm.url + "/v1", "claude-test", "ak-test").plan(QUESTION, tpch_model)
    assert got.queries[0].query["fields"] == GOOD["fields"]
    assert len(llm.requests) == 2 and llm.requests[1]["path"] == "/v1/messages"
    messages = llm.requests[1]["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"][1]["id"] == "toolu_1"
    result = messages[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "toolu_1"
    assert result["is_error"] is True and "Did you mean" in result["content"]


def test_anthropic_refuse_and_fallback(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, anthropic_call({"reason": "No."}, name="refuse")), (503, {})]
    planner = AnthropicPlanner(llm.url, "claude-test", None)
    assert planner.plan("weather?", tpch_model).refusal == "No."
    assert_fallback(planner.plan(QUESTION, tpch_model), QUESTION, tpch_model, "HTTP 503")
    assert "x-api-key" not in llm.requests[1]["headers"]


def test_planner_from_settings() -> None:
    assert isinstance(planner_from_settings("builtin"), BuiltinPlanner)
    oa = planner_from_settings("openai", "http://127.0.0.1:1/v1/", "m", "k", max_repairs=4)
    assert isinstance(oa, OpenAICompatiblePlanner)
    assert oa.base_url == "http://127.0.0.1:1/v1" and oa.max_repairs == 4
    an = planner_from_settings("anthropic", None, "claude", "k")
    assert isinstance(an, AnthropicPlanner) and an.base_url == "https://api.anthropic.com"
    with pytest.raises(ConfigError):
        planner_from_settings("openai", "http://127.0.0.1:1", None, None)
    with pytest.raises(ConfigError):
        planner_from_settings("gemini", "http://127.0.0.1:1", "m", None)


def test_json_in_content_is_repaired_as_text(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [(200, openai_text(json.dumps(BAD))), (200, openai_call(GOOD))]
    got = openai(llm).plan(QUESTION, tpch_model)
    assert got.queries[0].query["fields"] == GOOD["fields"]
    feedback = llm.requests[1]["body"]["messages"][-1]
    assert feedback["role"] == "user" and "Did you mean" in feedback["content"]


def test_unknown_grain_is_repaired(llm: Scripted, tpch_model: SemanticModel) -> None:
    decade = {**GOOD, "fields": ["orders.o_orderdate[decade]", "lineitem.revenue"], "sorts": []}
    llm.script = [(200, openai_call(decade)), (200, openai_call(GOOD))]
    openai(llm).plan(QUESTION, tpch_model)
    assert "orders.o_orderdate[decade]" in llm.requests[1]["body"]["messages"][-2]["content"]


# -- every word accounted for, for LLM plans too ------------------------------------------
# A hosted LLM cannot run here, so the scripted loopback server above plays the model: it
# replays the tool calls a model that drops a word would make. What is tested is Assay's side:
# the check of the plan against the question's words, the repair turn and the refusal.

CANCELLED = "How many orders were cancelled?"
ALL_ORDERS = {"topic": "orders", "fields": ["orders.count"], "intent": "Order count"}


def test_a_word_the_plan_leaves_out_gets_a_repair_turn(
    llm: Scripted, tpch_model: SemanticModel
) -> None:
    filters: dict[str, Any] = {"region.r_name": {"type": "string", "kind": "EQUALS",
                                                 "values": ["ASIA"]}}  # fmt: skip
    asia = {**GOOD, "filters": {**filters, "orders.o_orderdate": GOOD_DATE}}
    llm.script = [(200, openai_call(GOOD)), (200, openai_call(asia, call_id="call_2"))]
    question = "revenue by region in 1995 for ASIA"
    got = openai(llm).plan(question, tpch_model)
    assert len(llm.requests) == 2
    assert got.queries[0].query["filters"]["region.r_name"]["values"] == ["ASIA"]
    repair = llm.requests[1]["body"]["messages"]
    tool = repair[-2]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "call_1"
    assert "does not use these words of the question: 'ASIA'" in tool["content"]


def test_still_unaccounted_after_the_repair_is_refused_by_name(
    llm: Scripted, tpch_model: SemanticModel
) -> None:
    """Never every order for "cancelled": one repair turn, then a refusal naming the word
    (not the built-in planner's answer: the question itself cannot be placed)."""
    llm.script = [(200, openai_call(ALL_ORDERS)) for _ in range(3)]
    got = openai(llm).plan(CANCELLED, tpch_model)
    assert len(llm.requests) == 2  # the plan, and one turn naming the word
    assert not got.queries and got.refusal and "'cancelled'" in got.refusal
    assert "test-model" in got.refusal


def test_anthropic_gets_the_same_accounting(llm: Scripted, tpch_model: SemanticModel) -> None:
    llm.script = [
        (200, anthropic_call(ALL_ORDERS)),
        (200, anthropic_call({"reason": "No cancellation status in the model."}, name="refuse")),
    ]
    got = AnthropicPlanner(llm.url, "claude-test", None).plan(CANCELLED, tpch_model)
    result = llm.requests[1]["body"]["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and "'cancelled'" in result["content"]
    assert got.refusal == "No cancellation status in the model."


def test_a_share_the_llm_cannot_express_is_not_answered_with_amounts(
    llm: Scripted, tpch_model: SemanticModel
) -> None:
    by_region = {"topic": "lineitem", "fields": ["region.r_name", "lineitem.revenue"]}
    llm.script = [(200, openai_call(by_region)) for _ in range(2)]
    got = openai(llm).plan("what share of revenue comes from each region", tpch_model)
    assert got.refusal and "'share'" in got.refusal and not got.queries


def test_the_builtin_planners_own_plans_account_for_every_word(
    tpch_model: SemanticModel,
) -> None:
    """The check LLM plans get agrees with the built-in planner on its own plans."""
    path = Path(__file__).parents[1] / "fixtures" / "eval" / "tpch-questions.yaml"
    sets = yaml.safe_load(path.read_text())
    for item in [*sets["questions"], *sets["held_out"], *sets["tempting"]]:
        p = builtin.plan(item["q"], tpch_model)
        if p.queries:
            assert unaccounted(item["q"], tpch_model, [q.query for q in p.queries]) == [], item
