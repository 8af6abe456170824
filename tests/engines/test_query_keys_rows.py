"""The remaining query keys on DuckDB, PostgreSQL and MariaDB equal hand-written SQL:
``transposed_measures`` (one row per query row and measure), ``default_group_by: false``
(duplicate rows kept), ``join_via_map`` (joined through partsupp) and a MULTI_FIELD_FILTER
control (an OR across fields), including as a user whose access filter the OR must not widen.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.engines.base import Engine
from assay.semantic.compiler import compile_query
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.governed import governed_model
from tests.rows import assert_same_rows
from tests.semantic.test_query_keys import CONTROLLED, OR_SEGMENT_OR_ASIA, VIA_PARTSUPP

pytestmark = pytest.mark.tpch

ENGINES = {"tpch_engine": "duckdb", "tpch_postgres": "postgres", "tpch_mariadb": "mysql"}
DOUBLE = {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION", "mysql": "DOUBLE"}

TRANSPOSED: dict[str, Any] = {
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.o_orderpriority", "orders.count", "orders.o_orderstatus",
               "orders.sum_totalprice"],
    "transposed_measures": ["orders.count", "orders.sum_totalprice"],
    "sorts": [{"column_name": "orders.o_orderpriority"}, {"column_name": "orders.o_orderstatus"}],
    "limit": 4,
}  # fmt: skip
TRANSPOSED_SQL = """WITH b AS (SELECT o_orderpriority AS p, o_orderstatus AS s, COUNT(*) AS n,
SUM(o_totalprice) AS t FROM orders GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 4)
SELECT p, name, k, v, s FROM (
SELECT p, s, 'orders.count' AS name, 0 AS k, CAST(n AS {double}) AS v FROM b UNION ALL
SELECT p, s, 'orders.sum_totalprice', 1, CAST(t AS {double}) FROM b) AS x ORDER BY p, s, k"""

UNGROUPED: dict[str, Any] = {
    "join_paths_from_topic_name": "orders",
    "fields": ["orders.o_orderpriority", "orders.o_orderstatus"],
    "default_group_by": False,
    "filters": {"orders.o_orderdate": {"type": "date", "kind": "BETWEEN",
                                       "left_side": "1995-06-10", "right_side": "1995-06-11"}},
}  # fmt: skip
UNGROUPED_SQL = """SELECT o_orderpriority, o_orderstatus FROM orders
WHERE o_orderdate >= DATE '1995-06-10' AND o_orderdate < DATE '1995-06-11'"""

VIA_SQL = """SELECT p_brand, COUNT(*) FROM lineitem
LEFT JOIN partsupp ON l_partkey = ps_partkey AND l_suppkey = ps_suppkey
LEFT JOIN part ON ps_partkey = p_partkey GROUP BY 1"""

CUSTOMERS = """FROM customer LEFT JOIN nation ON c_nationkey = n_nationkey
LEFT JOIN region ON n_regionkey = r_regionkey"""
CONTROLLED_SQL = f"""SELECT r_name, COUNT(*) {CUSTOMERS}
WHERE c_acctbal > 0 AND (r_name = 'ASIA' OR c_mktsegment = 'BUILDING') GROUP BY 1"""


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def ints(got: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Counts as ints: MariaDB's COUNT is a BIGINT its driver may hand back as Decimal."""
    return [tuple(int(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, float)
                  and v == int(v) else v for v in r) for r in got]  # fmt: skip


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest) -> tuple[Engine, str]:
    return request.getfixturevalue(request.param), ENGINES[request.param]


def test_transposed_measures_are_one_row_per_query_row_and_measure(
    tpch_model: SemanticModel, engine: tuple[Engine, str]
) -> None:
    db, dialect = engine
    got = rows(db, compile_query(tpch_model, TRANSPOSED, dialect=dialect).sql)
    want = rows(db, TRANSPOSED_SQL.format(double=DOUBLE[dialect]))
    assert len(want) == 8 and {r[1] for r in want} == {"orders.count", "orders.sum_totalprice"}
    assert_same_rows(ints(got), ints(want), ordered=True, nonempty=True)


