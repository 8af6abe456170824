"""``fill_fields`` on pivoted queries, on DuckDB, PostgreSQL and MariaDB against hand-written
SQL: the grouped rows are filled first, then numbered (spec 1.7), so filled rows and columns
get pivot numbers and ``limit`` counts them.

Filling the row dimension: the daily series of partly fulfilled orders ('P', which stop on
1995-06-16) gets every day, in every priority column. Filling the pivot dimension: months
1..12 become columns for every priority, though the filter keeps three months of data.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.engines.test_fill_fields_rows import DAILY, DAILY_SQL, DAILY_TAIL, DATE
from tests.rows import assert_same_rows

pytestmark = pytest.mark.tpch
ENGINES = ["tpch_engine", "tpch_postgres", "tpch_mariadb"]
SPRING = {"type": "date", "kind": "BETWEEN", "left_side": "1995-03-01", "right_side": "1995-06-01"}
RUN = {
    "calc_name": "run",
    "sql_expression": {
        "type": "call",
        "operator": "Omni.OMNI_RUNNING_TOTAL",
        "operands": [{"type": "field", "field_name": "orders.count"}],
    },
}


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


@pytest.mark.parametrize("engine_name", ENGINES)
def test_filled_rows_are_pivot_rows(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    """Ten of the fifteen days, each with all five priority columns; a running total down
    each column carries over the filled days."""
    engine: Engine = request.getfixturevalue(engine_name)
    q = {**DAILY, "fields": [*DAILY["fields"], "run"], "pivots": ["orders.o_orderpriority"],
         "limit": 10, "calculations": [RUN]}  # fmt: skip
    got = rows(engine, compile_query(tpch_model, q, dialect=engine.dialect).sql)
    cells = DAILY_TAIL.replace(
        "SELECT d.day, p.prio, c.n FROM d CROSS JOIN p LEFT JOIN c ON c.day = d.day AND "
        "c.prio = p.prio\nORDER BY 1, 2",
        """, z AS (SELECT d.day, p.prio, c.n FROM d CROSS JOIN p
                 LEFT JOIN c ON c.day = d.day AND c.prio = p.prio),
        k AS (SELECT z.*, (SELECT COUNT(DISTINCT z2.day) FROM z z2 WHERE z2.day <= z.day) AS rn,
                 (SELECT COUNT(DISTINCT z2.prio) FROM z z2 WHERE z2.prio <= z.prio) AS cn
              FROM z)
        SELECT day, prio, n,
               (SELECT SUM(k2.n) FROM k k2 WHERE k2.cn = k.cn AND k2.rn <= k.rn) AS run, rn, cn
        FROM k WHERE rn <= 10 ORDER BY rn, cn""",
    )
    assert cells != DAILY_TAIL
    want = rows(engine, DAILY_SQL[engine.dialect].replace(DAILY_TAIL, cells))
    assert len(want) == 50 and any(r[2] is None for r in want)
    assert_same_rows(got, want, ordered=True)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_filled_pivot_field_gives_every_column(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    month = f"{DATE}[month_num]"
    q = {
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.o_orderpriority", month, "orders.count"],
        "pivots": [month],
        "fill_fields": [month],
        "filters": {DATE: SPRING},
        "sorts": [{"column_name": "orders.o_orderpriority"}],
        "limit": 100,
    }
    got = rows(engine, compile_query(tpch_model, q, dialect=engine.dialect).sql)
    months = " UNION ALL ".join(f"SELECT {i} AS m" for i in range(1, 13))
    want = rows(
        engine,
        f"""WITH c AS (SELECT o_orderpriority AS p, EXTRACT(MONTH FROM o_orderdate) AS m,
                             COUNT(*) AS n FROM orders
                      WHERE o_orderdate >= DATE '1995-03-01' AND o_orderdate < DATE '1995-06-01'
                      GROUP BY o_orderpriority, EXTRACT(MONTH FROM o_orderdate)),
                months AS ({months}),
                z AS (SELECT p.p, months.m, c.n FROM (SELECT DISTINCT p FROM c) p
                      CROSS JOIN months LEFT JOIN c ON c.p = p.p AND c.m = months.m)
           SELECT z.p, z.m, z.n,
                  (SELECT COUNT(DISTINCT z2.p) FROM z z2 WHERE z2.p <= z.p) AS rn, z.m AS cn
           FROM z ORDER BY rn, cn""",
    )
    assert len(want) == 60 and {r[-1] for r in want} == set(range(1, 13))
    assert_same_rows([(*r[:1], int(r[1]), *r[2:]) for r in got],
                     [(*r[:1], int(r[1]), *r[2:]) for r in want], ordered=True)  # fmt: skip
