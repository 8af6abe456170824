"""Table calculations over filled rows (``fill_fields``) on DuckDB, PostgreSQL and MariaDB
against hand-written SQL.

Partly fulfilled orders ('P') stop on 1995-06-16, so the daily series to 06-24 has eight
filled days with a NULL count. Calculations run after the fill (spec 1.7), so the filled
days are rows of the calculation like any other: the running total carries over them, and
the day after a gap has no previous value. The hand-written SQL builds the series itself and
computes each calculation as a correlated subquery.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.engines.test_fill_fields_rows import DAILY_SQL, DAILY_TAIL, DATE, P_FILTERS
from tests.rows import assert_same_rows

pytestmark = pytest.mark.tpch
ENGINES = ["tpch_engine", "tpch_postgres", "tpch_mariadb"]


def _f(name: str) -> dict[str, Any]:
    return {"type": "field", "field_name": name}


def _call(op: str, *operands: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call", "operator": op, "operands": list(operands)}


def query(limit: int) -> dict[str, Any]:
    return {
        "join_paths_from_topic_name": "orders",
        "fields": [f"{DATE}[date]", "orders.count", "run", "prev"],
        "fill_fields": [f"{DATE}[date]"],
        "filters": P_FILTERS,
        "sorts": [{"column_name": f"{DATE}[date]"}],
        "limit": limit,
        "calculations": [
            {"calc_name": "run",
             "sql_expression": _call("Omni.OMNI_RUNNING_TOTAL", _f("orders.count"))},
            {"calc_name": "prev",
             "sql_expression": _call("Omni.OMNI_LEGACY_OFFSET", _f("orders.count"),
                                     {"type": "literal", "value": -1})},
        ],
    }  # fmt: skip


def hand_written(dialect: str, limit: int) -> str:
    tail = f"""c AS (SELECT o_orderdate AS day, COUNT(*) AS n FROM orders
WHERE o_orderstatus = 'P' AND o_orderdate >= DATE '1995-06-10' AND o_orderdate < DATE '1995-06-25'
GROUP BY o_orderdate),
x AS (SELECT d.day, c.n FROM d LEFT JOIN c ON c.day = d.day
      WHERE (SELECT COUNT(*) FROM d d2 WHERE d2.day < d.day) < {limit})
SELECT day, n, (SELECT SUM(x2.n) FROM x x2 WHERE x2.day <= x.day) AS run,
       (SELECT x2.n FROM x x2 WHERE x2.day = (SELECT MAX(x3.day) FROM x x3 WHERE x3.day < x.day))
       AS prev
FROM x ORDER BY day"""
    return DAILY_SQL[dialect].replace(DAILY_TAIL, tail)


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculations_run_over_the_filled_rows(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    got = rows(engine, compile_query(tpch_model, query(15), dialect=engine.dialect).sql)
    assert len(got) == 15
    gaps = [i for i, r in enumerate(got) if r[1] is None]
    assert len(gaps) == 8 and all(got[i][2] == got[i - 1][2] for i in gaps)
    assert_same_rows(got, rows(engine, hand_written(engine.dialect, 15)), ordered=True)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculations_over_filled_rows_see_only_the_rows_shown(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    """The limit counts filled rows, and the runner's probe row is in no window."""
    engine: Engine = request.getfixturevalue(engine_name)
    probe = compile_query(tpch_model, query(6), dialect=engine.dialect, calc_rows=5)
    got = rows(engine, probe.sql)
    assert len(got) == 6
    want = rows(engine, hand_written(engine.dialect, 5))
    assert_same_rows(got[:5], want, ordered=True)
