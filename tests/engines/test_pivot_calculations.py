"""Table calculations over pivots on DuckDB, PostgreSQL and MariaDB against hand-written SQL.

The base is TPC-H orders: years (pivot rows) by status (pivot columns). The hand-written SQL
numbers the cells without window functions (as tests/engines/test_pivots.py does) and
computes each calculation as a correlated subquery over the cells shown: down its pivot
column for the ordinary ones, across its pivot row's columns 1..column_limit for
``outside_pivot`` ones. Years 1996-1998 hold only status O (column 2), so with
``column_limit: 1`` each keeps that one cell past the limit: a series of its own down the
column, and no value across the row.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.engines.test_calculations import DOUBLE, call, f, lit, rows
from tests.governed import governed_model
from tests.semantic.test_governance import viewer

pytestmark = pytest.mark.tpch

Y, S, N = "orders.o_orderdate[year]", "orders.o_orderstatus", "orders.count"
ENGINES = ["tpch_engine", "tpch_postgres", "tpch_mariadb"]


def pivot_offset(first: int, last: int) -> dict[str, Any]:
    return call("Omni.OMNI_PIVOT_OFFSET", f(N), lit(0), lit(0), lit(first), lit(last))


_PREV = (
    "(SELECT k2.n FROM k k2 WHERE k2.cn = k.cn AND k2.rn = "
    "(SELECT MAX(k3.rn) FROM k k3 WHERE k3.cn = k.cn AND k3.rn < k.rn))"
)
#: name -> (outside_pivot, sql_expression, the hand-written column over the cells ``k``);
#: ``{dbl}`` is the dialect's double type, ``{c}`` the column limit
CALCS: dict[str, tuple[bool, dict[str, Any], str]] = {
    "pct": (
        False,
        call("Omni.OMNI_PERCENT_OF_TOTAL", f(N)),
        "CAST(n AS {dbl}) / (SELECT SUM(k2.n) FROM k k2 WHERE k2.cn = k.cn)",
    ),
    "run": (
        False,
        call("Omni.OMNI_RUNNING_TOTAL", f(N)),
        "(SELECT SUM(k2.n) FROM k k2 WHERE k2.cn = k.cn AND k2.rn <= k.rn)",
    ),
    "rnk": (
        False,
        call("Omni.OMNI_RANK", f(N)),
        "(SELECT COUNT(*) FROM k k2 WHERE k2.cn = k.cn AND k2.n > k.n) + 1",
    ),
    "prev": (False, call("Omni.OMNI_LEGACY_OFFSET", f(N), lit(-1)), _PREV),
    "col_max": (
        False,
        call("Omni.OMNI_FX_MAX", f(N)),
        "(SELECT MAX(k2.n) FROM k k2 WHERE k2.cn = k.cn)",
    ),
    "twice": (False, call("Omni.OMNI_FX_MULTIPLY", f(N), lit(2)), "n * 2"),
    "row_share": (
        True,
        call("Omni.OMNI_PERCENT_OF_TOTAL", f(N)),
        "CASE WHEN cn <= {c} THEN CAST(n AS {dbl}) / "
        "(SELECT SUM(k2.n) FROM k k2 WHERE k2.rn = k.rn AND k2.cn <= {c}) END",
    ),
    "row_run": (
        True,
        call("Omni.OMNI_RUNNING_TOTAL", f(N)),
        "CASE WHEN cn <= {c} THEN "
        "(SELECT SUM(k2.n) FROM k k2 WHERE k2.rn = k.rn AND k2.cn <= k.cn) END",
    ),
    "row_sum_1_2": (
        True,
        call("Omni.OMNI_FX_SUM", pivot_offset(1, 2)),
        "CASE WHEN cn <= {c} THEN "
        "(SELECT SUM(k2.n) FROM k k2 WHERE k2.rn = k.rn AND k2.cn <= 2 AND k2.cn <= {c}) END",
    ),
}


def query(limit: int, column_limit: int, names: list[str] | None = None) -> dict[str, Any]:
    names = names or list(CALCS)
    return {
        "join_paths_from_topic_name": "orders",
        "fields": [Y, S, N, *names],
        "pivots": [S],
        "limit": limit,
        "column_limit": column_limit,
        "sorts": [{"column_name": Y}],
        "calculations": [
            {"calc_name": name, "outside_pivot": CALCS[name][0], "sql_expression": CALCS[name][1]}
            for name in names
        ],
    }


def hand_written(dialect: str, limit: int, column_limit: int) -> str:
    cols = ", ".join(
        f"{sql.format(dbl=DOUBLE[dialect], c=column_limit)} AS c{i}"
        for i, (_, _, sql) in enumerate(CALCS.values())
    )
    return f"""
WITH g AS (SELECT EXTRACT(YEAR FROM o_orderdate) AS y, o_orderstatus AS s, COUNT(*) AS n
           FROM orders GROUP BY EXTRACT(YEAR FROM o_orderdate), o_orderstatus),
