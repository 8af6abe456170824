"""Request shapes of the query endpoints, for the OpenAPI document.

The routes validate requests by hand, to answer with the exact messages Omni's clients and
agents see from Omni (``query.modelId: Invalid uuid``); these models describe the same
shapes so that ``/openapi.json`` comes from the code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class QueryObject(BaseModel):
    model_config = ConfigDict(extra="allow")

    modelId: str = Field(description="The model's id (a UUID).")  # noqa: N815
    table: str | None = Field(None, description="The base view.")
    join_paths_from_topic_name: str | None = Field(None, description="The topic.")
    fields: list[str] = Field(description="view.field or view.field[grain], in output order.")
    filters: dict[str, Any] = Field(default_factory=dict, description="Field name -> typed filter.")
    sorts: list[dict[str, Any]] = Field(default_factory=list)
    limit: int | None = Field(1000, description="Rows to return; null for no limit.")
    offset: int = 0


class RunRequest(BaseModel):
    query: QueryObject
    cache: Literal[
        "Standard", "SkipRequery", "SkipCache", "SkipCacheAndRebuildExtracts",
        "normal", "disabled", "refresh", "refresh_all",
    ] = "SkipRequery"  # fmt: skip
    resultType: Literal["csv", "json", "xlsx"] | None = None  # noqa: N815
    planOnly: bool = False  # noqa: N815
    formatResults: bool = False  # noqa: N815
    userId: str | None = Field(None, description="Act for this user (org keys); not with ?userId=.")  # noqa: N815
    branchId: str | None = None  # noqa: N815
    timezone: str | None = Field(
        None,
        description="Refused with Omni's 400: user-specific time zones are not enabled (the "
        "model's timezone setting sets one query zone for everyone).",
    )


class CancelRequest(BaseModel):
    job_ids: list[str] = Field(description="The ids of the jobs to stop.")


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace ``$ref``s to ``$defs`` by the definitions: the schema is embedded in a route,
    where a ``#/$defs/...`` reference would point at the OpenAPI document's root."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` describing a JSON body the route reads by hand."""
    schema = model.model_json_schema()
    inlined = _inline(schema, schema.get("$defs", {}))
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": inlined}}}}
