"""Table calculations on DuckDB, PostgreSQL and MariaDB against hand-written SQL.

The base is TPC-H orders by priority (five rows, sorted by priority). The hand-written SQL
computes each calculation without window functions (subqueries over the grouped rows), so it
checks the windows' frames and orders as well as the arithmetic. Division is written in double
precision per dialect: PostgreSQL divides integers, and MariaDB's decimal division keeps 4
digits.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest

from assay.engines.base import Engine
from assay.errors import CalculationsFailed
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from tests.governed import governed_model
from tests.semantic.test_governance import viewer
from tests.special_model import special_model

pytestmark = pytest.mark.tpch

P, N = "orders.o_orderpriority", "orders.count"
BASE = "SELECT o_orderpriority AS p, COUNT(*) AS n FROM orders GROUP BY o_orderpriority"
DOUBLE = {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION", "mysql": "DOUBLE", "spark": "DOUBLE"}


def f(name: str) -> dict[str, Any]:
    return {"type": "field", "field_name": name}


def lit(value: Any) -> dict[str, Any]:
    return {"type": "literal", "value": value}


def call(op: str, *operands: dict[str, Any]) -> dict[str, Any]:
    return {"type": "call", "operator": op, "operands": list(operands)}


def offset(rows: int, height: int = 1) -> dict[str, Any]:
    return call("Omni.OMNI_OFFSET_MULTI", f(N), lit(rows), lit(0), lit(height), lit(1))


def column(name: str) -> dict[str, Any]:
    """A whole column as Omni writes ``C:C`` for SUMIF and RANK."""
    whole = (lit(-536870911), lit(0), lit(1073741823), lit(1))
    return call("Omni.OMNI_OFFSET_MULTI", f(name), *whole)


def typed(value: str, type_name: str) -> dict[str, Any]:
    target = {"type": "sql_type", "type_name_name": type_name, "precision": 0, "scale": 0}
    return call("SqlStdOperatorTable.CAST", lit(value), target)


def datedif(unit: str, start: str, end: str) -> dict[str, Any]:
    return call("Omni.OMNI_FX_DATEDIF", lit(unit), typed(start, "DATE"), typed(end, "DATE"))


RUNNING = call(
    "Omni.OMNI_FX_SUM",
    call(
        "Omni.OMNI_OFFSET_MULTI", f(N), call("Omni.ABSOLUTE_POSITION", lit(1)),
        lit(0), lit(1), lit(1),
    ),
)  # fmt: skip
_PREV = "(SELECT n FROM b AS c WHERE c.p = (SELECT MAX(p) FROM b AS d WHERE d.p < b.p))"
#: name -> (the calculation's sql_expression, the hand-written column over ``b``)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "percent_of_total": (
        call("Omni.OMNI_PERCENT_OF_TOTAL", f(N)),
        "CAST(n AS {dbl}) / (SELECT SUM(n) FROM b)",
    ),
    "running_total": (
        call("Omni.OMNI_RUNNING_TOTAL", f(N)),
        "(SELECT SUM(n) FROM b AS c WHERE c.p <= b.p)",
    ),
    "running_total_as_sum_of_range": (RUNNING, "(SELECT SUM(n) FROM b AS c WHERE c.p <= b.p)"),
    "trailing_two_rows": (
        call("Omni.OMNI_FX_SUM", offset(-1, 2)),
        "n + COALESCE(" + _PREV + ", 0)",
    ),
    "average_of_column": (
        call("Omni.OMNI_FX_AVERAGE", f(N)),
        "(SELECT AVG(CAST(n AS {dbl})) FROM b)",
    ),
    "max_of_column": (call("Omni.OMNI_FX_MAX", f(N)), "(SELECT MAX(n) FROM b)"),
    "previous_row": (offset(-1), _PREV),
    "next_row_by_legacy_offset": (
        call("Omni.OMNI_LEGACY_OFFSET", f(N), lit(1)),
        "(SELECT n FROM b AS c WHERE c.p = (SELECT MIN(p) FROM b AS d WHERE d.p > b.p))",
    ),
    "rank": (
        call("Omni.OMNI_RANK", f(N)),
        "(SELECT COUNT(*) FROM b AS c WHERE c.n > b.n) + 1",
    ),
    "percent_change_from_previous": (
        call("Omni.OMNI_PERCENT_CHANGE_FROM_PREVIOUS", f(N)),
        f"CAST(n - {_PREV} AS {{dbl}}) / {_PREV}",
    ),
    "percent_of_previous": (
        call("Omni.OMNI_PERCENT_OF_PREVIOUS", f(N)),
        f"CAST(n AS {{dbl}}) / {_PREV}",
    ),
    "safe_divide_by_two": (
        call("Omni.OMNI_FX_SAFE_DIVIDE", f(N), lit(2)),
        "CAST(n AS {dbl}) / 2",
    ),
    "safe_divide_by_zero_is_null": (
        call("Omni.OMNI_FX_SAFE_DIVIDE", f(N), call("Omni.OMNI_FX_MINUS", lit(1), lit(1))),
        "CAST(NULL AS {dbl})",
    ),
    "integer_division_is_not_truncated": (
        call("SqlStdOperatorTable.DIVIDE", lit(1), lit(2)),
        "0.5",
    ),
    "ifs": (
        call(
            "Omni.OMNI_FX_IFS",
            call("SqlStdOperatorTable.GREATER_THAN", f(N), lit(30000)),
            lit("big"),
            call("Omni.OMNI_FX_EQUALS", lit(1), lit(1)),
            lit("small"),
        ),
        "CASE WHEN n > 30000 THEN 'big' ELSE 'small' END",
    ),
    "ampersand_is_null_safe": (
        call(
            "Omni.OMNI_FX_AMPERSAND",
            call("Omni.OMNI_FX_AMPERSAND", f(P), lit(None)),
            lit("!"),
        ),
        "CONCAT(p, '!')",
    ),
    "arithmetic_precedence": (
        call(
            "Omni.OMNI_FX_MULTIPLY",
            call("Omni.OMNI_FX_PLUS", f(N), lit(1)),
            call("SqlStdOperatorTable.UNARY_MINUS", lit(2)),
        ),
        "(n + 1) * -2",
    ),
    "case_and_power": (
        call(
            "SqlStdOperatorTable.CASE",
            call("SqlStdOperatorTable.LESS_THAN", f(N), lit(30000)),
            call("SqlStdOperatorTable.POWER", lit(2), lit(3)),
            lit(0),
        ),
        "CASE WHEN n < 30000 THEN 8 ELSE 0 END",
    ),
    "fx_rank_largest_first": (
        call("Omni.OMNI_FX_RANK", f(N), column(N)),
        "(SELECT COUNT(*) FROM b AS c WHERE c.n > b.n) + 1",
    ),
    "fx_rank_smallest_first": (
        call("Omni.OMNI_FX_RANK", f(N), column(N), lit(1)),
        "(SELECT COUNT(*) FROM b AS c WHERE c.n < b.n) + 1",
    ),
    "sum_if_not_equal": (
        call("Omni.OMNI_FX_SUM_IF", column(P), lit("<>3-MEDIUM"), column(N)),
        "(SELECT SUM(n) FROM b WHERE p <> '3-MEDIUM')",
    ),
    "sum_if_text_ignores_case": (
        call("Omni.OMNI_FX_SUM_IF", column(P), lit("1-urgent"), column(N)),
        "(SELECT SUM(n) FROM b WHERE p = '1-URGENT')",
    ),
    "sum_if_without_sum_range": (
        call("Omni.OMNI_FX_SUM_IF", column(N), lit(">30000")),
        "(SELECT SUM(n) FROM b WHERE n > 30000)",
    ),
    "sum_if_nothing_matches_is_null": (
        call("Omni.OMNI_FX_SUM_IF", column(P), lit("nothing"), column(N)),
        "(SELECT SUM(n) FROM b WHERE p = 'nothing')",
    ),
    "count_if": (
        call("Omni.OMNI_FX_COUNT_IF", column(N), lit(">30000")),
        "(SELECT COUNT(*) FROM b WHERE n > 30000)",
    ),
    "count_ifs": (
        call("Omni.OMNI_FX_COUNT_IFS", column(P), lit("<>5-low"), column(N), lit(">=1")),
        "(SELECT COUNT(*) FROM b WHERE p <> '5-LOW' AND n >= 1)",
    ),
    "sum_ifs": (
        call("Omni.OMNI_FX_SUM_IFS", column(N), column(P), lit(">=2-high"), column(N), lit("<>0")),
        "(SELECT SUM(n) FROM b WHERE p >= '2-HIGH' AND n <> 0)",
    ),
    "average_if": (
        call("Omni.OMNI_FX_AVERAGE_IF", column(P), lit("<3-MEDIUM"), column(N)),
        "(SELECT AVG(CAST(n AS {dbl})) FROM b WHERE p < '3-MEDIUM')",
    ),
    "average_ifs": (
        call("Omni.OMNI_FX_AVERAGE_IFS", column(N), column(P), lit(">2-HIGH")),
        "(SELECT AVG(CAST(n AS {dbl})) FROM b WHERE p > '2-HIGH')",
    ),
    "max_ifs": (
        call("Omni.OMNI_FX_MAX_IFS", column(N), column(P), lit("<=3-medium")),
        "(SELECT MAX(n) FROM b WHERE p <= '3-MEDIUM')",
    ),
    "row_position": (
        call("Omni.ABSOLUTE_POSITION"),
        "(SELECT COUNT(*) FROM b AS c WHERE c.p <= b.p)",
    ),
    "datedif_days": (datedif("DAY", "2024-01-31", "2024-03-01"), "30"),
    "datedif_months_need_the_day_reached": (datedif("MONTH", "2024-01-31", "2024-02-29"), "0"),
    "datedif_months": (datedif("MONTH", "2024-01-31", "2024-03-01"), "1"),
    "datedif_years_from_a_leap_day": (datedif("YEAR", "2020-02-29", "2024-02-28"), "3"),
    "datedif_years": (datedif("YEAR", "2023-03-15", "2024-03-15"), "1"),
    "datedif_start_after_end_is_null": (datedif("DAY", "2024-03-01", "2024-01-31"), "NULL"),
    "epoch_of_a_date": (call("Omni.OMNI_EPOCH", typed("2024-01-02", "DATE")), "1704153600"),
    "epoch_of_a_timestamp": (
        call("Omni.OMNI_EPOCH", typed("2024-01-02 03:04:05", "TIMESTAMP")),
        "1704164645",
    ),
}


def _norm(value: Any) -> Any:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    return value.rstrip() if isinstance(value, str) else value


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(_norm(v) for v in r.values()) for r in engine.execute(sql).to_pylist()]


def same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert got, "the query returned no rows: the case proves nothing"
    assert len(got) == len(want), (got, want)
    for mine, theirs in zip(got, want, strict=True):
        close = [
            (a is None and b is None)
            or (
                math.isclose(a, b, rel_tol=1e-9)
                if isinstance(a, float) and isinstance(b, float)
                else a == b
            )
            for a, b in zip(mine, theirs, strict=True)
        ]
        assert all(close), (mine, theirs)


def query(calcs: list[dict[str, Any]], *, limit: int | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {
        "join_paths_from_topic_name": "orders",
        "fields": [P, N, *(c["calc_name"] for c in calcs)],
        "sorts": [{"column_name": P}],
        "calculations": calcs,
    }
    if limit is not None:
        q["limit"] = limit
    return q


def hand_written(dialect: str, *columns: str) -> str:
    """Each column named: a result keyed by column name would collapse two named ``n``."""
    cols = ", ".join(f"{c.format(dbl=DOUBLE[dialect])} AS c{i}" for i, c in enumerate(columns))
    return f"WITH b AS ({BASE}) SELECT p, n, {cols} FROM b ORDER BY p"


ENGINES = ["tpch_engine", "tpch_postgres", "tpch_mariadb", "tpch_spark"]


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculation_matches_hand_written_sql(
    name: str, engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    engine: Engine = request.getfixturevalue(engine_name)
    tree, column = CASES[name]
    if engine.dialect == "spark" and name.startswith("epoch"):  # Spark has no exact epoch
        with pytest.raises(CalculationsFailed, match="OMNI_EPOCH is not supported yet on spark"):
            compile_query(tpch_model, query([{"calc_name": "c", "sql_expression": tree}]),
                          dialect="spark")  # fmt: skip
        return
    compiled = compile_query(
        tpch_model, query([{"calc_name": "c", "sql_expression": tree}]), dialect=engine.dialect
    )
    got = rows(engine, compiled.sql)
    assert len(got) == 5
    # Spark cannot run the oracle: it refuses a subquery correlated two levels up (b.p below
    # d), so Spark's rows are held to the hand-written SQL as DuckDB runs it.
    oracle: Engine = request.getfixturevalue("tpch_engine") if engine.dialect == "spark" else engine
    same_rows(got, rows(oracle, hand_written(oracle.dialect, column)))


@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculation_of_calculations_in_layers(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    """A window over a window (running total of a percent of total) needs its own SELECT."""
    engine: Engine = request.getfixturevalue(engine_name)
    calcs = [
        {"calc_name": "pct", "sql_expression": call("Omni.OMNI_PERCENT_OF_TOTAL", f(N))},
        {"calc_name": "cum", "sql_expression": call("Omni.OMNI_RUNNING_TOTAL", f("pct"))},
        {
            "calc_name": "cum100",
            "sql_expression": call("Omni.OMNI_FX_MULTIPLY", f("cum"), lit(100)),
        },
    ]
    compiled = compile_query(tpch_model, query(calcs), dialect=engine.dialect)
    dbl = DOUBLE[engine.dialect]
    share = f"CAST(n AS {dbl}) / (SELECT SUM(n) FROM b)"
    cum = f"(SELECT SUM(CAST(n AS {dbl})) FROM b AS c WHERE c.p <= b.p) / (SELECT SUM(n) FROM b)"
    want = rows(engine, hand_written(engine.dialect, share, cum, f"{cum} * 100"))
    got = rows(engine, compiled.sql)
    same_rows(got, want)
    assert math.isclose(got[-1][3], 1.0)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_calculations_see_only_the_rows_shown(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    """The job runner's probe fetches a row past the limit; calculations must not see it:
    percent of total over the 3 rows shown sums to 1, and the row past them is its own."""
    engine: Engine = request.getfixturevalue(engine_name)
    calcs = [
        {"calc_name": "pct", "sql_expression": call("Omni.OMNI_PERCENT_OF_TOTAL", f(N))},
        {"calc_name": "next", "sql_expression": call("Omni.OMNI_LEGACY_OFFSET", f(N), lit(1))},
    ]
    probe = compile_query(tpch_model, query(calcs, limit=4), dialect=engine.dialect, calc_rows=3)
    got = rows(engine, probe.sql)
    assert len(got) == 4
    assert math.isclose(sum(r[2] for r in got[:3]), 1.0)
    assert got[2][3] is None  # the last row shown has no next row, though the probe has one
    shown = rows(
        engine, compile_query(tpch_model, query(calcs, limit=3), dialect=engine.dialect).sql
    )
    same_rows(got[:3], shown)


_RANK = (
    "CASE o_orderpriority WHEN '5-LOW' THEN 1 WHEN '4-NOT SPECIFIED' THEN 2 "
    "WHEN '3-MEDIUM' THEN 3 WHEN '2-HIGH' THEN 4 ELSE 5 END"
)


@pytest.mark.parametrize("fanned", [False, True])
@pytest.mark.parametrize("engine_name", ENGINES)
def test_row_order_follows_a_sort_by_another_field(
    fanned: bool, engine_name: str, request: pytest.FixtureRequest
) -> None:
    """A dimension sorted by its order_by_field (not a column of the result), on a plain and
    on a fanned-out (de-duplicated, grouped in CTEs) base: the running total follows it."""
    engine: Engine = request.getfixturevalue(engine_name)
    measure = "lineitem.count" if fanned else "orders.count"
    q = {
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.priority_by_rank", measure, "run"],
        "sorts": [{"column_name": "orders.priority_by_rank", "sort_descending": True}],
        "calculations": [
            {"calc_name": "run", "sql_expression": call("Omni.OMNI_RUNNING_TOTAL", f(measure))}
        ],
    }
    compiled = compile_query(special_model(), q, dialect=engine.dialect)
    join = "LEFT JOIN lineitem ON l_orderkey = o_orderkey" if fanned else ""
    n = "COUNT(l_orderkey)" if fanned else "COUNT(*)"
    want = f"""WITH b AS (SELECT o_orderpriority AS p, {_RANK} AS r, {n} AS n
                         FROM orders {join} GROUP BY 1, 2)
               SELECT p, n, (SELECT SUM(n) FROM b AS c WHERE c.r >= b.r) AS run
               FROM b ORDER BY r DESC"""
    got = rows(engine, compiled.sql)
    assert [r[0] for r in got][:2] == ["1-URGENT", "2-HIGH"]
    same_rows(got, rows(engine, want))


def test_calculations_are_governed_per_user(tpch_engine: Engine) -> None:
    """The base query is the user's: percent of total is of the rows their access filter
    keeps, and a field they may not see is refused as if it did not exist."""
    model = governed_model()
    q = {
        "join_paths_from_topic_name": "customer",
        "fields": ["region.r_name", "customer.count", "pct"],
        "sorts": [{"column_name": "region.r_name"}],
        "calculations": [
            {
                "calc_name": "pct",
                "sql_expression": call("Omni.OMNI_PERCENT_OF_TOTAL", f("customer.count")),
            }
        ],
    }
    two = viewer(region=["ASIA", "EUROPE"])
    got = rows(tpch_engine, compile_query(model, q, viewer=two, dialect="duckdb").sql)
    want = rows(
        tpch_engine,
        """WITH b AS (SELECT r_name AS p, COUNT(*) AS n FROM customer
                      JOIN nation ON c_nationkey = n_nationkey
                      JOIN region ON n_regionkey = r_regionkey
                      WHERE r_name IN ('ASIA', 'EUROPE') AND c_acctbal >= -1000 GROUP BY 1)
           SELECT p, n, n / (SELECT SUM(n) FROM b) FROM b ORDER BY p""",
    )
    same_rows(got, want)
    assert math.isclose(sum(r[2] for r in got), 1.0)
    hidden = {
        "calc_name": "pct",
        "swallow_errors": True,
        "sql_expression": call("Omni.OMNI_RANK", f("customer.c_acctbal")),
    }
    compiled = compile_query(model, {**q, "calculations": [hidden]}, viewer=two, dialect="duckdb")
    # the same words as for a field that does not exist; suggestions only from the query
    reason = compiled.invalid_calculations["pct"]
    assert reason.startswith("references 'customer.c_acctbal', which is not in fields.")


@pytest.mark.parametrize("engine_name", ENGINES)
def test_median_where_the_engine_has_it_as_a_window(
    engine_name: str, tpch_model: SemanticModel, request: pytest.FixtureRequest
) -> None:
    """MEDIAN over the column on DuckDB and MariaDB, over a trailing range on DuckDB only;
    PostgreSQL's ordered-set PERCENTILE_CONT cannot be a window: invalid, with the reason."""
    engine: Engine = request.getfixturevalue(engine_name)
    calcs = [
        {"calc_name": "med", "sql_expression": call("Omni.OMNI_FX_MEDIAN", f(N))},
        {"calc_name": "med2", "sql_expression": call("Omni.OMNI_FX_MEDIAN", offset(-1, 2))},
    ]
    swallowed = [{**c, "swallow_errors": True} for c in calcs]
    compiled = compile_query(tpch_model, query(swallowed), dialect=engine.dialect)
    invalid = compiled.invalid_calculations
    if engine.dialect == "postgres":
        assert invalid == {
            "med": "OMNI_FX_MEDIAN is not supported yet on postgres",
            "med2": "OMNI_FX_MEDIAN is not supported yet on postgres",
        }
        return
    middle = "(SELECT n FROM b AS c WHERE (SELECT COUNT(*) FROM b AS d WHERE d.n < c.n) = 2)"
    got = rows(engine, compiled.sql)
    # Spark refuses the oracle's subquery correlated two levels up: DuckDB runs it instead
    oracle: Engine = request.getfixturevalue("tpch_engine") if engine.dialect == "spark" else engine
    want = rows(oracle, hand_written(oracle.dialect, middle))
    same_rows([r[:3] for r in got], want)
    if engine.dialect in ("mysql", "spark"):
        assert invalid == {
            "med2": f"OMNI_FX_MEDIAN over a range of rows is not supported yet on {engine.dialect} "
            "(only over the whole column)"
        }
        return
    assert invalid == {}
    trailing = f"(n + COALESCE({_PREV}, n)) / 2.0"
    same_rows([r[:2] + r[3:] for r in got], rows(engine, hand_written("duckdb", trailing)))


def test_a_numeric_criterion_never_matches_text_on_mariadb(
    tpch_model: SemanticModel, tpch_mariadb: Engine
) -> None:
    """MariaDB reads '1-URGENT' = 1 as true (the text's leading digits); PostgreSQL and DuckDB
    refuse the comparison. A number criterion over text must match nothing there too."""
    tree = call("Omni.OMNI_FX_SUM_IF", column(P), lit(1), column(N))
    naive = rows(tpch_mariadb, "SELECT SUM(n) FROM (" + BASE + ") b WHERE p = 1")
    assert naive[0][0] is not None  # the trap is real: MariaDB sums the '1-URGENT' row
    compiled = compile_query(
        tpch_model, query([{"calc_name": "c", "sql_expression": tree}]), dialect="mysql"
    )
    got = rows(tpch_mariadb, compiled.sql)
    assert len(got) == 5 and all(r[2] is None for r in got), got
