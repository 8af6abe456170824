"""Governed queries return, row for row, what hand-written SQL with the same rules returns, on
DuckDB, PostgreSQL and MariaDB (TPC-H at scale 0.1; the model is tests/governed.py).

Each case is a user (their attribute values), a semantic query, and the SQL a person would
write to apply that user's rules by hand. The answers must match to the cent, and must differ
from the same query for a user the rules do not restrict, so no case passes by filtering
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.engine_parity import _norm, _same, _sort_key, rows
from tests.governed import governed_model

pytestmark = pytest.mark.tpch
NUMERIC = frozenset({"min_balance", "min_customers", "max_size"})
DEFAULTS = {"segment_pattern": ("%",), "min_balance": ("-1000",), "min_customers": ("0",),
            "max_size": ("50",), "omni_is_org_admin": ("false",)}  # fmt: skip
UNRESTRICTED = {"region": ("ALL",)}


@dataclass(frozen=True)
class Case:
    name: str
    values: dict[str, tuple[str, ...]]
    query: dict[str, Any]
    sql: str


JOIN_REGION = (
    "FROM customer c JOIN nation n ON c.c_nationkey = n.n_nationkey "
    "JOIN region r ON n.n_regionkey = r.r_regionkey"
)
LINES = (
    "FROM lineitem l JOIN orders o ON l.l_orderkey = o.o_orderkey "
    "JOIN customer c ON o.o_custkey = c.c_custkey"
)
CASES = [
    Case(
        "two regions, a balance floor",
        {"region": ("ASIA", "EUROPE"), "min_balance": ("0",)},
        {"join_paths_from_topic_name": "customer", "fields": ["region.r_name", "customer.count"]},
        f"SELECT r.r_name, COUNT(*) {JOIN_REGION} WHERE r.r_name IN ('ASIA', 'EUROPE') "
        "AND c.c_acctbal >= 0 GROUP BY r.r_name",
    ),
    Case(
        "one region, nothing of it selected (the join is forced)",
        {"region": ("AMERICA",)},
        {"join_paths_from_topic_name": "customer", "fields": ["customer.c_mktsegment",
                                                              "customer.count"]},
        f"SELECT c.c_mktsegment, COUNT(*) {JOIN_REGION} WHERE r.r_name = 'AMERICA' "
        "AND c.c_acctbal >= -1000 GROUP BY c.c_mktsegment",
    ),
    Case(
        "groups of more than N customers (always_having_sql)",
        {"region": ("ALL",), "min_customers": ("610",)},
        {"join_paths_from_topic_name": "customer", "fields": ["nation.n_name", "customer.count"]},
        f"SELECT n.n_name, COUNT(*) {JOIN_REGION} WHERE c.c_acctbal >= -1000 "
        "GROUP BY n.n_name HAVING COUNT(*) > 610",
    ),
    Case(
        "segments LIKE the user's patterns (wildcard access filter)",
        {"segment_pattern": ("AUTO%", "MACH%")},
        {"join_paths_from_topic_name": "lineitem",
         "fields": ["customer.c_mktsegment", "lineitem.revenue"]},
        "SELECT c.c_mktsegment, SUM(l.l_extendedprice * (1 - l.l_discount)) "
        f"{LINES} WHERE c.c_mktsegment LIKE 'AUTO%' OR c.c_mktsegment LIKE 'MACH%' "
        "GROUP BY c.c_mktsegment",
    ),
    Case(
        "a join's where_sql, when the query uses the join",
        {"max_size": ("20",), "segment_pattern": ("BUILDING",)},
        {"join_paths_from_topic_name": "lineitem", "fields": ["part.p_brand", "lineitem.count"]},
        f"SELECT p.p_brand, COUNT(*) {LINES} JOIN part p ON l.l_partkey = p.p_partkey "
        "WHERE c.c_mktsegment LIKE 'BUILDING' AND p.p_size <= 20 GROUP BY p.p_brand",
    ),
    Case(
        "the same rules without the join: no where_sql",
        {"max_size": ("20",), "segment_pattern": ("BUILDING",)},
        {"join_paths_from_topic_name": "lineitem", "fields": ["lineitem.l_shipmode",
                                                              "lineitem.count"]},
        f"SELECT l.l_shipmode, COUNT(*) {LINES} WHERE c.c_mktsegment LIKE 'BUILDING' "
        "GROUP BY l.l_shipmode",
    ),
]  # fmt: skip


def viewer(values: dict[str, tuple[str, ...]]) -> Viewer:
    return Viewer("u", {**DEFAULTS, **values}, NUMERIC)


def normalized(got: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(_norm(v) for v in r) for r in got), key=_sort_key)


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> bool:
    g, w = normalized(got), normalized(want)
    return len(g) == len(w) and all(
        len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
        for a, b in zip(g, w, strict=True)
    )


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return governed_model()


@pytest.fixture(params=["duckdb", "postgres", "mariadb"])
def engine(request: pytest.FixtureRequest, tpch_engine: DuckDBEngine) -> Engine:
    if request.param == "duckdb":
        return tpch_engine
    fixture = f"tpch_{request.param}"
    found: Engine = request.getfixturevalue(fixture)
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_governed_rows_equal_hand_written_sql(
    case: Case, model: SemanticModel, engine: Engine
) -> None:
    who = viewer(case.values)
    got = rows(engine, compile_query(model, case.query, dialect=engine.dialect, viewer=who).sql)
    want = rows(engine, case.sql)
    assert want, f"{case.name}: the hand-written SQL returns no rows: the case proves nothing"
    assert same_rows(got, want), f"{case.name}:\n got  {normalized(got)}\n want {normalized(want)}"
    everyone = viewer({**UNRESTRICTED})
    free = compile_query(model, case.query, dialect=engine.dialect, viewer=everyone)
    assert not same_rows(rows(engine, free.sql), want), f"{case.name}: the rules changed nothing"
