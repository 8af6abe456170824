"""Column totals on DuckDB, PostgreSQL and MariaDB equal hand-written SQL on the same engine:
a count distinct and an average (grouping sets where the engine has them, UNION ALL on
MariaDB, and both plans agreeing), a de-duplicated fan-out measure, and a governed user whose
totals cover only their rows (TPC-H at scale 0.1)."""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines import DuckDBEngine
from assay.engines.base import Engine
from assay.semantic.compiler import CompiledQuery, compile_query
from assay.semantic.compiler import totals as totals_module
from assay.semantic.model import SemanticModel
from assay.semantic.query import parse_query
from assay.semantic.viewer import Viewer
from tests.governed import governed_model
from tests.rows import assert_same_rows
from tests.totals_cases import AGG, BY_SEGMENT, BY_SEGMENT_SQL, FANOUT, FANOUT_SQL, INDICATOR

pytestmark = pytest.mark.tpch
# The lineitem topic of the governed model keeps the lines of customers whose market segment
# is LIKE the user's segment_pattern.
GOVERNED: dict[str, Any] = {
    "join_paths_from_topic_name": "lineitem",
    "fields": ["lineitem.l_shipmode", "lineitem.l_returnflag", "lineitem.count",
               "lineitem.avg_quantity"],
    "column_totals": {"::total::": AGG, "lineitem.l_shipmode": AGG},
    "limit": None,
}  # fmt: skip
GOVERNED_SQL = """
WITH j AS (SELECT l.l_shipmode AS m, l.l_returnflag AS f, l.l_quantity AS q
           FROM lineitem l JOIN orders o ON l.l_orderkey = o.o_orderkey
           JOIN customer c ON o.o_custkey = c.c_custkey
           WHERE c.c_mktsegment LIKE 'BUILDING')
SELECT m, f, COUNT(*) AS n, AVG(q) AS a, NULL AS k FROM j GROUP BY m, f
UNION ALL
SELECT m, NULL, COUNT(*), AVG(q), 'column_subtotal::lineitem.l_shipmode' FROM j GROUP BY m
UNION ALL
SELECT NULL, NULL, COUNT(*), AVG(q), 'column_total' FROM j
"""
DEFAULTS = {"segment_pattern": ("%",), "min_balance": ("-1000",), "min_customers": ("0",),
            "max_size": ("50",), "omni_is_org_admin": ("false",), "region": ("ALL",)}  # fmt: skip
NUMERIC = frozenset({"min_balance", "min_customers", "max_size"})


@pytest.fixture(params=["duckdb", "postgres", "mariadb", "spark"])
def engine(request: pytest.FixtureRequest, tpch_engine: DuckDBEngine) -> Engine:
    if request.param == "duckdb":
        return tpch_engine
    found: Engine = request.getfixturevalue(f"tpch_{request.param}")
    return found


def run(engine: Engine, compiled: CompiledQuery) -> list[tuple[Any, ...]]:
    table = engine.execute(compiled.sql).rename_columns(compiled.columns)
    keep = [*(f.fully_qualified_name for f in compiled.fields), INDICATOR]
    return [tuple(r.values()) for r in table.select(keep).to_pylist()]


def plain(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def compiled(
    model: SemanticModel,
    query: dict[str, Any],
    dialect: str,
    *,
    union: bool = False,
    viewer: Viewer | None = None,
) -> CompiledQuery:
    with pytest.MonkeyPatch.context() as mp:
        if union:
            mp.setattr(totals_module, "_NO_GROUPING_SETS", frozenset({dialect}))
        return compile_query(model, parse_query(query), dialect=dialect, viewer=viewer)


@pytest.mark.parametrize("union", [False, True], ids=["default_plan", "union_all"])
def test_count_distinct_and_average_totals(
    union: bool, engine: Engine, tpch_model: SemanticModel
) -> None:
    c = compiled(tpch_model, BY_SEGMENT, engine.dialect, union=union)
    assert ("GROUPING SETS" in c.sql) is (not union and engine.dialect != "mysql")
    want = plain(engine, BY_SEGMENT_SQL)
    assert_same_rows(run(engine, c), want, ordered=False, nonempty=True)
    assert [r[2:4] for r in want if r[-1] == "column_total"] == [(150000, 10000)]


def test_fan_out_totals(engine: Engine, tpch_model: SemanticModel) -> None:
    c = compiled(tpch_model, FANOUT, engine.dialect)
    assert c.deduplicated_views == ("orders",)
    assert_same_rows(run(engine, c), plain(engine, FANOUT_SQL), ordered=False, nonempty=True)


def test_governed_totals_cover_only_the_users_rows(engine: Engine) -> None:
    model = governed_model()
    building = Viewer("u", {**DEFAULTS, "segment_pattern": ("BUILDING",)}, NUMERIC)
    got = run(engine, compiled(model, GOVERNED, engine.dialect, viewer=building))
    assert_same_rows(got, plain(engine, GOVERNED_SQL), ordered=False, nonempty=True)
    everyone = Viewer("u", DEFAULTS, NUMERIC)
    free = run(engine, compiled(model, GOVERNED, engine.dialect, viewer=everyone))
    (mine,) = [r[2] for r in got if r[-1] == "column_total"]
    (all_lines,) = [r[2] for r in free if r[-1] == "column_total"]
    assert 0 < mine < all_lines == 600572
