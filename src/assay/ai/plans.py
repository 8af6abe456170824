"""What a planner hands on: the semantic queries answering a question, or why there are none.

Shared by the built-in planner, its calculations and the LLM planners, so that none of them
imports another to speak of a plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    query: dict[str, Any]
    intent: str
    provenance: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Plan:
    queries: list[PlannedQuery] = field(default_factory=list)
    refusal: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class PlanStep:
    """One earlier turn of a conversation: its question and the plan made for it."""

    question: str
    plan: Plan
