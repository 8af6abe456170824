"""The model's time zones at load and compile time: which dimensions convert (the catalog's
column type, a CAST, convert_tz), the SQL each dialect gets, and the clock relative dates read.
Rows on real databases: tests/engines/test_timezone_rows.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlglot

from assay.errors import InvalidQuery, ModelInvalid
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel

ZONES = "timezone: {database: UTC, query: America/New_York}\n"
VIEW = """\
table_name: events
dimensions:
  id: {primary_key: true}
  created: {}
  day: {}
  label: {}
  created_again: {sql: "${created}", timeframes: [date, hour]}
  created_text: {sql: "CAST(${created} AS VARCHAR)"}
measures:
  count: {aggregate_type: count}
"""
CATALOG = {"events": {"id": "INTEGER", "created": "TIMESTAMP", "day": "DATE", "label": "VARCHAR",
                      "aware": "TIMESTAMP WITH TIME ZONE"}}  # fmt: skip


def model(zones: str = ZONES, view: str = VIEW, catalog: Any = CATALOG) -> SemanticModel:
    return build_model({"model": f"name: tz\n{zones}", "events.view": view}, name="tz",
                       catalog=catalog)  # fmt: skip


def sql(m: SemanticModel, fields: list[str], dialect: str = "duckdb", **query: Any) -> str:
    return compile_query(m, {"table": "events", "fields": fields, **query}, dialect=dialect).sql


CONVERTED = "CAST(events.created AS TIMESTAMP) AT TIME ZONE 'UTC' AT TIME ZONE 'America/New_York'"


def test_a_timestamp_column_converts_and_a_date_column_does_not() -> None:
    text = sql(model(), ["events.created[date]", "events.day[date]", "events.label"])
    assert f"CAST({CONVERTED} AS DATE)" in text
    assert "CAST(events.day AS DATE)" in text
    assert text.count("TIME ZONE 'America/New_York'") == 1


def test_a_dimension_built_on_a_converted_one_is_converted_once() -> None:
    text = sql(model(), ["events.created_again[hour]", "events.created_text"])
    assert text.count("AT TIME ZONE 'America/New_York'") == 2  # once in each field
    assert f"DATE_TRUNC('HOUR', {CONVERTED})" in text
    assert f"CAST({CONVERTED} AS TEXT)" in text


def test_filters_and_sorts_read_the_converted_value() -> None:
    text = sql(model(), ["events.created[date]", "events.count"],
               filters={"events.created": {"type": "date", "kind": "BEFORE",
                                           "right_side": "2024-01-01"}},
               sorts=[{"column_name": "events.created[date]"}])  # fmt: skip
    assert f"WHERE {CONVERTED} < CAST('2024-01-01' AS DATE)" in text


EXPECTED_FORMS = {
    "duckdb": "AT TIME ZONE 'UTC' AT TIME ZONE 'America/New_York'",
    "postgres": "AT TIME ZONE 'UTC' AT TIME ZONE 'America/New_York'",
    "snowflake": "CONVERT_TIMEZONE('UTC', 'America/New_York', events.created)",
    "spark": "CONVERT_TIMEZONE('UTC', 'America/New_York', events.created)",
    # explicit forms: sqlglot's own read a naive value in the session's zone (Trino) or do
    # not type-check (BigQuery)
    "trino": "CAST(AT_TIMEZONE(WITH_TIMEZONE(events.created, 'UTC'), 'America/New_York') "
    "AS TIMESTAMP)",
    "bigquery": "DATETIME(TIMESTAMP(events.created, 'UTC'), 'America/New_York')",
}


@pytest.mark.parametrize("dialect", [d for d in DIALECTS if d != "mysql"])
def test_every_dialect_renders_its_conversion_and_parses_back(dialect: str) -> None:
    compiled = compile_query(model(), {"table": "events", "fields": ["events.created[week]",
                             "events.count"]}, dialect=dialect)  # fmt: skip
    assert EXPECTED_FORMS[dialect] in compiled.sql
    assert EXPECTED_FORMS[dialect].split("(")[0] in compiled.pretty_sql()  # the summary's SQL
    assert "CONVERT_TIMEZONE" not in compiled.pretty_sql() or dialect in ("snowflake", "spark")
    sqlglot.parse_one(compiled.sql, read=dialect)


def test_mysql_refuses_the_conversion_by_name() -> None:
    with pytest.raises(InvalidQuery, match="CONVERT_TZ returns NULL"):
        sql(model(), ["events.created[date]"], dialect="mysql")
    assert "CONVERT_TZ" not in sql(model(), ["events.day[date]"], dialect="mysql")


def test_timestamps_with_time_zone_and_guessed_columns_are_refused_until_convert_tz_says() -> None:
    view = VIEW.replace(
        "  day: {}\n", "  day: {}\n  aware: {}\n  either: {sql: 'COALESCE(created, day)'}\n"
    )
    with pytest.raises(ModelInvalid) as info:
        model(view=view)
    messages = {i.yaml_path: i.message for i in info.value.issues}
    assert "WITH time zone" in messages["dimensions.aware.convert_tz"]
    assert "reads the timestamp column created" in messages["dimensions.either.convert_tz"]
    fixed = view.replace("aware: {}", "aware: {convert_tz: false}").replace(
        "'COALESCE(created, day)'}", "'COALESCE(created, day)', convert_tz: true}"
    )
    text = sql(model(view=fixed), ["events.either[date]", "events.aware[date]"])
    assert "CAST(COALESCE(events.created, events.day) AS TIMESTAMP) AT TIME ZONE 'UTC'" in text
    assert "CAST(events.aware AS DATE)" in text


def test_without_a_catalog_a_dimension_of_unknown_type_is_not_a_time() -> None:
    """No catalog, no timeframes: Assay cannot tell a timestamp, so it converts nothing and
    its grains are missing fields rather than grains of an unconverted value."""
    plain = (
        VIEW.split("  created_again", maxsplit=1)[0]
        + "measures:\n  count: {aggregate_type: count}\n"
    )
    compiled = compile_query(model(view=plain, catalog=None), {"table": "events",
                             "fields": ["events.created[date]", "events.created"]})  # fmt: skip
    assert compiled.missing_fields == ("events.created[date]",)
    assert "TIME ZONE" not in compiled.sql
    # a timestamp named as one (timeframes) is refused until convert_tz says which
    with pytest.raises(ModelInvalid, match=r"created_again\.convert_tz: lists timeframes"):
        model(catalog=None)


@pytest.mark.parametrize(
    "zones",
    ["", "timezone: {query: Etc/UTC}\n", "timezone: {database: Europe/Paris}\n",
     "timezone: {database: Europe/Paris, query: Europe/Paris}\n"],
)  # fmt: skip
def test_nothing_converts_without_a_query_zone_other_than_the_databases(zones: str) -> None:
    view = VIEW.replace("  created: {}", "  created: {convert_tz: true}")  # the default: accepted
    assert "TIME ZONE" not in sql(
        model(zones, view), ["events.created[date]", "events.created_again[hour]"]
    )


def test_relative_dates_are_resolved_on_the_query_zones_clock() -> None:
    """Kiritimati (UTC+14) and Etc/GMT+12 (UTC-12) are always on different days."""
    today = {"events.day": {"type": "date", "kind": "TIME_FOR_UNIT_DURATION", "left_side": "today"}}
    for zone in ("Pacific/Kiritimati", "Etc/GMT+12"):
        before = datetime.now(ZoneInfo(zone)).date()
        text = sql(model(f"timezone: {{query: {zone}}}\n"), ["events.count"], filters=today)
        after = datetime.now(ZoneInfo(zone)).date()
        assert f"CAST('{before}' AS DATE)" in text or f"CAST('{after}' AS DATE)" in text
    # and in the database zone when nothing converts (the zone of the values shown)
    zone = "Pacific/Kiritimati"
    text = sql(model(f"timezone: {{database: {zone}}}\n"), ["events.count"], filters=today)
    assert f"CAST('{datetime.now(ZoneInfo(zone)).date()}' AS DATE)" in text
