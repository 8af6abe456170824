"""LLM planners: an OpenAI-compatible chat endpoint or Anthropic's Messages API.

The LLM sees a catalogue of the model and must answer with a *semantic query* through a tool
call (``semantic_query``) or decline (``refuse``). Nothing it writes is ever executed: its
arguments become an Omni query dict that the semantic layer validates (``compile_query``);
errors go back to the LLM for up to ``max_repairs`` repairs. When the endpoint fails or the
query stays invalid, the built-in planner answers instead, and the provenance says so.

A valid query is also checked against the question's words as the built-in planner checks its
own (``plan_check``): a word it does not place gets one more turn naming it, and a plan that
still leaves it out is refused naming it, never run as the answer to another question.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx

from assay.ai import accounting, plan_check
from assay.ai import planner as builtin
from assay.ai.catalog_prompt import (
    INSTRUCTIONS,
    QUERY_SCHEMA,
    QUERY_TOOL,
    REFUSE_TOOL,
    model_catalog,
)
from assay.ai.planner import Plan, PlannedQuery, PlanStep
from assay.errors import ConfigError, QueryError, did_you_mean
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel

__all__ = [
    "INSTRUCTIONS",
    "QUERY_SCHEMA",
    "QUERY_TOOL",
    "REFUSE_TOOL",
    "AnthropicPlanner",
    "BuiltinPlanner",
    "OpenAICompatiblePlanner",
    "Planner",
    "model_catalog",
    "planner_from_settings",
]

_JSON_OBJECT = re.compile(r"\{.*\}", re.S)


class Planner(Protocol):
    def plan(
        self,
        question: str,
        model: SemanticModel,
        conversation: Sequence[PlanStep] = (),
        topic: str | None = None,
    ) -> Plan: ...


class BuiltinPlanner:
    """The offline, deterministic planner behind the ``Planner`` protocol."""

    label = "builtin"  # in metrics

    def plan(
        self,
        question: str,
        model: SemanticModel,
        conversation: Sequence[PlanStep] = (),
        topic: str | None = None,
    ) -> Plan:
        return builtin.plan(question, model, conversation=conversation, topic=topic)


class LLMUnavailable(Exception):
    """The endpoint failed or answered in an unexpected shape."""


@dataclass(slots=True)
class _Reply:
    """One answer of the LLM: its tool calls ``(id, name, arguments)`` and its text."""

    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    text: str = ""
    raw: Any = None  # the assistant message, to send back with the feedback


def _query_from(args: Any, model: SemanticModel) -> PlannedQuery:
    """The Omni query dict for tool arguments, validated by the semantic layer."""
    if not isinstance(args, dict):
        raise QueryError("The tool arguments must be a JSON object.")
    topic = args.get("topic")
    if not isinstance(topic, str) or topic not in model.topics:
        raise QueryError(
            f"No such topic {json.dumps(topic)}.{did_you_mean(str(topic), model.topics)}"
        )
    fields = args.get("fields")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise QueryError('"fields" must be a list of field keys such as "view.field".')
    query: dict[str, Any] = {
        "modelId": model.id,
        "table": model.topics[topic].base_view,
        "join_paths_from_topic_name": topic,
        "fields": fields,
        "filters": args.get("filters") or {},
        "sorts": args.get("sorts") or [],
    }
    if args.get("limit") is not None:
        query["limit"] = args["limit"]
    try:
        compiled = compile_query(model, query)
    except (TypeError, ValueError, KeyError, AttributeError) as e:  # a badly shaped query
        raise QueryError(f"The query is malformed: {e}") from e
    if compiled.missing_fields:
        raise QueryError(
            "Unknown grain or field: " + ", ".join(compiled.missing_fields) + ". Use a grain "
            "the catalogue lists for the date dimension."
        )
    intent = args.get("intent")
    return PlannedQuery(query, intent if isinstance(intent, str) and intent else "Answer")


def _content_json(text: str) -> Any:
    """A JSON object written in message text (possibly fenced), or None."""
    match = _JSON_OBJECT.search(text)
    if match is None:
        return None
    try:
        return json.loads(match.group(0))
    except ValueError:
        return None


class _LLMPlanner:
    kind = "llm"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_repairs: int = 2,
        transport: httpx.BaseTransport | None = None,
        fallback: Planner | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self.max_repairs = max(0, max_repairs)
        self.transport = transport
        self.fallback = fallback or BuiltinPlanner()

    # -- what each API does differently --------------------------------------------------
    def _request(self, client: httpx.Client, system: str, messages: list[Any]) -> _Reply:
        raise NotImplementedError

    def _feedback(self, reply: _Reply, errors: dict[str, str], general: str) -> list[Any]:
        raise NotImplementedError

    def _history(self, conversation: Sequence[PlanStep]) -> list[Any]:
        out: list[Any] = []
        for step in conversation:
            said = step.plan.refusal or json.dumps([q.query for q in step.plan.queries])
            out += [
                {"role": "user", "content": step.question},
                {"role": "assistant", "content": f"Planned: {said}"},
            ]
        return out

    # -- the loop ----------------------------------------------------------------------
    def plan(
        self,
        question: str,
        model: SemanticModel,
        conversation: Sequence[PlanStep] = (),
        topic: str | None = None,
    ) -> Plan:
        system = f"{INSTRUCTIONS}\n{model_catalog(model)}"
        asked = f"{question}\n\n(Use the topic {topic}.)" if topic else question
        messages = [*self._history(conversation), {"role": "user", "content": asked}]
        source = f"{self.kind} model {self.model} at {urlparse(self.base_url).netloc}"
        problems: list[str] = []
        words_told = False  # the one turn naming words the plan left out
        try:
            with httpx.Client(transport=self.transport, timeout=self.timeout) as client:
                attempt = 0
                while attempt <= self.max_repairs:
                    reply = self._request(client, system, messages)
                    result, errors, general = self._judge(reply, model, source, attempt, problems)
                    if result is None:
                        problems.append(general or "; ".join(errors.values()))
                        if attempt < self.max_repairs:
                            messages += self._feedback(reply, errors, general)
                        attempt += 1
                        continue
                    left = _words_left(question, model, result)
                    if not left:
                        return result
                    if words_told:
                        why = f"{accounting.refusal(left)} (Planned by {source}.)"
                        return Plan(refusal=why, topic=result.topic)
                    words_told = True
                    told = _unplaced_feedback(left)
                    messages += self._feedback(reply, {c[0]: told for c in reply.calls}, told)
        except (httpx.HTTPError, LLMUnavailable, ValueError, KeyError, IndexError, TypeError) as e:
            why = f"{source} failed: {e}"
            return self._fall_back(question, model, conversation, topic, why)
        return self._fall_back(
            question,
            model,
            conversation,
            topic,
            f"{source} gave no valid query after {self.max_repairs} repair(s) "
            f"(last error: {problems[-1]})",
        )

    def _judge(
        self, reply: _Reply, model: SemanticModel, source: str, attempt: int, problems: list[str]
    ) -> tuple[Plan | None, dict[str, str], str]:
        """A plan from ``reply``, or the errors to feed back (per tool call, and general)."""
        calls = reply.calls
        if not calls:
            found = _content_json(reply.text)
            if isinstance(found, dict):
                calls = [("", "refuse" if "reason" in found else "semantic_query", found)]
            else:
                return (
                    None,
                    {},
                    (
                        "Answer by calling the semantic_query tool (or refuse). Free text, SQL and "
                        "code are never run."
                    ),
                )
        for _, name, args in calls:
            if name == "refuse":
                reason = args.get("reason") if isinstance(args, dict) else None
                return Plan(refusal=str(reason or "The model cannot answer this question.")), {}, ""
        queries: list[PlannedQuery] = []
        errors: dict[str, str] = {}
        for call_id, name, args in calls:
            if name != "semantic_query":
                errors[call_id] = f'Unknown tool "{name}": use semantic_query or refuse.'
                continue
            try:
                queries.append(_query_from(args, model))
            except QueryError as e:
                errors[call_id] = f"Invalid query: {e.message}"
        if errors or not queries:
            if not reply.calls:  # a JSON object in the text: the feedback goes as text too
                return None, {}, "; ".join(errors.values()) or "No query was given."
            return None, errors, "" if errors else "No query was given."
        why = [f"planned by {source}"]
        if attempt:
            why.append(f"repaired after {attempt} invalid attempt(s): {'; '.join(problems)}")
        done = [replace(q, provenance=[*why, *q.provenance]) for q in queries]
        return Plan(queries=done, topic=done[0].query["join_paths_from_topic_name"]), {}, ""

    def _fall_back(
        self,
        question: str,
        model: SemanticModel,
        conversation: Sequence[PlanStep],
        topic: str | None,
        why: str,
    ) -> Plan:
        got = self.fallback.plan(question, model, conversation, topic)
        note = f"{why}; used the built-in planner instead"
        return replace(
            got, queries=[replace(q, provenance=[note, *q.provenance]) for q in got.queries]
        )


def _words_left(question: str, model: SemanticModel, result: Plan) -> list[str]:
    """The question's words a plan's queries leave out (none for a refusal)."""
    queries = [q.query for q in result.queries]
    return plan_check.unaccounted(question, model, queries) if queries else []


def _unplaced_feedback(words: Sequence[str]) -> str:
    quoted = ", ".join(f"'{w}'" for w in dict.fromkeys(words))
    return (
        f"The query does not use these words of the question: {quoted}. A query that leaves "
        "out a word answers another question. Change the query so that it uses each of them "
        "(a field, a value in a filter, a date filter, a grain, a sort and limit), or call "
        "refuse naming them if the model cannot express them."
    )


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw) if raw.strip() else {}
        except ValueError:
            return raw  # judged invalid, and fed back
    return raw


class OpenAICompatiblePlanner(_LLMPlanner):
    """``POST {base_url}/chat/completions`` with tools (OpenAI, Azure, vLLM, Ollama, ...)."""

    kind = "OpenAI-compatible"
    label = "openai"

    def _request(self, client: httpx.Client, system: str, messages: list[Any]) -> _Reply:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
            if ".azure.com" in self.base_url:
                headers["api-key"] = self.api_key
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, *messages],
            "tools": [QUERY_TOOL, REFUSE_TOOL],
            "tool_choice": "required",
            "temperature": 0,
        }
        resp = client.post(f"{self.base_url}/chat/completions", json=body, headers=headers)
        if resp.status_code >= 400:
            raise LLMUnavailable(f"HTTP {resp.status_code}: {resp.text[:200]}")
        message = resp.json()["choices"][0]["message"]
        calls = [
            (
                c.get("id") or f"call_{i}",
                c["function"]["name"],
                _arguments(c["function"].get("arguments")),
            )
            for i, c in enumerate(message.get("tool_calls") or [])
        ]
        return _Reply(calls, message.get("content") or "", message)

    def _feedback(self, reply: _Reply, errors: dict[str, str], general: str) -> list[Any]:
        if not reply.calls:
            return [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": general},
            ]
        calls = [
            {
                "id": call_id,
                "type": "function",
                "function": {
                    "name": name,
                    "arguments": args if isinstance(args, str) else json.dumps(args),
                },
            }
            for call_id, name, args in reply.calls
        ]
        out: list[Any] = [{"role": "assistant", "content": reply.text, "tool_calls": calls}]
        for call_id, _, _ in reply.calls:
            text = errors.get(call_id, "Not run: another query in this answer was invalid.")
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        out.append({"role": "user", "content": "Fix the query and call semantic_query again."})
        return out


class AnthropicPlanner(_LLMPlanner):
    """``POST {base_url}/v1/messages`` with tools and ``tool_use`` blocks (Anthropic)."""

    kind = "Anthropic"
    label = "anthropic"
    version = "2023-06-01"

    def _request(self, client: httpx.Client, system: str, messages: list[Any]) -> _Reply:
        headers = {"anthropic-version": self.version, "content-type": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        tools = [
            {
                "name": t["function"]["name"],
                "description": t["function"]["description"],
                "input_schema": t["function"]["parameters"],
            }
            for t in (QUERY_TOOL, REFUSE_TOOL)
        ]
        body = {
            "model": self.model,
            "max_tokens": 2048,
            "system": system,
            "messages": messages,
            "tools": tools,
            "tool_choice": {"type": "any"},
            "temperature": 0,
        }
        base = self.base_url.removesuffix("/v1")
        resp = client.post(f"{base}/v1/messages", json=body, headers=headers)
        if resp.status_code >= 400:
            raise LLMUnavailable(f"HTTP {resp.status_code}: {resp.text[:200]}")
        content = resp.json()["content"]
        calls = [
            (b["id"], b["name"], b.get("input")) for b in content if b.get("type") == "tool_use"
        ]
        text = "".join(b.get("text", "") for b in content if b.get("type") == "text")
        return _Reply(calls, text, content)

    def _feedback(self, reply: _Reply, errors: dict[str, str], general: str) -> list[Any]:
        if not reply.calls:
            return [
                {"role": "assistant", "content": reply.text or "(no answer)"},
                {"role": "user", "content": general},
            ]
        results: list[dict[str, Any]] = [
            {
                "type": "tool_result",
                "tool_use_id": call_id,
                "content": errors.get(call_id, "Not run: another query was invalid."),
                "is_error": True,
            }
            for call_id, _, _ in reply.calls
        ]
        results.append({"type": "text", "text": "Fix the query and call semantic_query again."})
        return [{"role": "assistant", "content": reply.raw}, {"role": "user", "content": results}]


def planner_from_settings(
    kind: str,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    *,
    timeout: float = 60.0,
    max_repairs: int = 2,
) -> Planner:
    """The planner a deployment configured: ``builtin`` (default), ``openai`` or ``anthropic``."""
    name = (kind or "builtin").strip().lower()
    if name in ("builtin", "built-in", "offline", "none"):
        return BuiltinPlanner()
    if name not in ("openai", "openai-compatible", "openai_compatible", "anthropic"):
        raise ConfigError(f'Unknown planner "{kind}": use builtin, openai or anthropic.')
    if not model:
        raise ConfigError(f"The {name} planner needs a model name.")
    cls: type[_LLMPlanner]
    if name == "anthropic":
        cls, default = AnthropicPlanner, "https://api.anthropic.com"
    else:
        cls, default = OpenAICompatiblePlanner, "https://api.openai.com/v1"
    return cls(base_url or default, model, api_key, timeout=timeout, max_repairs=max_repairs)
