"""Pydantic shapes of Omni's model files (views, topics, relationships, model).

They check structure only (keys, types); meaning (references, joins, cycles) is checked by the
loader. Omni parameters that only change how things look (``colors``, ``links``, ...) are
accepted and have no effect, so that real Omni YAML loads; parameters that would change a
result and that Assay does not implement yet are *refused by name* (never accepted and
ignored: that would be a silent wrong answer); anything else is an error with a suggestion, as
Omni's own validator does. docs/semantic-layer.md keeps the table of every parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)
from pydantic_core import PydanticCustomError

from assay.errors import did_you_mean
from assay.semantic.calendar import FISCAL_OFFSET_LIMIT, WEEKDAYS
from assay.semantic.timezones import zone_problem

AggregateType = Literal[
    "sum", "count", "count_distinct", "average", "min", "max", "median", "percentile", "list",
    "sum_distinct_on", "average_distinct_on", "median_distinct_on", "percentile_distinct_on",
]  # fmt: skip
#: aggregate types that aggregate each distinct value of custom_primary_key_sql once
DISTINCT_ON_TYPES = frozenset(t for t in get_args(AggregateType) if t.endswith("_distinct_on"))
Timeframe = Literal[
    "raw", "date", "week", "month", "quarter", "year", "hour", "minute", "second",
    "month_name", "month_num", "quarter_of_year", "day_of_week_name", "day_of_week_num",
    "day_of_month", "day_of_year", "week_of_year", "hour_of_day", "millisecond",
    "day_of_quarter", "fiscal_year", "fiscal_quarter",
]  # fmt: skip


def inert() -> Any:
    """A parameter that changes only how things look (in Omni's UI), never a result: accepted
    so that Omni's files load, and without effect."""
    return Field(default=None, exclude=True)


def _not_supported(value: Any, info: ValidationInfo) -> Any:
    raise PydanticCustomError(
        "not_supported",
        "Assay does not support {name} yet: it changes query results, so the model is refused "
        "rather than served without it (docs/semantic-layer.md lists every Omni parameter)",
        {"name": info.field_name},
    )


#: a parameter that changes results and is not implemented yet: present, it refuses the model
Refused = Annotated[Any, AfterValidator(_not_supported)]


def _only(accepted: Any, what: str) -> Callable[[Any, ValidationInfo], Any]:
    """A parameter whose one value Assay already honours (what it does without it); any
    other value is refused by name."""

    def check(value: Any, info: ValidationInfo) -> Any:
        same = value.lower() == accepted if isinstance(value, str) else value == accepted
        if not same and value is not None:
            raise PydanticCustomError(
                "not_supported",
                "Assay does not support {name}: {value} yet: it changes query results, so the "
                "model is refused rather than served without it ({what})",
                {"name": info.field_name, "value": json.dumps(value, default=str), "what": what},
            )
        return value

    return check


def _from_user_attribute(value: Any, info: ValidationInfo) -> None:
    if isinstance(value, str) and "{{" in value:
        raise PydanticCustomError(
            "not_supported",
            "Assay does not support {name} from a user attribute yet: it changes query "
            "results, so the model is refused rather than served without it",
            {"name": info.field_name},
        )


def _week_start_day(value: Any, info: ValidationInfo) -> str:
    """A day name, in any case (Omni writes ``Sunday``); kept lowercased."""
    _from_user_attribute(value, info)
    day = value.strip().lower() if isinstance(value, str) else ""
    if day not in WEEKDAYS:
        raise PydanticCustomError(
            "week_start_day",
            "invalid week_start_day {value}: expected one of Monday, Tuesday, Wednesday, "
            "Thursday, Friday, Saturday, Sunday.{hint}",
            {"value": json.dumps(value, default=str), "hint": did_you_mean(str(value), WEEKDAYS)},
        )
    return day


def _fiscal_month_offset(value: Any, info: ValidationInfo) -> int:
    """Whole months, within a year either way (``calendar.FISCAL_OFFSET_LIMIT``)."""
    _from_user_attribute(value, info)
    limit = FISCAL_OFFSET_LIMIT
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > limit:
        raise PydanticCustomError(
            "fiscal_month_offset",
            "invalid fiscal_month_offset {value}: expected a whole number of months from "
            "-{limit} to {limit} (11: the fiscal year 2025 starts in February 2024; -1: it "
            "starts in February 2025)",
            {"value": json.dumps(value, default=str), "limit": limit},
        )
    return value


WeekStartDay = Annotated[str, BeforeValidator(_week_start_day)]
FiscalMonthOffset = Annotated[int, BeforeValidator(_fiscal_month_offset)]


def _zone(value: Any) -> str:
    """An IANA time zone name (``zoneinfo``), with a suggestion for a typo."""
    problem = zone_problem(value)
    if problem is not None:
        raise PydanticCustomError("time_zone", problem.replace("{", "{{").replace("}", "}}"))
    return str(value)


ZoneName = Annotated[str, BeforeValidator(_zone)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DurationUnit = Literal[
    "seconds", "minutes", "hours", "days", "weeks", "months", "quarters", "years"
]


class GroupFile(_Strict):
    """One of a ``groups`` dimension's buckets: the rows ``filter`` holds for are ``name``."""

    filter: dict[str, Any]
    name: str = Field(min_length=1)


class DurationFile(_Strict):
    """A ``duration`` dimension: whole ``intervals`` from ``sql_start`` to ``sql_end``
    (each queried as ``view.name[days]``); all eight units when ``intervals`` is left out."""

    intervals: list[DurationUnit] = Field(
        default_factory=lambda: list(get_args(DurationUnit)), min_length=1
    )
    sql_start: str
    sql_end: str


class LevelOfDetailFile(_Strict):
    """A measure's ``level_of_detail``: the inner aggregate (``aggregate_type``) computed per
    value of its grain, which the measure's own aggregate then aggregates at the query's
    grain (a dimension's: the inner value joined back to each row). The grain is one of
    ``fixed`` (these fields), ``always_include`` (the query's dimensions and these) or
    ``always_exclude`` (the query's dimensions but these); which fields and aggregates are
    allowed is checked by ``build_lod``."""

    aggregate_type: AggregateType
    fixed: list[Any] | None = None
    always_include: list[Any] | None = None
    always_exclude: list[Any] | None = None
    custom_primary_key_sql: Refused = None
    # Omni's pages name the block's filters (and their cancel_query_filter) without saying
    # which rows they filter; refused until that is settled.
    filters: Refused = None
    cancel_query_filters: bool = False


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
    #: None: converted when the model's query zone is set and the dimension is a timestamp
    convert_tz: bool | None = None
    week_start_day: WeekStartDay | None = None
    required_access_grants: list[str] | None = None
    mask_unless_access_grants: list[str] | None = None
    # left out of views that extend this one (``extends``), resolved before validation
    ignore_from_extended: bool = False
    custom_primary_key_sql_for_quick_aggs: Any = inert()  # quick aggregates are Omni's UI
    order_by_field: str | None = None
    groups: list[GroupFile] | None = Field(default=None, min_length=1)
    else_: str | None = Field(default=None, alias="else")
    bin_boundaries: list[int | float] | None = None
    duration: DurationFile | None = None
    level_of_detail: LevelOfDetailFile | None = None
    dynamic_top_n: Refused = None


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
    # Checked by the loader: Omni defines it for the *_distinct_on aggregate types.
    custom_primary_key_sql: str | None = None
    level_of_detail: LevelOfDetailFile | None = None
    ignore_from_extended: bool = False  # as a dimension's
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


class QueryViewFile(_Strict):
    """A query view's ``query``: a semantic query whose result is the view's table."""

    base_view: str
    topic: str | None = None
    #: each source field (``view.field[grain]``) and the column it becomes in the view
    fields: dict[str, str] = Field(min_length=1)
    filters: dict[str, Any] = Field(default_factory=dict)
    sorts: list[Any] = Field(default_factory=list)
    #: absent: every row (not Omni's 1,000 default of an ad-hoc query, which would cut a
    #: table silently)
    limit: int | None = Field(default=None, gt=0)
    calculations: Refused = None
    fill_fields: Refused = None
    join_via_map: Refused = None
    bind: Refused = None
    bind_all_filters: Refused = None
    default_group_by: Refused = None
    pivots: Refused = None


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
    schema_label: Any = inert()  # how Omni's UI titles the schema
    dbt: Any = inert()  # the dbt model's metadata, copied read-only by Omni's dbt integration
    ignored: bool = False
    required_access_grants: list[str] | None = None
    query: QueryViewFile | None = None
    # ``extends`` is resolved on the YAML before validation (semantic.extends); a template
    # view is never validated (Omni relaxes it), so only ``template: false`` reaches here
    template: bool = False
    # Omni documents ignore_from_extended on fields only; what a view-level one means is
    # unknown, so it is refused rather than guessed
    ignore_from_extended: Refused = None


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


_CACHE_AGE = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_UNITS = {
    **{u: u for u in _SECONDS}, **{f"{u}s": u for u in _SECONDS},
    "s": "second", "sec": "second", "secs": "second", "m": "minute", "min": "minute",
    "mins": "minute", "h": "hour", "hr": "hour", "hrs": "hour", "d": "day", "w": "week",
}  # fmt: skip
MAX_CACHE_AGE = 30 * 86400


def _cache_age(value: Any) -> float:
    """``24 hours``, ``0 seconds``, ``30 days``: seconds, 0 to 30 days as Omni allows."""
    m = _CACHE_AGE.match(value) if isinstance(value, str) else None
    if m is None or m.group(2).lower() not in _UNITS:
        raise PydanticCustomError(
            "cache_age",
            "invalid max_cache_age {value}: expected a number and a unit, such as "
            "'0 seconds', '15 minutes', '24 hours' or '30 days'",
            {"value": json.dumps(value, default=str)},
        )
    seconds = int(m.group(1)) * _SECONDS[_UNITS[m.group(2).lower()]]
    if seconds > MAX_CACHE_AGE:
        raise PydanticCustomError(
            "cache_age", "max_cache_age {value} is over Omni's limit of 30 days",
            {"value": json.dumps(value)},
        )  # fmt: skip
    return float(seconds)


class CachePolicyFile(_Strict):
    """How long a query's result may be reused (a policy of the model's ``cache_policies``)."""

    max_cache_age: Annotated[float, BeforeValidator(_cache_age)]
    # Assay keeps no filter-suggestion cache: what it would retain does not exist here
    filter_suggestions_must_obey_policy: Any = inert()


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
    #: the joined view under another name (the same view joined twice: a customer's nation
    #: and a supplier's nation); the alias is a view of its own for topics and queries
    join_to_view_as: str | None = None
    join_to_view_as_label: str | None = None
    join_from_view_as: Refused = None
    join_from_view_as_label: Refused = None


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
    cache_policy: str | None = None
    access_filters: list[AccessFilterFile] | None = None
    always_where_sql: str | None = None
    always_having_sql: str | None = None
    required_access_grants: list[str] | None = None
    week_start_day: WeekStartDay | None = None
    ai_fields: list[str] | None = None
    auto_run: Any = inert()
    base_view_label: Any = inert()
    display_order: Any = inert()
    owners: Any = inert()
    # ``extends`` is resolved on the YAML before validation (semantic.extends); a template
    # topic is never built, so only ``template: false`` reaches here
    template: bool = False
    warehouse_override: Refused = None
    #: joins only this topic uses, tried before the model's relationships file
    relationships: list[RelationshipFile] | None = None
    #: views only this topic sees: ``name -> view YAML`` (semantic.topic_views checks each,
    #: building the topic against a variant of the model's views)
    views: dict[str, Any] | None = None


class TimezoneFile(_Strict):
    """Omni's connection time zones, in Assay's model file (semantic.timezones)."""

    #: the zone the database's tz-naive timestamps are written in (Omni's "Database timezone")
    database: ZoneName = "UTC"
    #: the zone queries show and filter in (Omni's "Query timezone"; absent: do not convert)
    query: ZoneName | None = None


class ModelFile(_Strict):
    name: str | None = None
    label: str | None = None
    description: str | None = None
    ai_context: str | None = None
    dialect: str = "duckdb"
    connection: str | None = None
    default_row_limit: int | None = Field(default=None, gt=0)
    ai_chat_topics: list[str] | None = None
    query_all_views_and_fields: Any = inert()  # views stay queryable through the API either way
    cache_policies: dict[str, CachePolicyFile] = Field(default_factory=dict)
    default_cache_policy: str | None = None
    access_grants: dict[str, AccessGrantFile] = Field(default_factory=dict)
    default_topic_access_filters: list[AccessFilterFile] = Field(default_factory=list)
    default_topic_required_access_grants: list[str] | None = None
    week_start_day: WeekStartDay | None = None
    fiscal_month_offset: FiscalMonthOffset | None = None
    timezone: TimezoneFile | None = None
    included_schemas: Any = inert()  # which schemas Omni's UI lists
    # views soft-deleted from the model (as a view's own ``ignored: true``): not in the model
    ignored_views: list[str] = Field(default_factory=list)
