"""Pydantic shapes of Omni's model files (views, topics, relationships, model).

They check structure only (keys, types); meaning (references, joins, cycles) is checked by the
loader. Omni parameters that Assay accepts but does not act on are listed so that real Omni
YAML loads; anything else is an error with a suggestion, as Omni's own validator does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

AggregateType = Literal[
    "sum", "count", "count_distinct", "average", "min", "max", "median", "percentile", "list"
]
Timeframe = Literal[
    "raw", "date", "week", "month", "quarter", "year", "hour", "minute", "second",
    "month_name", "month_num", "quarter_of_year", "day_of_week_name", "day_of_week_num",
    "day_of_month", "day_of_year", "week_of_year", "hour_of_day",
]  # fmt: skip


def inert() -> Any:
    """A parameter Omni files may carry that Assay accepts but does not act on (yet)."""
    return Field(default=None, exclude=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DimensionFile(_Strict):
    sql: str | None = None
    primary_key: bool = False
    label: str | None = None
    description: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    ai_context: str | None = None
    all_values: list[Any] | None = None
    sample_values: list[Any] | None = None
    hidden: bool = False
    format: str | None = None
    group_label: str | None = None
    timeframes: list[Timeframe] | None = None
    tags: list[str] = Field(default_factory=list)
    ignored: bool = False
    display_order: Any = inert()
    view_label: Any = inert()
    skip_parent_label: Any = inert()
    colors: Any = inert()
    filter_single_select_only: Any = inert()
    suggest_from_field: Any = inert()
    suggest_from_topic: Any = inert()
    suggestion_list: Any = inert()
    drill_fields: Any = inert()
    links: Any = inert()
    aliases: Any = inert()
    convert_tz: Any = inert()
    required_access_grants: list[str] | None = None
    mask_unless_access_grants: list[str] | None = None
    ignore_from_extended: Any = inert()
    custom_primary_key_sql_for_quick_aggs: Any = inert()
    order_by_field: Any = inert()


class MeasureFile(_Strict):
    sql: str | None = None
    aggregate_type: AggregateType | None = None
    percentile: float | None = Field(default=None, gt=0, lt=100)
    filters: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    description: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    ai_context: str | None = None
    all_values: list[Any] | None = None
    sample_values: list[Any] | None = None
    hidden: bool = False
    format: str | None = None
    group_label: str | None = None
    tags: list[str] = Field(default_factory=list)
    ignored: bool = False
    custom_primary_key_sql: Any = inert()
    display_order: Any = inert()
    view_label: Any = inert()
    colors: Any = inert()
    drill_fields: Any = inert()
    drill_queries: Any = inert()
    links: Any = inert()
    aliases: Any = inert()
    required_access_grants: list[str] | None = None
    suggest_from_field: Any = inert()
    suggestion_list: Any = inert()


class ViewFile(_Strict):
    table_name: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    catalog: str | None = None
    sql: str | None = None
    label: str | None = None
    description: str | None = None
    ai_context: str | None = None
    hidden: bool = False
    # Validated one entry at a time by the loader, so one bad field does not hide the rest.
    dimensions: dict[str, Any] = Field(default_factory=dict)
    measures: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    group_label: Any = inert()
    display_order: Any = inert()
    required_access_grants: list[str] | None = None


class SampleQueryFile(_Strict):
    prompt: str | None = None
    label: str | None = None
    description: str | None = None
    ai_context: str | None = None
    query: dict[str, Any]
    exclude_from_ai_context: Any = inert()


class AccessFilterFile(_Strict):
    """A row-level access filter: rows whose ``field`` matches the user's values of
    ``user_attribute`` (``LIKE`` with wildcards on); holders of an unfiltered value see all."""

    field: str
    user_attribute: str
    values_for_unfiltered: list[str] = Field(default_factory=list)
    enable_sql_like_wildcards: bool = False


class AccessGrantFile(_Strict):
    """A named grant: held by users with any value of ``user_attribute`` in ``allowed_values``."""

    user_attribute: str
    allowed_values: list[str | int | float | bool]
    # AccessBoost lets shared dashboards bypass a grant; Assay has no dashboards, so a boostable
    # grant restricts API queries exactly as any other (Omni: "never workbook queries").
    access_boostable: bool = False


class TopicFile(_Strict):
    base_view: str
    label: str | None = None
    description: str | None = None
    ai_context: str | None = None
    hidden: bool = False
    group_label: str | None = None
    joins: dict[str, Any] = Field(default_factory=dict)
    fields: list[str] | None = None
    default_filters: dict[str, Any] = Field(default_factory=dict)
    always_where_filters: dict[str, Any] = Field(default_factory=dict)
    always_having_filters: dict[str, Any] = Field(default_factory=dict)
    sample_queries: dict[str, SampleQueryFile] = Field(default_factory=dict)
    default_row_limit: int | None = Field(default=None, gt=0)
    access_filters: list[AccessFilterFile] | None = None
    always_where_sql: str | None = None
    always_having_sql: str | None = None
    required_access_grants: list[str] | None = None
    ai_fields: Any = inert()
    auto_run: Any = inert()
    base_view_label: Any = inert()
    cache_policy: Any = inert()
    display_order: Any = inert()
    extends: Any = inert()
    owners: Any = inert()
    template: Any = inert()
    warehouse_override: Any = inert()


class RelationshipFile(_Strict):
    join_from_view: str
    join_to_view: str
    on_sql: str
    relationship_type: Literal["one_to_one", "many_to_one", "one_to_many", "many_to_many"] = (
        "many_to_one"
    )
    join_type: Literal["always_left", "inner", "full_outer", "cross"] = "always_left"
    reversible: bool | None = None
    where_sql: str | None = None
    join_to_view_as: Any = inert()
    join_to_view_as_label: Any = inert()


class ModelFile(_Strict):
    name: str | None = None
    label: str | None = None
    description: str | None = None
    ai_context: str | None = None
    dialect: str = "duckdb"
    connection: str | None = None
    default_row_limit: int | None = Field(default=None, gt=0)
    ai_chat_topics: Any = inert()
    query_all_views_and_fields: Any = inert()
    cache_policies: Any = inert()
    default_cache_policy: Any = inert()
    access_grants: dict[str, AccessGrantFile] = Field(default_factory=dict)
    default_topic_access_filters: list[AccessFilterFile] = Field(default_factory=list)
    default_topic_required_access_grants: list[str] | None = None
    week_start_day: Any = inert()
    fiscal_month_offset: Any = inert()
    included_schemas: Any = inert()
