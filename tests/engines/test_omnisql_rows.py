"""OmniSQL statements return, row for row and in order, what hand-written SQL returns, on
DuckDB, PostgreSQL and MariaDB (TPC-H at scale 0.1): plain and governed (the governed tpch
copy, tests/governed.py), including a WHERE that tries to widen the user's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.engine_parity import _norm, _same, rows
from tests.governed import governed_model

pytestmark = pytest.mark.tpch
NUMERIC = frozenset({"min_balance", "min_customers", "max_size"})
DEFAULTS = {"segment_pattern": ("%",), "min_balance": ("-1000",), "min_customers": ("0",),
            "max_size": ("50",), "omni_is_org_admin": ("false",),
            "department": ("finance",)}  # fmt: skip
LINES = (
    "FROM lineitem l JOIN orders o ON l.l_orderkey = o.o_orderkey "
    "JOIN customer c ON o.o_custkey = c.c_custkey "
    "JOIN nation n ON c.c_nationkey = n.n_nationkey JOIN region r ON n.n_regionkey = r.r_regionkey"
)
REGIONS = (
    "FROM customer c JOIN nation n ON c.c_nationkey = n.n_nationkey "
    "JOIN region r ON n.n_regionkey = r.r_regionkey"
)


# (each hand-written column is named: a row is read as a dict, so repeated names would merge)
@dataclass(frozen=True)
class Case:
    name: str
    omnisql: str
    sql: str
    governed: dict[str, tuple[str, ...]] | None = field(default=None)


CASES = [
    Case(
        "ad-hoc aggregates beside a dimension (what omniframes sends)",
        "SELECT ${orders.o_orderpriority}, COUNT(${orders.o_orderkey}) AS of_expr_1, "
        "SUM(${orders.o_totalprice}) AS of_expr_2, COUNT(DISTINCT ${orders.o_custkey}) AS "
        "of_expr_3 FROM ${orders} GROUP BY 1 ORDER BY 1 LIMIT 50000",
        "SELECT o_orderpriority, COUNT(o_orderkey) AS a, SUM(o_totalprice) AS b, "
        "COUNT(DISTINCT o_custkey) AS c FROM orders GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "a governed measure through the topic's joins, WHERE, HAVING, ORDER BY and LIMIT",
        "SELECT ${region.r_name}, ${lineitem.revenue}, MAX(${orders.o_totalprice}) AS top "
        "FROM ${lineitem} WHERE ${orders.o_orderdate} >= DATE '1995-01-01' "
        "AND ${orders.o_orderdate} < DATE '1996-01-01' GROUP BY 1 "
        "HAVING COUNT(DISTINCT ${orders.o_orderkey}) > 100 ORDER BY 2 DESC LIMIT 3",
        "SELECT r.r_name, SUM(l.l_extendedprice * (1 - l.l_discount)) AS a, "
        f"MAX(o.o_totalprice) AS b {LINES} WHERE o.o_orderdate >= DATE '1995-01-01' "
        "AND o.o_orderdate < DATE '1996-01-01' GROUP BY r.r_name "
        "HAVING COUNT(DISTINCT o.o_orderkey) > 100 ORDER BY 2 DESC LIMIT 3",
    ),
    Case(
        "arithmetic over fields (with_column)",
        "SELECT ${orders.o_orderstatus}, SUM(${orders.o_totalprice} * 2) AS of_expr_1, "
        "AVG(${orders.o_totalprice}) / 1000 AS of_expr_2 FROM ${orders} GROUP BY 1 ORDER BY 1",
        "SELECT o_orderstatus, SUM(o_totalprice * 2) AS a, AVG(o_totalprice) / 1000 AS b "
        "FROM orders GROUP BY 1 ORDER BY 1",
    ),
    Case(
        "governed: two regions, a balance floor, groups over 600; an OR tries to widen them",
        "SELECT ${region.r_name}, COUNT(*) AS n, SUM(${customer.c_acctbal}) AS balance "
        "FROM ${customer} WHERE ${region.r_name} <> 'x' OR 1 = 1 GROUP BY 1 ORDER BY 1",
        f"SELECT r.r_name, COUNT(*) AS a, SUM(c.c_acctbal) AS b {REGIONS} WHERE r.r_name IN "
        "('ASIA', 'EUROPE') AND c.c_acctbal >= 0 GROUP BY r.r_name HAVING COUNT(*) > 600 "
        "ORDER BY 1",
        {"region": ("ASIA", "EUROPE"), "min_balance": ("0",), "min_customers": ("600",)},
    ),
]


@pytest.fixture(params=["duckdb", "postgres", "mariadb"])
def engine(request: pytest.FixtureRequest, tpch_engine: DuckDBEngine) -> Engine:
    if request.param == "duckdb":
        return tpch_engine
    found: Engine = request.getfixturevalue(f"tpch_{request.param}")
    return found


@pytest.fixture(scope="module")
def governed() -> SemanticModel:
    return governed_model()


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    return len(got) == len(want) and all(
        len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(got, want, strict=True)
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_omnisql_rows_equal_hand_written_sql(
    case: Case, engine: Engine, tpch_model: SemanticModel, governed: SemanticModel
) -> None:
    query = {"fields": [], "table": "", "limit": 1, "userEditedSQL": case.omnisql}
    model, who = tpch_model, None
    if case.governed is not None:
        model, who = governed, Viewer("u", {**DEFAULTS, **case.governed}, NUMERIC)
    compiled = compile_query(model, query, dialect=engine.dialect, viewer=who)
    got, want = rows(engine, compiled.sql), rows(engine, case.sql)
    assert want, f"{case.name}: the hand-written SQL returns no rows: the case proves nothing"
    assert same_rows(got, want), (
        f"{case.name}:\n got  {[tuple(map(_norm, r)) for r in got]}\n"
        f" want {[tuple(map(_norm, r)) for r in want]}"
    )
    if who is not None:  # the rules narrowed the answer: everyone's differs
        everyone = Viewer("u", {**DEFAULTS, "region": ("ALL",)}, NUMERIC)
        free = compile_query(model, query, dialect=engine.dialect, viewer=everyone)
        assert not same_rows(rows(engine, free.sql), want), f"{case.name}: the rules did nothing"
