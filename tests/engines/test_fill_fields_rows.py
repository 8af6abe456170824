"""``fill_fields`` rows on DuckDB, PostgreSQL and MariaDB equal hand-written SQL.

TPC-H has gaps once filtered: partly fulfilled orders ('P') stop on 1995-06-16, so a daily
series to 06-24 has eight empty days; orders over 400,000 skip whole months; every line
shipped from 1997 on has return flag 'N'. The hand-written SQL builds its series
independently (generate_series, or a recursive CTE on MariaDB) and LEFT JOINs the counts.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.governed import governed_model
from tests.rows import assert_same_rows

pytestmark = pytest.mark.tpch

DATE = "orders.o_orderdate"
P_FILTERS = {
    DATE: {
        "type": "date",
        "kind": "BETWEEN",
        "left_side": "1995-06-10",
        "right_side": "1995-06-25",
    },
    "orders.o_orderstatus": {"type": "string", "kind": "EQUALS", "values": ["P"]},
}
DAILY: dict[str, Any] = {
    "join_paths_from_topic_name": "orders",
    "fields": [f"{DATE}[date]", "orders.o_orderpriority", "orders.count"],
    "fill_fields": [f"{DATE}[date]"],
    "filters": P_FILTERS,
    "sorts": [{"column_name": f"{DATE}[date]"}, {"column_name": "orders.o_orderpriority"}],
}
P_COUNTS = """SELECT o_orderdate AS day, o_orderpriority AS prio, COUNT(*) AS n FROM orders
WHERE o_orderstatus = 'P' AND o_orderdate >= DATE '1995-06-10' AND o_orderdate < DATE '1995-06-25'
GROUP BY 1, 2"""
DAILY_TAIL = f"""c AS ({P_COUNTS}), p AS (SELECT DISTINCT prio FROM c)
SELECT d.day, p.prio, c.n FROM d CROSS JOIN p LEFT JOIN c ON c.day = d.day AND c.prio = p.prio
ORDER BY 1, 2"""
DAILY_SQL = {
    "duckdb": f"""WITH d AS (SELECT CAST(g AS DATE) AS day FROM generate_series(DATE '1995-06-10',
DATE '1995-06-24', INTERVAL 1 DAY) AS t(g)), {DAILY_TAIL}""",
    "postgres": f"""WITH d AS (SELECT CAST(g AS DATE) AS day FROM generate_series(DATE '1995-06-10',
DATE '1995-06-24', INTERVAL '1 day') AS t(g)), {DAILY_TAIL}""",
    "mysql": f"""WITH RECURSIVE d AS (SELECT DATE '1995-06-10' AS day UNION ALL
SELECT day + INTERVAL 1 DAY FROM d WHERE day < DATE '1995-06-24'), {DAILY_TAIL}""",
}

MONTHLY: dict[str, Any] = {
    "join_paths_from_topic_name": "orders",
    "fields": [f"{DATE}[month]", "orders.count", "orders.sum_totalprice"],
    "fill_fields": [f"{DATE}[month]"],
    "filters": {
        DATE: {"type": "date", "kind": "BETWEEN", "left_side": "1993-01", "right_side": "1995-01"},
        "orders.o_totalprice": {"type": "number", "kind": "GREATER_THAN", "values": [400000]},
    },
    "sorts": [{"column_name": f"{DATE}[month]"}],
}
MONTHLY_SQL = """WITH m AS (SELECT CAST(g AS DATE) AS month FROM generate_series(DATE '1993-01-01',
DATE '1994-12-01', INTERVAL '1 month') AS t(g)),
c AS (SELECT DATE_TRUNC('month', o_orderdate) AS month, COUNT(*) AS n, SUM(o_totalprice) AS s
FROM orders WHERE o_totalprice > 400000 AND o_orderdate >= DATE '1993-01-01'
AND o_orderdate < DATE '1995-01-01' GROUP BY 1)
SELECT m.month, c.n, c.s FROM m LEFT JOIN c ON c.month = m.month ORDER BY 1"""

WEEKDAYS: dict[str, Any] = {
    "join_paths_from_topic_name": "orders",
    "fields": [f"{DATE}[day_of_week_num]", "orders.count"],
    "fill_fields": [f"{DATE}[day_of_week_num]"],
    "filters": {
        DATE: {
            "type": "date",
            "kind": "BETWEEN",
            "left_side": "1995-06-12",
            "right_side": "1995-06-15",
        }
    },
    "sorts": [{"column_name": f"{DATE}[day_of_week_num]"}],
}  # Monday 12 June to Wednesday 14 June 1995: four weekdays with no orders
WEEKDAYS_SQL = """WITH d AS (SELECT * FROM (VALUES (1), (2), (3), (4), (5), (6), (7)) AS t(n)),
c AS (SELECT o_orderdate - DATE '1995-06-12' + 1 AS n, COUNT(*) AS k FROM orders
WHERE o_orderdate >= DATE '1995-06-12' AND o_orderdate < DATE '1995-06-15' GROUP BY 1)
SELECT d.n, c.k FROM d LEFT JOIN c ON c.n = d.n ORDER BY 1"""

FLAGS: dict[str, Any] = {
    "join_paths_from_topic_name": "lineitem",
    "fields": ["lineitem.l_returnflag", "lineitem.l_linestatus", "lineitem.count"],
    "fill_fields": ["lineitem.l_returnflag"],
    "filters": {
        "lineitem.l_shipdate": {"type": "date", "kind": "ON_OR_AFTER", "left_side": "1997-01-01"}
    },
    "sorts": [{"column_name": "lineitem.l_returnflag"}, {"column_name": "lineitem.l_linestatus"}],
}  # all_values [A, N, R]: only N ships from 1997 on
FLAGS_SQL = """WITH f AS (SELECT * FROM (VALUES ('A'), ('N'), ('R')) AS t(flag)),
c AS (SELECT l_returnflag AS flag, l_linestatus AS st, COUNT(*) AS n FROM lineitem
WHERE l_shipdate >= DATE '1997-01-01' GROUP BY 1, 2),
s AS (SELECT DISTINCT st FROM c)
SELECT f.flag, s.st, c.n FROM f CROSS JOIN s LEFT JOIN c ON c.flag = f.flag AND c.st = s.st
ORDER BY 1, 2"""

CASES = {
    "daily": (DAILY, DAILY_SQL["duckdb"], DAILY_SQL["postgres"]),
    "monthly": (MONTHLY, MONTHLY_SQL, MONTHLY_SQL),
    "weekdays": (WEEKDAYS, WEEKDAYS_SQL, WEEKDAYS_SQL),
    "all_values": (FLAGS, FLAGS_SQL, FLAGS_SQL),
}


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def numbers(got: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Counts and day numbers as ints: PostgreSQL's EXTRACT is numeric, MariaDB's sum decimal."""
    return [tuple(int(v) if hasattr(v, "as_integer_ratio") and v == int(v) else v for v in r)
            for r in got]  # fmt: skip


