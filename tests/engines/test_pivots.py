"""Pivoted queries on DuckDB, PostgreSQL and MariaDB against hand-written SQL (TPC-H 0.1).

The hand-written SQL numbers rows and columns without window functions (a correlated count
of the distinct keys ranked before a key), so it is an independent statement of Omni's
numbering: rows by the row sorts, columns by the column sorts, ``limit`` and ``offset`` in
pivot rows, ``column_limit`` keeping columns 1..N and each row's first cell.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.engine_parity import _same
from tests.governed import governed_model

pytestmark = pytest.mark.tpch
NUMERIC = frozenset({"min_balance", "min_customers", "max_size"})


@dataclass(frozen=True)
class Case:
    name: str
    query: dict[str, Any]
    #: rows (the fields, row number, column number), ordered by row then column
    sql: str


def numbered(group: str, row_rank: str, col_rank: str, where: str) -> str:
    """The hand-written shape: ``g`` the grouped rows, ``rn``/``cn`` their numbers."""
    return f"""
WITH g AS ({group}),
numbered AS (SELECT g.*, ({row_rank}) AS rn, ({col_rank}) AS cn FROM g)
SELECT * FROM numbered x
WHERE {where}
ORDER BY rn, cn"""


#: customers and their orders' statuses: a third of TPC-H's customers have no orders
CUSTOMER_ORDERS = (
    "SELECT {row} AS r, {col} AS c, COUNT(DISTINCT c_custkey) AS n FROM customer "
    "LEFT JOIN orders ON o_custkey = c_custkey GROUP BY {row}, {col}"
)
CASES = [
    Case(
        # years 1996-1998 hold only status O (column 2): with column_limit 1 they keep it
        "years by status, one column, every row kept",
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "orders.o_orderdate[year]",
                "orders.o_orderstatus",
                "orders.count",
                "orders.sum_totalprice",
            ],
            "pivots": ["orders.o_orderstatus"],
            "column_limit": 1,
            "sorts": [{"column_name": "orders.o_orderdate[year]"}],
        },
        numbered(
            "SELECT EXTRACT(YEAR FROM o_orderdate) AS y, o_orderstatus AS s, COUNT(*) AS n, "
            "SUM(o_totalprice) AS t FROM orders GROUP BY EXTRACT(YEAR FROM o_orderdate), "
            "o_orderstatus",
            "SELECT COUNT(DISTINCT g2.y) FROM g g2 WHERE g2.y <= g.y",
            "SELECT COUNT(DISTINCT g2.s) FROM g g2 WHERE g2.s <= g.s",
            "cn <= 1 OR cn = (SELECT MIN(y2.cn) FROM numbered y2 WHERE y2.rn = x.rn)",
        ),
    ),
    Case(
        "segments by priority, descending both ways, a page of pivot rows",
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["customer.c_mktsegment", "orders.o_orderpriority", "orders.count"],
            "pivots": ["orders.o_orderpriority"],
            "column_limit": 3,
            "limit": 2,
            "offset": 1,
            "sorts": [
                {"column_name": "customer.c_mktsegment", "sort_descending": True},
                {
                    "column_name": "orders.o_orderpriority",
                    "sort_descending": True,
                    "is_column_sort": True,
                },
            ],
        },
        numbered(
            "SELECT c_mktsegment AS m, o_orderpriority AS p, COUNT(*) AS n "
            "FROM orders JOIN customer ON o_custkey = c_custkey GROUP BY c_mktsegment, "
            "o_orderpriority",
            "SELECT COUNT(DISTINCT g2.m) FROM g g2 WHERE g2.m >= g.m",
            "SELECT COUNT(DISTINCT g2.p) FROM g g2 WHERE g2.p >= g.p",
            "rn > 1 AND rn <= 3 AND cn <= 3",
        ),
    ),
    Case(
        # lineitem repeats its order: order totals are de-duplicated per group (a WITH query
        # inside the pivot wrapper), and there are two pivot fields
        "fanned-out measure, two pivot fields",
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": [
                "lineitem.l_returnflag",
                "lineitem.l_linestatus",
                "orders.o_orderstatus",
                "orders.sum_totalprice",
                "lineitem.count",
            ],
            "pivots": ["lineitem.l_linestatus", "orders.o_orderstatus"],
            "limit": 2,
        },
        numbered(
            "SELECT f, ls, os, SUM(o_totalprice) AS t, SUM(nl) AS n FROM ("
            "SELECT l_returnflag AS f, l_linestatus AS ls, o_orderstatus AS os, o_orderkey, "
            "o_totalprice, COUNT(*) AS nl FROM lineitem "
            "JOIN orders ON l_orderkey = o_orderkey "
            "GROUP BY l_returnflag, l_linestatus, o_orderstatus, o_orderkey, o_totalprice) k "
            "GROUP BY f, ls, os",
            "SELECT COUNT(DISTINCT g2.f) FROM g g2 WHERE g2.f <= g.f",
            "SELECT COUNT(*) FROM (SELECT DISTINCT g2.ls, g2.os FROM g g2) d "
            "WHERE d.ls < g.ls OR (d.ls = g.ls AND d.os <= g.os)",
            "rn <= 2",
        ),
    ),
    Case(
        # customers without orders have no status: a NULL row key ranks last, descending too
        "a NULL row key ranks last on every engine",
        {
            "join_paths_from_topic_name": "customer",
            "fields": ["orders.o_orderstatus", "customer.c_mktsegment", "customer.count"],
            "pivots": ["customer.c_mktsegment"],
            "sorts": [{"column_name": "orders.o_orderstatus", "sort_descending": True}],
        },
        numbered(
            CUSTOMER_ORDERS.format(row="o_orderstatus", col="c_mktsegment"),
            "CASE WHEN g.r IS NULL THEN (SELECT COUNT(DISTINCT g2.r) FROM g g2) + 1 "
            "ELSE (SELECT COUNT(DISTINCT g2.r) FROM g g2 WHERE g2.r >= g.r) END",
            "SELECT COUNT(DISTINCT g2.c) FROM g g2 WHERE g2.c <= g.c",
            "1 = 1",
        ),
    ),
    Case(
        "a NULL pivot value is the last column on every engine",
        {
            "join_paths_from_topic_name": "customer",
            "fields": ["customer.c_mktsegment", "orders.o_orderstatus", "customer.count"],
            "pivots": ["orders.o_orderstatus"],
            "sorts": [{"column_name": "customer.c_mktsegment"}],
        },
        numbered(
            CUSTOMER_ORDERS.format(row="c_mktsegment", col="o_orderstatus"),
            "SELECT COUNT(DISTINCT g2.r) FROM g g2 WHERE g2.r <= g.r",
            "CASE WHEN g.c IS NULL THEN (SELECT COUNT(DISTINCT g2.c) FROM g g2) + 1 "
            "ELSE (SELECT COUNT(DISTINCT g2.c) FROM g g2 WHERE g2.c <= g.c) END",
            "1 = 1",
        ),
    ),
    Case(
        # only 1995 has a P cell: it comes first, the years without one follow (NULL keys
        # last), in year order
        "rows sorted by a measure at one pivot value",
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.o_orderdate[year]", "orders.o_orderstatus", "orders.count"],
            "pivots": ["orders.o_orderstatus"],
            "limit": 3,
            "sorts": [
                {
                    "column_name": "orders.count",
                    "sort_descending": True,
                    "pivot_value_map": {"orders.o_orderstatus": "P"},
                }
            ],
        },
        """
