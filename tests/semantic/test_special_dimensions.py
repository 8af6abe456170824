"""Special dimensions (``groups``, ``bin_boundaries``, ``duration``, ``order_by_field``) on the
TPC-H demo data: each query's rows against hand-written SQL on DuckDB, the field metadata,
every dialect's rendering read back by its own parser, and durations counted on known moments.

PostgreSQL and MariaDB run the same comparisons in tests/engines/test_special_dimensions.py.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pytest
import sqlglot
from sqlglot import exp

from assay.engines import DuckDBEngine
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.special_dimensions import bin_labels, duration_expression, number_text
from tests.rows import assert_same_rows
from tests.special_model import special_model

pytestmark = pytest.mark.tpch

#: (query, hand-written SQL in DuckDB's and PostgreSQL's common dialect, ordered?)
CASES: dict[str, tuple[dict[str, Any], str, bool]] = {
    "groups": (
        {"table": "nation", "fields": ["nation.region_group", "nation.n_name"], "limit": None},
        """SELECT CASE WHEN n_name IN ('FRANCE', 'GERMANY', 'ROMANIA', 'RUSSIA',
                  'UNITED KINGDOM') THEN 'Europe'
             WHEN n_name LIKE 'I%' THEN 'I nations'
             WHEN n_name LIKE '%A' AND n_name <> 'CHINA' THEN 'Ends in A'
             WHEN n_name IN ('UNITED STATES', 'CANADA') THEN 'North America'
             ELSE 'Other' END, n_name
           FROM nation""",
        False,
    ),
    "groups_without_else_are_null": (
        {"table": "nation", "fields": ["nation.ungrouped_rest", "nation.n_name"], "limit": None},
        "SELECT CASE WHEN n_name LIKE '%AN%' THEN 'Has AN' END, n_name FROM nation",
        False,
    ),
    "groups_filtered_by_label": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["nation.region_group", "orders.count"],
            "filters": {
                "nation.region_group": {
                    "type": "string",
                    "kind": "EQUALS",
                    "values": ["Europe", "Other"],
                }
            },
        },
        """SELECT CASE WHEN n.n_name IN ('FRANCE', 'GERMANY', 'ROMANIA', 'RUSSIA',
                  'UNITED KINGDOM') THEN 'Europe' ELSE 'Other' END, COUNT(*)
           FROM orders o JOIN customer c ON o.o_custkey = c.c_custkey
           JOIN nation n ON c.c_nationkey = n.n_nationkey
           WHERE n.n_name IN ('FRANCE', 'GERMANY', 'ROMANIA', 'RUSSIA', 'UNITED KINGDOM',
                 'BRAZIL', 'CHINA', 'EGYPT', 'JAPAN', 'JORDAN', 'MOROCCO', 'MOZAMBIQUE',
                 'PERU', 'VIETNAM')
           GROUP BY 1""",
        False,
    ),
    "bins": (
        {"table": "orders", "fields": ["orders.price_bin", "orders.count"], "limit": None},
        """SELECT CASE WHEN o_totalprice < 50000 THEN '< 50000'
             WHEN o_totalprice < 100000 THEN '>= 50000 and < 100000'
             WHEN o_totalprice < 150000.5 THEN '>= 100000 and < 150000.5'
             WHEN o_totalprice < 300000 THEN '>= 150000.5 and < 300000'
             ELSE '300000 and above' END AS b, COUNT(*)
           FROM orders GROUP BY 1""",
        False,
    ),
    "bins_filtered_by_label": (
        {
            "table": "orders",
            "fields": ["orders.o_orderstatus", "orders.count"],
            "filters": {
                "orders.price_bin": {
                    "type": "string",
                    "kind": "EQUALS",
                    "values": ["300000 and above"],
                }
            },
        },
        "SELECT o_orderstatus, COUNT(*) FROM orders WHERE o_totalprice >= 300000 GROUP BY 1",
        False,
    ),
    "duration_days_weeks": (
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": ["lineitem.ship_delay[days]", "lineitem.ship_delay[weeks]", "lineitem.count"],
            "limit": None,
        },
        """SELECT l_shipdate - o_orderdate AS d, (l_shipdate - o_orderdate) / 7 AS w, COUNT(*) AS n
           FROM lineitem JOIN orders ON l_orderkey = o_orderkey GROUP BY 1, 2""",
        False,
    ),
    "duration_months_quarters_years": (
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": [
                "lineitem.ship_delay[months]",
                "lineitem.ship_delay[quarters]",
                "lineitem.ship_delay[years]",
                "lineitem.count",
            ],
            "limit": None,
        },
        # Whole months: calendar months, less one when the end's day of the month is before
        # the start's (every delay here is positive).
        """SELECT m, m / 3 AS q, m / 12 AS y, COUNT(*) AS n FROM (
             SELECT (EXTRACT(YEAR FROM l_shipdate) - EXTRACT(YEAR FROM o_orderdate)) * 12
                    + EXTRACT(MONTH FROM l_shipdate) - EXTRACT(MONTH FROM o_orderdate)
                    - CASE WHEN EXTRACT(DAY FROM l_shipdate) < EXTRACT(DAY FROM o_orderdate)
                      THEN 1 ELSE 0 END AS m
             FROM lineitem JOIN orders ON l_orderkey = o_orderkey) AS t
           GROUP BY 1""",
        False,
    ),
    "duration_default_intervals": (
        {
            "table": "lineitem",
            "fields": ["lineitem.receipt_delay[hours]", "lineitem.count"],
            "filters": {
                "lineitem.receipt_delay[days]": {
                    "type": "number",
                    "kind": "GREATER_THAN",
                    "values": [25],
                }
            },
        },
        """SELECT (l_receiptdate - l_shipdate) * 24 AS h, COUNT(*) AS n FROM lineitem
           WHERE l_receiptdate - l_shipdate > 25 GROUP BY 1""",
        False,
    ),
    "order_by_field": (
        {
            "table": "orders",
            "fields": ["orders.priority_by_rank", "orders.count"],
            "sorts": [{"column_name": "orders.priority_by_rank"}],
        },
        """SELECT o_orderpriority, COUNT(*) FROM orders GROUP BY 1
           ORDER BY CASE o_orderpriority WHEN '5-LOW' THEN 1 WHEN '4-NOT SPECIFIED' THEN 2
             WHEN '3-MEDIUM' THEN 3 WHEN '2-HIGH' THEN 4 ELSE 5 END""",
        True,
    ),
    "order_by_field_descending": (
        {
            "table": "orders",
            "fields": ["orders.priority_by_rank"],
            "sorts": [{"column_name": "orders.priority_by_rank", "sort_descending": True}],
        },
        """SELECT o_orderpriority FROM orders GROUP BY 1
           ORDER BY CASE o_orderpriority WHEN '5-LOW' THEN 1 WHEN '4-NOT SPECIFIED' THEN 2
             WHEN '3-MEDIUM' THEN 3 WHEN '2-HIGH' THEN 4 ELSE 5 END DESC""",
        True,
    ),
    "order_by_field_with_fanout": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.priority_by_rank", "orders.count", "lineitem.count"],
            "sorts": [{"column_name": "orders.priority_by_rank"}],
        },
        """SELECT o_orderpriority, COUNT(DISTINCT o_orderkey) AS o, COUNT(l_orderkey) AS l
           FROM orders LEFT JOIN lineitem ON l_orderkey = o_orderkey GROUP BY 1
           ORDER BY CASE o_orderpriority WHEN '5-LOW' THEN 1 WHEN '4-NOT SPECIFIED' THEN 2
             WHEN '3-MEDIUM' THEN 3 WHEN '2-HIGH' THEN 4 ELSE 5 END""",
        True,
    ),
}


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return special_model()


def rows(engine: Any, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql, ordered = CASES[name]
    got = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    want = [tuple(int(v) if isinstance(v, float) else v for v in r) for r in rows(tpch_engine, sql)]
    assert_same_rows(got, want, ordered=ordered, nonempty=True)


def test_default_sort_uses_order_by_field(model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    query = {"table": "orders", "fields": ["orders.priority_by_rank"]}
    got = rows(tpch_engine, compile_query(model, query).sql)
    assert [r[0] for r in got] == ["5-LOW", "4-NOT SPECIFIED", "3-MEDIUM", "2-HIGH", "1-URGENT"]


def test_unparameterized_duration_is_null(model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    query = {"table": "lineitem", "fields": ["lineitem.ship_delay"], "limit": None}
    assert rows(tpch_engine, compile_query(model, query).sql) == [(None,)]


def test_an_interval_the_duration_lacks_is_a_missing_field(model: SemanticModel) -> None:
    query = {"table": "lineitem", "fields": ["lineitem.ship_delay[hours]", "lineitem.count"]}
    compiled = compile_query(model, query)
    assert compiled.missing_fields == ("lineitem.ship_delay[hours]",)


def test_field_metadata(model: SemanticModel) -> None:
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["nation.region_group", "orders.price_bin", "lineitem.ship_delay[weeks]",
                   "orders.priority_by_rank", "orders.count"],
    }  # fmt: skip
    meta = {f.fully_qualified_name: f.to_dict() for f in compile_query(model, query).fields}
    assert meta["nation.region_group"]["data_type"] == "STRING"
    assert meta["orders.price_bin"]["data_type"] == "STRING"
    weeks = meta["lineitem.ship_delay[weeks]"]
    assert weeks["data_type"] == "NUMBER" and "date_type" not in weeks
    assert weeks["field_name"] == "ship_delay[weeks]" and weeks["label"] == "Ship Delay Weeks"
    assert list(meta) == [*query["fields"]]  # the sort key is never an output column


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", CASES)
def test_every_dialect_renders_and_reparses(name: str, dialect: str, model: SemanticModel) -> None:
    sql = compile_query(model, CASES[name][0], dialect=dialect).sql
    sqlglot.parse_one(sql, read=dialect)


# ---------------------------------------------------------------- the pieces


def test_bin_labels() -> None:
    assert bin_labels([21, 65]) == ["< 21", ">= 21 and < 65", "65 and above"]
    assert bin_labels([100]) == ["< 100", "100 and above"]
    assert [number_text(v) for v in (21.0, 2.50, 1_000_000, -3)] == ["21", "2.5", "1000000", "-3"]


MOMENTS = [
    # start, end, seconds, minutes, hours, days, weeks, months, quarters, years
    ("2024-01-31 10:00", "2024-02-29 09:00", 2502000, 41700, 695, 28, 4, 0, 0, 0),
    ("2024-01-31 10:00", "2024-03-01 10:00", 2592000, 43200, 720, 30, 4, 1, 0, 0),
    ("2024-01-01 23:00", "2024-01-02 22:59:59", 86399, 1439, 23, 0, 0, 0, 0, 0),
    ("2024-03-01 00:00", "2024-01-31 12:00", -2548800, -42480, -708, -29, -4, -1, 0, 0),
    ("2024-01-15 00:00", "2025-04-14 00:00", 39312000, 655200, 10920, 455, 65, 14, 4, 1),
    ("2024-01-15 00:00", "2025-04-15 00:00", 39398400, 656640, 10944, 456, 65, 15, 5, 1),
    ("2023-12-31 23:59:59", "2024-01-01 00:00:00", 1, 0, 0, 0, 0, 0, 0, 0),
]
UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months", "quarters", "years")


@pytest.mark.parametrize("moment", MOMENTS, ids=[f"{m[0]}->{m[1]}" for m in MOMENTS])
def test_durations_count_whole_units(moment: tuple[Any, ...]) -> None:
    start, end, *expected = moment
    con = duckdb.connect()
    s, e = exp.column("a", table="t"), exp.column("b", table="t")
    got = []
    for unit in UNITS:
        sql = duration_expression(s, e, unit).sql(dialect="duckdb")
        source = f"(SELECT TIMESTAMP '{start}' AS a, TIMESTAMP '{end}' AS b) AS t"
        row = con.execute(f"SELECT {sql} FROM {source}").fetchone()
        assert row is not None
        got.append(row[0])
    assert got == expected
    null = duration_expression(s, exp.Null(), "days").sql(dialect="duckdb")
    assert con.execute(f"SELECT {null} FROM (SELECT TIMESTAMP '{start}' AS a) AS t").fetchone() == (
        None,
    )