x AS (SELECT g.*, (SELECT COUNT(DISTINCT g2.y) FROM g g2 WHERE g2.y <= g.y) AS rn,
             (SELECT COUNT(DISTINCT g2.s) FROM g g2 WHERE g2.s <= g.s) AS cn FROM g),
k AS (SELECT * FROM x WHERE rn <= {limit}
      AND (cn <= {column_limit} OR cn = (SELECT MIN(x2.cn) FROM x x2 WHERE x2.rn = x.rn)))
SELECT y, s, n, {cols}, rn, cn FROM k ORDER BY rn, cn"""


def year(value: Any) -> Any:
    return value.year if hasattr(value, "year") else value


def same(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert want, "the hand-written SQL returns no rows: the case proves nothing"
    assert len(got) == len(want), (len(got), len(want))
    for row, theirs in zip(got, want, strict=True):
        mine = (year(row[0]), *row[1:])
        ok = [
            (a is None and b is None)
            or (
                math.isclose(a, b, rel_tol=1e-9)
                if isinstance(a, float) and isinstance(b, float)
                else a == b
            )
            for a, b in zip(mine, theirs, strict=True)
        ]
        assert all(ok), (mine, theirs)


@pytest.mark.parametrize("column_limit", [1, 2])
@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculations_over_pivots_match_hand_written_sql(
    column_limit: int, engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    compiled = compile_query(tpch_model, query(7, column_limit), dialect=engine.dialect)
    assert compiled.columns[-2:] == ["$omni_pivot_row_num", "$omni_pivot_col_num"]
    got = rows(engine, compiled.sql)
    same(got, rows(engine, hand_written(engine.dialect, 7, column_limit)))
    # each pivot column's shares sum to 1 (its own series), and with column_limit 1 the
    # rows kept past it (1996-1998, column 2) have no value across the row
    for column in {r[-1] for r in got}:
        assert math.isclose(sum(r[3] for r in got if r[-1] == column), 1.0)
    if column_limit == 1:
        past = [r for r in got if r[-1] == 2]
        assert len(past) == 3 and all(r[9] is None and r[11] is None for r in past)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculations_over_pivots_see_only_the_pivot_rows_shown(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    """The runner's probe asks for a pivot row past the limit: its cells are in no window
    (percent of total and the running total see rows 1..4 only)."""
    engine: Engine = request.getfixturevalue(engine_name)
    probe = compile_query(tpch_model, query(5, 2), dialect=engine.dialect, calc_rows=4)
    got = rows(engine, probe.sql)
    assert {r[-2] for r in got} == {1, 2, 3, 4, 5}
    shown = rows(engine, compile_query(tpch_model, query(4, 2), dialect=engine.dialect).sql)
    same([r for r in got if r[-2] <= 4], [(year(r[0]), *r[1:]) for r in shown])
    same(shown, rows(engine, hand_written(engine.dialect, 4, 2)))


@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculations_over_pivots_are_governed_per_user(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    """A user whose access filter keeps two regions: their region columns only, and each
    column's percent of total is of their rows (it sums to 1 over what they see)."""
    engine: Engine = request.getfixturevalue(engine_name)
    q = {
        "join_paths_from_topic_name": "customer",
        "fields": ["customer.c_mktsegment", "region.r_name", "customer.count", "pct"],
        "pivots": ["region.r_name"],
        "sorts": [{"column_name": "customer.c_mktsegment"}],
        "calculations": [
            {
                "calc_name": "pct",
                "sql_expression": call("Omni.OMNI_PERCENT_OF_TOTAL", f("customer.count")),
            }
        ],
    }
    two = viewer(region=["ASIA", "EUROPE"])
    got = rows(engine, compile_query(governed_model(), q, viewer=two, dialect=engine.dialect).sql)
    dbl = DOUBLE[engine.dialect]
    want = rows(
        engine,
        f"""WITH g AS (SELECT c_mktsegment AS m, r_name AS r, COUNT(*) AS n FROM customer
                      JOIN nation ON c_nationkey = n_nationkey
                      JOIN region ON n_regionkey = r_regionkey
                      WHERE r_name IN ('ASIA', 'EUROPE') AND c_acctbal >= -1000
                      GROUP BY c_mktsegment, r_name),
               k AS (SELECT g.*, (SELECT COUNT(DISTINCT g2.m) FROM g g2 WHERE g2.m <= g.m) AS rn,
                     (SELECT COUNT(DISTINCT g2.r) FROM g g2 WHERE g2.r <= g.r) AS cn FROM g)
           SELECT m, r, n, CAST(n AS {dbl}) / (SELECT SUM(k2.n) FROM k k2 WHERE k2.cn = k.cn),
                  rn, cn
           FROM k ORDER BY rn, cn""",
    )
    same(got, want)
    assert {r[1] for r in got} == {"ASIA", "EUROPE"}
    for region in ("ASIA", "EUROPE"):
        assert math.isclose(sum(r[3] for r in got if r[1] == region), 1.0)