WITH g AS (SELECT EXTRACT(YEAR FROM o_orderdate) AS y, o_orderstatus AS s, COUNT(*) AS n
           FROM orders GROUP BY EXTRACT(YEAR FROM o_orderdate), o_orderstatus),
k AS (SELECT DISTINCT g0.y, (SELECT g3.n FROM g g3 WHERE g3.y = g0.y AND g3.s = 'P') AS kv
      FROM g g0),
numbered AS (
  SELECT g.*,
    1 + (SELECT COUNT(*) FROM k k1 JOIN k k2
         ON k2.kv > k1.kv OR (k2.kv IS NOT NULL AND k1.kv IS NULL)
         OR ((k2.kv = k1.kv OR (k2.kv IS NULL AND k1.kv IS NULL)) AND k2.y < k1.y)
         WHERE k1.y = g.y) AS rn,
    (SELECT COUNT(DISTINCT g2.s) FROM g g2 WHERE g2.s <= g.s) AS cn
  FROM g)
SELECT * FROM numbered x WHERE rn <= 3 ORDER BY rn, cn""",
    ),
]


#: Row totals, re-aggregated: a year's distinct customers over all its statuses (not the sum
#: of its cells), and an order's total once per return flag though its lines may have both
#: line statuses. Measures not named in row_totals are NULL on the total rows.
TOTAL_CASES = [
    Case(
        "row totals of a count distinct, one column kept",
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "orders.o_orderdate[year]",
                "orders.o_orderstatus",
                "orders.count",
                "orders.count_customers",
            ],
            "pivots": ["orders.o_orderstatus"],
            "column_limit": 1,
            "limit": 5,
            "row_totals": {"orders.count_customers": {"type": "aggregation"}},
        },
        """