def test_default_group_by_false_keeps_duplicate_rows(
    tpch_model: SemanticModel, engine: tuple[Engine, str]
) -> None:
    db, dialect = engine
    got = rows(db, compile_query(tpch_model, UNGROUPED, dialect=dialect).sql)
    want = rows(db, UNGROUPED_SQL)
    assert len(set(want)) < len(want), "the case must have duplicate rows"
    assert_same_rows(got, want, ordered=False, nonempty=True)
    grouped = compile_query(tpch_model, {**UNGROUPED, "default_group_by": True}, dialect=dialect)
    assert len(rows(db, grouped.sql)) == len(set(want))


def test_join_via_map_joins_through_partsupp(
    tpch_model: SemanticModel, engine: tuple[Engine, str]
) -> None:
    db, dialect = engine
    got = rows(db, compile_query(tpch_model, VIA_PARTSUPP, dialect=dialect).sql)
    assert_same_rows(ints(got), ints(rows(db, VIA_SQL)), ordered=False, nonempty=True)


def test_a_multi_field_filter_ors_across_fields(
    tpch_model: SemanticModel, engine: tuple[Engine, str]
) -> None:
    db, dialect = engine
    got = rows(db, compile_query(tpch_model, CONTROLLED, dialect=dialect).sql)
    want = rows(db, CONTROLLED_SQL)
    assert len(want) == 5  # BUILDING customers in every region, ASIA's all
    assert_same_rows(ints(got), ints(want), ordered=False, nonempty=True)


def _asia_user() -> Viewer:
    attrs = {"region": ("ASIA",), "segment_pattern": ("%",), "min_balance": ("-1000",),
             "min_customers": ("0",), "max_size": ("50",),
             "omni_is_org_admin": ("false",)}  # fmt: skip
    numeric = frozenset({"min_balance", "min_customers", "max_size"})
    return Viewer("u-asia", attrs, numeric, role="QUERIER")


@pytest.mark.parametrize("engine_name", ["tpch_engine", "tpch_postgres"])
def test_the_or_never_widens_a_users_access_filter(
    engine_name: str, request: pytest.FixtureRequest
) -> None:
    """A user of ASIA asks for EUROPE or BUILDING: they get ASIA's BUILDING customers, and
    no European row (the OR sits in brackets, ANDed with their access filter)."""
    db: Engine = request.getfixturevalue(engine_name)
    europe = {**OR_SEGMENT_OR_ASIA["filters"][0],
              "filter": {"type": "string", "kind": "EQUALS", "values": ["EUROPE"]}}  # fmt: skip
    control = {**OR_SEGMENT_OR_ASIA, "filters": [europe, OR_SEGMENT_OR_ASIA["filters"][1]]}
    query = {"join_paths_from_topic_name": "customer", "controls": [control],
             "fields": ["region.r_name", "customer.count"]}  # fmt: skip
    dialect = "duckdb" if engine_name == "tpch_engine" else "postgres"
    compiled = compile_query(governed_model(), query, dialect=dialect, viewer=_asia_user())
    got = ints(rows(db, compiled.sql))
    want = ints(
        rows(
            db,
            f"""SELECT r_name, COUNT(*) {CUSTOMERS} WHERE r_name = 'ASIA'
        AND c_acctbal >= -1000 AND c_mktsegment = 'BUILDING' GROUP BY 1""",
        )
    )
    assert [r[0] for r in got] == ["ASIA"]
    assert_same_rows(got, want, ordered=False, nonempty=True)
    transposed = {**query, "transposed_measures": ["customer.count"]}
    compiled = compile_query(governed_model(), transposed, dialect=dialect, viewer=_asia_user())
    assert ints(rows(db, compiled.sql)) == [("ASIA", "customer.count", 0, float(want[0][1]))]
