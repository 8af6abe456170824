"""``*_distinct_on`` measures (``custom_primary_key_sql``) on the TPC-H demo data: each
query's rows against hand-written SQL on DuckDB, and every dialect's rendering read back by
its own parser.

PostgreSQL and MariaDB run the same comparisons in tests/engines/test_distinct_on.py.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
import sqlglot

from assay.engines import DuckDBEngine
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel
from tests.special_model import distinct_on_model

pytestmark = pytest.mark.tpch

_ORDERS_BY_LINE = "FROM orders JOIN lineitem ON l_orderkey = o_orderkey"

#: (query, hand-written SQL in DuckDB's and PostgreSQL's common dialect)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "sum_through_fanout": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "lineitem.l_shipmode",
                "orders.total_once_per_order",
                "orders.average_once_per_order",
                "lineitem.count",
            ],
        },
        f"""SELECT s.l_shipmode, s.t, s.a, c.n FROM
             (SELECT l_shipmode, SUM(o_totalprice) AS t, AVG(o_totalprice) AS a FROM
               (SELECT DISTINCT l_shipmode, o_orderkey, o_totalprice {_ORDERS_BY_LINE}) AS d
              GROUP BY 1) AS s
           JOIN (SELECT l_shipmode, COUNT(*) AS n FROM lineitem GROUP BY 1) AS c
             ON c.l_shipmode = s.l_shipmode""",
    ),
    "median_percentile_through_fanout": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "lineitem.l_shipmode",
                "orders.median_once_per_order",
                "orders.p90_once_per_order",
            ],
        },
        f"""SELECT l_shipmode,
             PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY o_totalprice) AS m,
             PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY o_totalprice) AS p
           FROM (SELECT DISTINCT l_shipmode, o_orderkey, o_totalprice {_ORDERS_BY_LINE}) AS d
           GROUP BY 1""",
    ),
    "filtered_with_ordinary_fanned_measure": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "lineitem.l_returnflag",
                "orders.fulfilled_total_once_per_order",
                "orders.sum_totalprice",
                "lineitem.sum_quantity",
            ],
        },
        f"""SELECT d.l_returnflag, SUM(CASE WHEN o_orderstatus = 'F' THEN o_totalprice END) AS f,
             SUM(o_totalprice) AS t, MAX(q.n) AS n
           FROM (SELECT DISTINCT l_returnflag, o_orderkey, o_totalprice, o_orderstatus
                 {_ORDERS_BY_LINE}) AS d
           JOIN (SELECT l_returnflag, SUM(l_quantity) AS n FROM lineitem GROUP BY 1) AS q
             ON q.l_returnflag = d.l_returnflag
           GROUP BY 1""",
    ),
    "key_in_a_joined_view_without_fanout": (
        {"join_paths_from_topic_name": "lineitem", "fields": ["lineitem.order_total_once"]},
        """SELECT SUM(o_totalprice) FROM orders
           WHERE o_orderkey IN (SELECT l_orderkey FROM lineitem)""",
    ),
    "key_in_a_joined_view_by_line_dimension": (
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": ["lineitem.l_shipmode", "lineitem.order_total_once", "lineitem.count"],
        },
        """SELECT l_shipmode, SUM(t) AS t, SUM(n) AS n FROM
             (SELECT l_shipmode, o_orderkey, MAX(o_totalprice) AS t, COUNT(*) AS n
              FROM lineitem JOIN orders ON l_orderkey = o_orderkey GROUP BY 1, 2) AS d
           GROUP BY 1""",
    ),
    "composite_key_counts_each_line_once": (
        {
            "table": "lineitem",
            "fields": ["lineitem.l_linestatus", "lineitem.quantity_once_per_line"],
        },
        "SELECT l_linestatus, SUM(l_quantity) FROM lineitem GROUP BY 1",
    ),
    "value_of_another_view_keyed_there": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.o_orderstatus", "orders.customer_balance_once"],
        },
        """SELECT o_orderstatus, SUM(c_acctbal) FROM
             (SELECT DISTINCT o_orderstatus, c_custkey, c_acctbal
              FROM orders JOIN customer ON o_custkey = c_custkey) AS d
           GROUP BY 1""",
    ),
}


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return distinct_on_model()


#: cases MariaDB cannot run: its PERCENTILE_CONT is a window function only, so median and
#: percentile measures (distinct_on or not) are an error there, never a wrong answer
MARIADB_LACKS = frozenset({"median_percentile_through_fanout"})


def _norm(value: Any) -> Any:
    """Numbers as floats (engines answer decimals or floats), CHAR padding dropped."""
    if isinstance(value, int | float | Decimal):
        return float(value)
    return value.rstrip() if isinstance(value, str) else value


def rows(engine: Any, sql: str) -> list[tuple[Any, ...]]:
    """The rows in the order of their text values (each case's rows differ in those)."""
    out = [tuple(_norm(v) for v in r.values()) for r in engine.execute(sql).to_pylist()]
    return sorted(out, key=lambda row: [v for v in row if isinstance(v, str)])


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    """Row for row; numbers to 1e-7 relative: averages differ in their last digits between
    engines, and DuckDB and PostgreSQL type a percentile of a DECIMAL(15,2) column
    differently (a decimal, a double): 275264.248 and 275264.24."""
    assert got, "the query returned no rows: the case proves nothing"
    assert len(got) == len(want), (got, want)
    for mine, theirs in zip(got, want, strict=True):
        close = [
            math.isclose(a, b, rel_tol=1e-7) if isinstance(a, float) else a == b
            for a, b in zip(mine, theirs, strict=True)
        ]
        assert all(close), (mine, theirs)


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql = CASES[name]
    got = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    same_rows(got, rows(tpch_engine, sql))


def test_an_ordinary_sum_would_count_each_order_per_line(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """The case is a real trap: summing the order total over the joined lines is larger."""
    query = {"join_paths_from_topic_name": "lineitem", "fields": ["lineitem.order_total_once"]}
    (once,) = rows(tpch_engine, compile_query(model, query).sql)
    (per_line,) = rows(tpch_engine, f"SELECT SUM(o_totalprice) {_ORDERS_BY_LINE}")
    assert per_line[0] > 3 * once[0]


def test_a_key_without_values_is_not_aggregated(tpch_engine: DuckDBEngine) -> None:
    """Rows whose key is NULL have nothing to be counted once by: they are left out."""
    files = {
        "t.view": (
            "sql: SELECT 1 AS k, 10 AS v UNION ALL SELECT 1, 10 UNION ALL SELECT NULL, 5\n"
            "dimensions:\n  k: {}\n  v: {}\n"
            "measures:\n  total:\n    sql: ${v}\n    aggregate_type: sum_distinct_on\n"
            "    custom_primary_key_sql: ${k}\n"
        ),
    }
    model = build_model(files, name="nulls")
    sql = compile_query(model, {"table": "t", "fields": ["t.total"]}).sql
    assert rows(tpch_engine, sql) == [(10,)]


def test_field_metadata(model: SemanticModel) -> None:
    query = {"table": "orders", "fields": ["orders.total_once_per_order"]}
    (field,) = compile_query(model, query).fields
    assert field.to_dict()["aggregate_type"] == "sum_distinct_on"
    assert field.to_dict()["data_type"] == "NUMBER"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", CASES)
def test_every_dialect_renders_and_reparses(name: str, dialect: str, model: SemanticModel) -> None:
    sql = compile_query(model, CASES[name][0], dialect=dialect).sql
    sqlglot.parse_one(sql, read=dialect)


def test_spark_percentiles_are_exact(model: SemanticModel) -> None:
    """Spark refuses PERCENTILE_CONT(x, p); its PERCENTILE is the exact, interpolated one (never
    PERCENTILE_APPROX, which sqlglot makes of the WITHIN GROUP form: a silent estimate)."""
    sql = compile_query(model, CASES["median_percentile_through_fanout"][0], dialect="spark").sql
    assert "PERCENTILE(" in sql and "0.9)" in sql
    assert "PERCENTILE_CONT" not in sql and "APPROX" not in sql