WITH g AS (SELECT EXTRACT(YEAR FROM o_orderdate) AS y, o_orderstatus AS s, COUNT(*) AS n,
                  COUNT(DISTINCT o_custkey) AS cu
           FROM orders GROUP BY EXTRACT(YEAR FROM o_orderdate), o_orderstatus),
numbered AS (SELECT g.*, (SELECT COUNT(DISTINCT g2.y) FROM g g2 WHERE g2.y <= g.y) AS rn,
                    (SELECT COUNT(DISTINCT g2.s) FROM g g2 WHERE g2.s <= g.s) AS cn FROM g),
t AS (SELECT EXTRACT(YEAR FROM o_orderdate) AS y, COUNT(DISTINCT o_custkey) AS cu
      FROM orders GROUP BY EXTRACT(YEAR FROM o_orderdate))
SELECT * FROM (
  SELECT y, s, n, cu, rn, cn, NULL AS ind FROM numbered x
  WHERE cn <= 1 OR cn = (SELECT MIN(y2.cn) FROM numbered y2 WHERE y2.rn = x.rn)
  UNION ALL
  SELECT t.y, NULL, NULL, t.cu, (SELECT COUNT(DISTINCT g2.y) FROM g g2 WHERE g2.y <= t.y),
         NULL, 'row_total' FROM t) u
WHERE rn <= 5
ORDER BY rn, CASE WHEN cn IS NULL THEN 1 ELSE 0 END, cn""",
    ),
    Case(
        "row totals of a fanned-out measure",
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": ["lineitem.l_returnflag", "lineitem.l_linestatus", "orders.sum_totalprice"],
            "pivots": ["lineitem.l_linestatus"],
            "row_totals": {"orders.sum_totalprice": {"type": "aggregation"}},
        },
        """
WITH k AS (SELECT DISTINCT l_returnflag AS f, l_linestatus AS ls, o_orderkey, o_totalprice
           FROM lineitem JOIN orders ON l_orderkey = o_orderkey),
g AS (SELECT f, ls, SUM(o_totalprice) AS t FROM k GROUP BY f, ls),
t AS (SELECT f, SUM(o_totalprice) AS t
      FROM (SELECT DISTINCT f, o_orderkey, o_totalprice FROM k) d GROUP BY f)
SELECT * FROM (
  SELECT f, ls, t, (SELECT COUNT(DISTINCT g2.f) FROM g g2 WHERE g2.f <= g.f) AS rn,
         (SELECT COUNT(DISTINCT g2.ls) FROM g g2 WHERE g2.ls <= g.ls) AS cn, NULL AS ind FROM g
  UNION ALL
  SELECT t.f, NULL, t.t, (SELECT COUNT(DISTINCT g2.f) FROM g g2 WHERE g2.f <= t.f), NULL,
         'row_total' FROM t) u
ORDER BY rn, CASE WHEN cn IS NULL THEN 1 ELSE 0 END, cn""",
    ),
]


@pytest.mark.parametrize("case", TOTAL_CASES, ids=[c.name for c in TOTAL_CASES])
def test_row_totals_equal_hand_written_sql(
    case: Case, tpch_model: SemanticModel, engine: Engine, tpch_engine: DuckDBEngine
) -> None:
    got = rows(engine, compile_query(tpch_model, case.query, dialect=engine.dialect).sql)
    want = rows(oracle(engine, tpch_engine), case.sql)
    assert any(r[-1] == "row_total" for r in want)
    assert_same(got, want)
    cells = [r for r in got if r[-1] is None]
    totals = [r for r in got if r[-1] == "row_total"]
    assert len(totals) == len({r[-3] for r in cells})  # one per pivot row
    if "column_limit" not in case.query:  # every cell shown: the total is not their sum
        per_row: dict[Any, float] = {}
        for r in cells:
            per_row[r[-3]] = per_row.get(r[-3], 0) + float(r[-4])
        assert any(float(t[-4]) < per_row[t[-3]] for t in totals)


def plain(value: Any) -> Any:
    """A year bucket as its year: the hand-written SQL groups by EXTRACT(YEAR ...)."""
    if isinstance(value, datetime | date):
        return value.year
    return value


def oracle(engine: Engine, duckdb: DuckDBEngine) -> Engine:
    """Where the hand-written SQL runs: Spark cannot plan some of it (a correlated subquery
    it fails on internally; ``t.t`` read as a struct field), so Spark is held to DuckDB's."""
    return duckdb if engine.dialect == "spark" else engine


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(plain(v) for v in r.values()) for r in engine.execute(sql).to_pylist()]