def check(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert any(None in r for r in want), "the case must have a gap to fill"
    assert_same_rows(numbers(got), numbers(want), ordered=True, nonempty=True)


@pytest.mark.parametrize("name", CASES)
def test_duckdb_fills_as_hand_written_sql(
    name: str, tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, duck_sql, _ = CASES[name]
    got = rows(tpch_engine, compile_query(tpch_model, query, dialect="duckdb").sql)
    check(got, rows(tpch_engine, duck_sql))


@pytest.mark.parametrize("name", CASES)
def test_postgres_fills_as_hand_written_sql(
    name: str, tpch_model: SemanticModel, tpch_postgres: Engine
) -> None:
    query, _, pg_sql = CASES[name]
    got = rows(tpch_postgres, compile_query(tpch_model, query, dialect="postgres").sql)
    check(got, rows(tpch_postgres, pg_sql))


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("engine_name", ["tpch_mariadb", "tpch_spark"])
def test_engine_fills_as_duckdb_does(
    name: str,
    engine_name: str,
    tpch_model: SemanticModel,
    tpch_engine: DuckDBEngine,
    request: pytest.FixtureRequest,
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    query, duck_sql, _ = CASES[name]
    got = rows(engine, compile_query(tpch_model, query, dialect=engine.dialect).sql)
    check(got, rows(tpch_engine, duck_sql))


def test_mariadb_daily_fill_equals_its_own_hand_written_sql(
    tpch_model: SemanticModel, tpch_mariadb: Engine
) -> None:
    got = rows(tpch_mariadb, compile_query(tpch_model, DAILY, dialect="mysql").sql)
    check(got, rows(tpch_mariadb, DAILY_SQL["mysql"]))


def test_the_limit_counts_filled_rows(tpch_model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    """Late in the series every row is a filled one: the limit and offset cut after the fill."""
    query = {**DAILY, "limit": 5, "offset": 40}
    got = rows(tpch_engine, compile_query(tpch_model, query, dialect="duckdb").sql)
    want = rows(tpch_engine, f"{DAILY_SQL['duckdb']} LIMIT 5 OFFSET 40")
    assert [r[2] for r in want] == [None] * 5
    assert_same_rows(got, want, ordered=True, nonempty=True)


def test_filled_rows_keep_the_grain_type(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """The month buckets stay TIMESTAMP (what DATE_TRUNC gives), filled or not."""
    plain = {k: v for k, v in MONTHLY.items() if k != "fill_fields"}
    filled = tpch_engine.execute(compile_query(tpch_model, MONTHLY, dialect="duckdb").sql)
    unfilled = tpch_engine.execute(compile_query(tpch_model, plain, dialect="duckdb").sql)
    assert filled.schema == unfilled.schema
    assert filled.num_rows == 24 > unfilled.num_rows


LATE: dict[str, Any] = {
    "join_paths_from_topic_name": "lineitem",
    "fields": ["lineitem.is_late", "lineitem.count"],
    "fill_fields": ["lineitem.is_late"],
    "filters": {"lineitem.is_late": {"type": "boolean", "is_negative": False}},
    "sorts": [{"column_name": "lineitem.is_late"}],
}  # only late lines are kept: FALSE is filled
LATE_SQL = """WITH b AS (SELECT * FROM (VALUES (TRUE), (FALSE)) AS t(late)),
c AS (SELECT l_receiptdate > l_commitdate AS late, COUNT(*) AS n FROM lineitem
WHERE l_receiptdate > l_commitdate GROUP BY 1)
SELECT b.late, c.n FROM b LEFT JOIN c ON c.late = b.late ORDER BY 1"""


@pytest.mark.parametrize("engine_name", ["tpch_engine", "tpch_postgres"])
def test_a_boolean_fills_true_and_false(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    dialect = "duckdb" if engine_name == "tpch_engine" else "postgres"
    got = rows(engine, compile_query(tpch_model, LATE, dialect=dialect).sql)
    want = rows(engine, LATE_SQL)
    assert [r[0] for r in want] == [False, True] and want[0][1] is None
    check(got, want)


def _governed_viewer(**values: Any) -> Viewer:
    attrs: dict[str, tuple[str, ...]] = {
        "segment_pattern": ("%",), "min_balance": ("-1000",), "min_customers": ("0",),
        "max_size": ("50",), "omni_is_org_admin": ("false",),
    }  # fmt: skip
    for name, value in values.items():
        attrs[name] = tuple(value)
    numeric = frozenset({"min_balance", "min_customers", "max_size"})
    return Viewer("u-" + "-".join(sorted(values)), attrs, numeric, role="QUERIER")


@pytest.mark.parametrize(
    ("topic", "field", "who", "shown"),
    [
        ("customer", "region.r_name", {"region": ["ASIA"]}, ["ASIA"]),
        ("customer", "region.r_name", {"region": ["ASIA", "EUROPE"]}, ["ASIA", "EUROPE"]),
        ("customer", "region.r_name", {"region": ["ALL"]},
         ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]),
        ("lineitem", "customer.c_mktsegment", {"segment_pattern": ["BUILD%", "FURN%"]},
         ["BUILDING", "FURNITURE"]),
    ],
)  # fmt: skip
def test_a_filled_all_values_field_shows_only_values_the_user_may_see(
    tpch_engine: DuckDBEngine, topic: str, field: str, who: dict[str, list[str]], shown: list[str]
) -> None:
    """The fill comes from the model's all_values, cut by the user's access filter: a user of
    one region never sees another region's name, not even with an empty row."""
    query = {
        "join_paths_from_topic_name": topic,
        "fields": [field, "customer.count" if topic == "customer" else "lineitem.count"],
        "fill_fields": [field],
        "sorts": [{"column_name": field}],
    }
    compiled = compile_query(governed_model(), query, viewer=_governed_viewer(**who))
    got = rows(tpch_engine, compiled.sql)
    assert [r[0] for r in got] == shown
    assert all(r[1] for r in got)  # every value shown has the user's rows: nothing leaked
