"""``level_of_detail`` dimensions (one inner aggregate at a ``fixed`` grain, joined back to each
row) on the TPC-H demo data: grouped by, banded, filtered, sorted and summed, against
hand-written SQL on DuckDB; exact through the lineitem fan-out; an access-filtered user's
inner aggregate over their rows only; every dialect's rendering read back by its parser.

PostgreSQL and MariaDB run the same comparisons in
tests/engines/test_level_of_detail_dimensions.py; malformed ones are refused in
tests/fixtures/models/invalid/level_of_detail_dimension_problems.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from assay.engines import DuckDBEngine
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.semantic.test_distinct_on import rows, same_rows
from tests.special_model import lod_dimension_model

pytestmark = pytest.mark.tpch

_STATUS_F = {"orders.o_orderstatus": {"type": "string", "kind": "EQUALS", "values": ["F"]}}
#: each customer's order count over the orders with status F
_COUNT_F = (
    "SELECT o_custkey, COUNT(o_orderkey) AS n FROM orders WHERE o_orderstatus = 'F' GROUP BY 1"
)
_BAND = "CASE WHEN c.n >= 20 THEN 'loyal' ELSE 'casual' END"
_NATION = """FROM orders JOIN customer ON o_custkey = c_custkey
             JOIN nation ON c_nationkey = n_nationkey"""

#: (query, hand-written SQL in DuckDB's and PostgreSQL's common dialect)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    # grouped by the customer's lifetime count in bands; the query's filter applies inside
    "bands_of_the_customer_order_count": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "orders.customer_order_band",
                "orders.count",
                "orders.sum_customer_order_count",
            ],
            "filters": _STATUS_F,
        },
        f"""SELECT {_BAND}, COUNT(*), SUM(c.n) FROM orders
            JOIN ({_COUNT_F}) AS c ON c.o_custkey = orders.o_custkey
            WHERE o_orderstatus = 'F' GROUP BY 1""",
    ),
    # a filter on the dimension filters the rows it is joined to, not the rows it counts
    "filtered_and_sorted_by_the_count": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.customer_order_count", "orders.count"],
            "filters": {
                **_STATUS_F,
                "orders.customer_order_count": {
                    "kind": "GREATER_THAN",
                    "type": "number",
                    "values": [15],
                },
            },
            "sorts": [{"column_name": "orders.customer_order_count", "sort_descending": True}],
        },
        f"""SELECT c.n, COUNT(*) FROM orders
            JOIN ({_COUNT_F}) AS c ON c.o_custkey = orders.o_custkey
            WHERE o_orderstatus = 'F' AND c.n > 15 GROUP BY 1 ORDER BY 1 DESC""",
    ),
    # cancel_query_filters: the count is over all the customer's orders
    "cancelled_query_filters": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.customer_order_count_all", "orders.count"],
            "filters": _STATUS_F,
        },
        """SELECT c.n, COUNT(*) FROM orders
           JOIN (SELECT o_custkey, COUNT(*) AS n FROM orders GROUP BY 1) AS c
             ON c.o_custkey = orders.o_custkey
           WHERE o_orderstatus = 'F' GROUP BY 1""",
    ),
    # a grain of another view: the largest order of each order's customer's nation
    "max_order_in_the_nation_by_priority": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.o_orderpriority", "orders.max_order_in_nation", "orders.count"],
        },
        f"""SELECT o_orderpriority, m.v, COUNT(*) {_NATION}
            JOIN (SELECT n_name, MAX(o_totalprice) AS v {_NATION} GROUP BY 1) AS m USING (n_name)
            GROUP BY 1, 2""",
    ),
    # lineitem repeats each order per line: the inner count still counts each order once
    "through_the_lineitem_fanout": (
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": [
                "orders.customer_order_band",
                "lineitem.revenue",
                "orders.sum_customer_order_count",
                "orders.max_order_overall",
            ],
        },
        f"""WITH c AS (SELECT o_custkey, COUNT(*) AS n FROM orders GROUP BY 1),
            ob AS (SELECT o_orderkey, c.n, {_BAND} AS band FROM orders JOIN c USING (o_custkey))
            SELECT ob.band, SUM(l_extendedprice * (1 - l_discount)) AS rev,
                   (SELECT SUM(o2.n) FROM ob AS o2 WHERE o2.band = ob.band) AS n,
                   (SELECT MAX(o_totalprice) FROM orders) AS mx
            FROM lineitem JOIN ob ON l_orderkey = ob.o_orderkey GROUP BY 1""",
    ),
}


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return lod_dimension_model()


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql = CASES[name]
    got = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    same_rows(sorted(got), sorted(rows(tpch_engine, sql)))


def test_the_fanout_case_is_a_real_trap(model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    """Counting the orders over the joined lines would count each order once per line."""
    customer_1 = {"orders.o_custkey": {"kind": "EQUALS", "type": "number", "values": [1]}}
    query = {"join_paths_from_topic_name": "lineitem",
             "fields": ["orders.o_custkey", "orders.customer_order_count"],
             "filters": customer_1}  # fmt: skip
    ((_, once),) = rows(tpch_engine, compile_query(model, query).sql)
    ((per_line,),) = rows(tpch_engine, "SELECT COUNT(o_orderkey) FROM lineitem JOIN orders "
                          "ON l_orderkey = o_orderkey WHERE o_custkey = 1")  # fmt: skip
    ((orders,),) = rows(tpch_engine, "SELECT COUNT(*) FROM orders WHERE o_custkey = 1")
    assert once == orders and per_line > 2 * orders


ACCESS_FILTER = """
access_filters:
  - field: region.r_name
    user_attribute: region
    values_for_unfiltered: [ALL]
"""


def test_an_access_filtered_user_gets_the_inner_aggregate_of_their_rows(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """Governed means per user: the grand value a region's user sees is their region's."""
    files = dict(model.files)
    files["orders.topic"] += ACCESS_FILTER
    governed = build_model(files, name="tpch", attributes=["region"])
    query = {"join_paths_from_topic_name": "orders", "fields": ["orders.max_order_overall"]}

    def seen(region: str) -> Any:
        viewer = Viewer(f"u-{region}", {"region": (region,)}, frozenset())
        ((value,),) = rows(tpch_engine, compile_query(governed, query, viewer=viewer).sql)
        return value

    ((asia,),) = rows(tpch_engine, f"SELECT MAX(o_totalprice) {_NATION} JOIN region "
                      "ON n_regionkey = r_regionkey WHERE r_name = 'ASIA'")  # fmt: skip
    ((everyone,),) = rows(tpch_engine, "SELECT MAX(o_totalprice) FROM orders")
    assert seen("ASIA") == asia != everyone
    assert seen("ALL") == everyone


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", CASES)
def test_every_dialect_renders_and_reparses(name: str, dialect: str, model: SemanticModel) -> None:
    sql = compile_query(model, CASES[name][0], dialect=dialect).sql
    sqlglot.parse_one(sql, read=dialect)