def assert_same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert want, "the hand-written SQL returns no rows: the case proves nothing"
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert len(g) == len(w) and all(_same(a, b) for a, b in zip(g, w, strict=True)), (
            f"row {i}: {g} != {w}"
        )


@pytest.fixture(params=["duckdb", "postgres", "mariadb", "spark"])
def engine(request: pytest.FixtureRequest, tpch_engine: DuckDBEngine) -> Engine:
    if request.param == "duckdb":
        return tpch_engine
    found: Engine = request.getfixturevalue(f"tpch_{request.param}")
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pivoted_rows_equal_hand_written_sql(
    case: Case, tpch_model: SemanticModel, engine: Engine, tpch_engine: DuckDBEngine
) -> None:
    compiled = compile_query(tpch_model, case.query, dialect=engine.dialect)
    got = rows(engine, compiled.sql)
    want = rows(oracle(engine, tpch_engine), case.sql)
    if "NULL" in case.name:  # the case holds the NULL it is about
        assert any(None in r for r in want)
    if case.query.get("offset"):  # a page's rows are numbered from 1
        offset = case.query["offset"]
        want = [(*r[:-2], r[-2] - offset, r[-1]) for r in want]
    assert_same(got, want)


def test_column_limit_cuts_columns_and_limit_counts_pivot_rows(
    tpch_model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """The first case cuts: with every column, 1995 has three cells; cut to one column,
    each year keeps one cell (1996-1998 their first, column 2)."""
    query = CASES[0].query
    cut = rows(tpch_engine, compile_query(tpch_model, query).sql)
    whole = rows(tpch_engine, compile_query(tpch_model, {**query, "column_limit": 50}).sql)
    assert len(whole) > len(cut) == len({r[-2] for r in cut}) == 7
    assert {r[-1] for r in whole} == {1, 2, 3} and {r[-1] for r in cut} == {1, 2}
    # four pivot rows are more than four SQL rows: 1995's three cells all stay
    limited = rows(tpch_engine, compile_query(tpch_model, {**query, "column_limit": 50,
                                                          "limit": 4}).sql)  # fmt: skip
    assert {r[-2] for r in limited} == {1, 2, 3, 4}
    assert len(limited) > 4
    assert limited == [r for r in whole if r[-2] <= 4]


def test_an_access_filtered_user_sees_only_their_pivot_values(tpch_engine: DuckDBEngine) -> None:
    model = governed_model()
    query = {"join_paths_from_topic_name": "customer",
             "fields": ["customer.c_mktsegment", "region.r_name", "customer.count"],
             "pivots": ["region.r_name"]}  # fmt: skip
    defaults = {"segment_pattern": ("%",), "min_balance": ("-1000",), "min_customers": ("0",),
                "max_size": ("50",), "omni_is_org_admin": ("false",)}  # fmt: skip

    def as_user(regions: tuple[str, ...]) -> list[tuple[Any, ...]]:
        who = Viewer("u", {**defaults, "region": regions}, NUMERIC)
        return rows(tpch_engine, compile_query(model, query, viewer=who).sql)

    everyone = as_user(("ALL",))
    two = as_user(("ASIA", "EUROPE"))
    assert {r[1] for r in everyone} == {"AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"}
    assert {r[1] for r in two} == {"ASIA", "EUROPE"}
    # their columns are numbered among the values they may see
    assert {(r[1], r[-1]) for r in two} == {("ASIA", 1), ("EUROPE", 2)}
    assert [r[:3] for r in two] == [r[:3] for r in everyone if r[1] in ("ASIA", "EUROPE")]
