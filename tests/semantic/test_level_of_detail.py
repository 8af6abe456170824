"""``level_of_detail`` measures (an aggregate of an aggregate at a ``fixed`` grain, or at the
query's grain with ``always_include`` fields or without ``always_exclude`` ones) on the TPC-H
demo data: each query's rows against hand-written SQL on DuckDB, an access-filtered user's
inner aggregate over their rows only (also with ``cancel_query_filters``), and every dialect's
rendering read back by its parser.

PostgreSQL and MariaDB run the same comparisons in tests/engines/test_level_of_detail.py; the
malformed ones are refused in tests/fixtures/models/invalid/level_of_detail_problems.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlglot
import yaml

from assay.engines import DuckDBEngine
from assay.errors import NotSupported
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.describe import view_payload
from assay.semantic.loader import build_model
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.semantic.test_distinct_on import rows, same_rows
from tests.special_model import lod_model
from tests.totals_cases import AGG

pytestmark = pytest.mark.tpch

_ORDERS = """FROM orders JOIN customer ON o_custkey = c_custkey
             JOIN nation ON c_nationkey = n_nationkey JOIN region ON n_regionkey = r_regionkey"""
#: each customer's lifetime order value, with the customer's nation and region
_LIFETIME = f"SELECT c_custkey, n_name, r_name, SUM(o_totalprice) AS t {_ORDERS} GROUP BY 1, 2, 3"
_STATUS_F = {"orders.o_orderstatus": {"type": "string", "kind": "EQUALS", "values": ["F"]}}

#: (query, hand-written SQL in DuckDB's and PostgreSQL's common dialect)
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "average_lifetime_value_by_nation": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["nation.n_name", "orders.avg_customer_lifetime_value", "orders.count"],
        },
        f"""SELECT a.n_name, a.v, c.n
            FROM (SELECT n_name, AVG(t) AS v FROM ({_LIFETIME}) AS l GROUP BY 1) AS a
            JOIN (SELECT n_name, COUNT(*) AS n {_ORDERS} GROUP BY 1) AS c ON c.n_name = a.n_name""",
    ),
    # lineitem repeats each order per line: the inner sum must still count each order once
    "through_the_lineitem_fanout": (
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": ["region.r_name", "orders.avg_customer_lifetime_value", "lineitem.revenue"],
        },
        f"""SELECT a.r_name, a.v, r.rev
            FROM (SELECT r_name, AVG(t) AS v FROM ({_LIFETIME}) AS l GROUP BY 1) AS a
            JOIN (SELECT r_name, SUM(l_extendedprice * (1 - l_discount)) AS rev
                  FROM lineitem JOIN orders ON l_orderkey = o_orderkey
                  JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey
                  JOIN region ON n_regionkey = r_regionkey GROUP BY 1) AS r
              ON r.r_name = a.r_name""",
    ),
    # query filters apply inside the level of detail (Omni, without cancel_query_filters)
    "query_filters_apply_inside": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["nation.n_name", "orders.avg_customer_lifetime_value"],
            "filters": _STATUS_F,
        },
        f"""SELECT n_name, AVG(t) FROM
              (SELECT c_custkey, n_name, SUM(o_totalprice) AS t {_ORDERS}
               WHERE o_orderstatus = 'F' GROUP BY 1, 2) AS l
            GROUP BY 1""",
    ),
    "percent_of_total": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "region.r_name",
                "orders.share_of_all_orders_value",
                "orders.all_orders_value",
            ],
        },
        f"""SELECT r_name, SUM(o_totalprice) / (SELECT SUM(o_totalprice) FROM orders),
              (SELECT SUM(o_totalprice) FROM orders)
            {_ORDERS} GROUP BY 1""",
    ),
    "inner_count_of_rows": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["customer.c_mktsegment", "orders.max_orders_per_customer"],
        },
        """SELECT c_mktsegment, MAX(n) FROM
             (SELECT c_custkey, c_mktsegment, COUNT(*) AS n
              FROM orders JOIN customer ON o_custkey = c_custkey GROUP BY 1, 2) AS l
           GROUP BY 1""",
    ),
    "no_dimensions": (
        {"join_paths_from_topic_name": "orders", "fields": ["orders.avg_customer_lifetime_value"]},
        f"SELECT AVG(t) FROM ({_LIFETIME}) AS l",
    ),
    "grain_of_two_views": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["region.r_name", "orders.avg_nation_segment_value"],
        },
        f"""SELECT r_name, AVG(t) FROM
              (SELECT n_name, c_mktsegment, r_name, SUM(o_totalprice) AS t {_ORDERS}
               GROUP BY 1, 2, 3) AS l
            GROUP BY 1""",
    ),
    # a filter on the measure keeps the groups whose outer value passes
    "filter_on_the_measure": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["nation.n_name", "orders.avg_customer_lifetime_value"],
            "filters": {
                "orders.avg_customer_lifetime_value": {
                    "type": "number",
                    "kind": "GREATER_THAN",
                    "values": [2150000],
                }
            },
        },
        f"""SELECT n_name, AVG(t) FROM ({_LIFETIME}) AS l GROUP BY 1
            HAVING AVG(t) > 2150000""",
    ),
    # always_include: the query's grain and each customer (a customer's value per priority,
    # not their lifetime value as fixed would give)
    "include_adds_the_customer_to_the_query_grain": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.o_orderpriority", "orders.avg_customer_value_in_group"],
            "filters": _STATUS_F,
        },
        """SELECT o_orderpriority, AVG(t) FROM
             (SELECT o_orderpriority, o_custkey, SUM(o_totalprice) AS t FROM orders
              WHERE o_orderstatus = 'F' GROUP BY 1, 2) AS l
           GROUP BY 1""",
    ),
    "include_through_the_lineitem_fanout": (
        {
            "join_paths_from_topic_name": "lineitem",
            "fields": ["region.r_name", "orders.avg_customer_value_in_group", "lineitem.revenue"],
        },
        f"""SELECT a.r_name, a.v, r.rev
            FROM (SELECT r_name, AVG(t) AS v FROM ({_LIFETIME}) AS l GROUP BY 1) AS a
            JOIN (SELECT r_name, SUM(l_extendedprice * (1 - l_discount)) AS rev
                  FROM lineitem JOIN orders ON l_orderkey = o_orderkey
                  JOIN customer ON o_custkey = c_custkey JOIN nation ON c_nationkey = n_nationkey
                  JOIN region ON n_regionkey = r_regionkey GROUP BY 1) AS r
              ON r.r_name = a.r_name""",
    ),
    "include_without_dimensions": (
        {"join_paths_from_topic_name": "orders", "fields": ["orders.avg_customer_value_in_group"]},
        f"SELECT AVG(t) FROM ({_LIFETIME}) AS l",
    ),
    # always_exclude: the query's grain without the nation, i.e. each region's total
    "exclude_leaves_the_nation_out": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": [
                "region.r_name",
                "nation.n_name",
                "orders.share_of_value_without_nation",
                "orders.value_without_nation",
            ],
            "filters": _STATUS_F,
        },
        f"""SELECT g.r_name, g.n_name, g.s / t.rt, t.rt
            FROM (SELECT r_name, n_name, SUM(o_totalprice) AS s {_ORDERS}
                  WHERE o_orderstatus = 'F' GROUP BY 1, 2) AS g
            JOIN (SELECT r_name, SUM(o_totalprice) AS rt {_ORDERS}
                  WHERE o_orderstatus = 'F' GROUP BY 1) AS t ON t.r_name = g.r_name""",
    ),
    # an excluded field the query does not group by changes nothing
    "exclude_of_a_field_not_in_the_query": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["customer.c_mktsegment", "orders.value_without_nation"],
        },
        """SELECT c_mktsegment, SUM(o_totalprice)
           FROM orders JOIN customer ON o_custkey = c_custkey GROUP BY 1""",
    ),
    "exclude_of_the_only_dimension_is_the_grand_total": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["nation.n_name", "orders.value_without_nation"],
        },
        f"SELECT n_name, (SELECT SUM(o_totalprice) FROM orders) {_ORDERS} GROUP BY 1",
    ),
    # cancel_query_filters: the customers are the filtered query's, their values lifetime ones
    "cancelled_filters_stay_out_of_the_inner_aggregate": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["nation.n_name", "orders.avg_unfiltered_lifetime_value", "orders.count"],
            "filters": _STATUS_F,
        },
        f"""SELECT a.n_name, a.v, c.n
            FROM (SELECT l.n_name, AVG(l.t) AS v FROM ({_LIFETIME}) AS l
                  WHERE l.c_custkey IN (SELECT o_custkey FROM orders WHERE o_orderstatus = 'F')
                  GROUP BY 1) AS a
            JOIN (SELECT n_name, COUNT(*) AS n {_ORDERS} WHERE o_orderstatus = 'F'
                  GROUP BY 1) AS c ON c.n_name = a.n_name""",
    ),
    "cancelled_filters_without_dimensions": (
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.avg_unfiltered_lifetime_value", "orders.unfiltered_total"],
            "filters": _STATUS_F,
        },
        f"""SELECT AVG(l.t), (SELECT SUM(o_totalprice) FROM orders) FROM ({_LIFETIME}) AS l
            WHERE l.c_custkey IN (SELECT o_custkey FROM orders WHERE o_orderstatus = 'F')""",
    ),
}


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return lod_model()


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql = CASES[name]
    got = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    same_rows(got, rows(tpch_engine, sql))


def test_the_fanout_case_is_a_real_trap(model: SemanticModel, tpch_engine: DuckDBEngine) -> None:
    """Summing the order totals over the joined lines would be several times larger."""
    per_line = """SELECT AVG(t) FROM (SELECT c_custkey, SUM(o_totalprice) AS t
                   FROM lineitem JOIN orders ON l_orderkey = o_orderkey
                   JOIN customer ON o_custkey = c_custkey GROUP BY 1) AS l"""
    query = {"join_paths_from_topic_name": "lineitem",
             "fields": ["orders.avg_customer_lifetime_value"]}  # fmt: skip
    ((once,),) = rows(tpch_engine, compile_query(model, query).sql)
    ((repeated,),) = rows(tpch_engine, per_line)
    assert repeated > 3 * once


def _tuples(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def test_every_timeframe_of_an_excluded_field_leaves_the_grain(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """By year and priority, excluding the order date: each priority's total over the
    filtered years, the same in both years' rows (and not the year's own sum)."""
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.o_orderdate[year]", "orders.o_orderpriority",
                   "orders.value_without_date", "orders.sum_totalprice"],
        "filters": {"orders.o_orderdate": {"type": "date", "kind": "TIME_FOR_INTERVAL_DURATION",
                                           "left_side": "1996-01-01", "right_side": "2 years"}},
    }  # fmt: skip
    sql = compile_query(model, query).sql
    got = {(r[0].year, r[1]): r[2:] for r in _tuples(tpch_engine, sql)}
    want_sql = """SELECT YEAR(o_orderdate), o_orderpriority, SUM(o_totalprice),
                         SUM(SUM(o_totalprice)) OVER (PARTITION BY o_orderpriority)
                  FROM orders WHERE o_orderdate >= DATE '1996-01-01'
                    AND o_orderdate < DATE '1998-01-01' GROUP BY 1, 2"""
    want = {(r[0], r[1]): (r[3], r[2]) for r in _tuples(tpch_engine, want_sql)}
    assert len(got) == 10 and got.keys() == want.keys()
    for key, (value, own) in got.items():
        assert float(value) == pytest.approx(float(want[key][0]), rel=1e-9)
        assert float(own) == pytest.approx(float(want[key][1]), rel=1e-9)
        assert value > Decimal("1.5") * own


ACCESS_FILTER = """
access_filters:
  - field: region.r_name
    user_attribute: region
    values_for_unfiltered: [ALL]
"""


def _who(*regions: str) -> Viewer:
    return Viewer("u-" + "-".join(regions), {"region": regions}, frozenset())


def test_an_access_filtered_user_gets_the_inner_aggregate_of_their_rows(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """Governed means per user: the grand total a region's user sees is their region's."""
    files = dict(model.files)
    files["orders.topic"] += ACCESS_FILTER
    governed = build_model(files, name="tpch", attributes=["region"])
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": [
            "nation.n_name",
            "orders.all_orders_value",
            "orders.avg_customer_lifetime_value",
        ],
    }
    asia = rows(tpch_engine, compile_query(governed, query, viewer=_who("ASIA")).sql)
    want = f"""SELECT n_name, (SELECT SUM(o_totalprice) {_ORDERS} WHERE r_name = 'ASIA'), AVG(t)
               FROM ({_LIFETIME}) AS l WHERE r_name = 'ASIA' GROUP BY 1"""
    same_rows(asia, rows(tpch_engine, want))
    everyone = rows(tpch_engine, compile_query(governed, query, viewer=_who("ALL")).sql)
    assert len(everyone) == 25 and len(asia) == 5
    assert everyone[0][1] > 4 * asia[0][1]  # all regions' total, not Asia's


ALWAYS_WHERE = """
always_where_filters:
  orders.o_orderpriority:
    is: [1-URGENT, 2-HIGH]
"""


def test_cancelled_query_filters_keep_the_users_rules(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """cancel_query_filters drops the query's filters from the inner aggregate, never the
    model's rules: an Asian user's unfiltered total is Asia's, of the topic's priorities."""
    files = dict(model.files)
    files["orders.topic"] += ACCESS_FILTER + ALWAYS_WHERE
    governed = build_model(files, name="tpch", attributes=["region"])
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["nation.n_name", "orders.unfiltered_total", "orders.sum_totalprice"],
        "filters": _STATUS_F,
    }
    rules = "r_name = 'ASIA' AND o_orderpriority IN ('1-URGENT', '2-HIGH')"
    asia = rows(tpch_engine, compile_query(governed, query, viewer=_who("ASIA")).sql)
    want = f"""SELECT n_name, (SELECT SUM(o_totalprice) {_ORDERS} WHERE {rules}),
                      SUM(o_totalprice)
               {_ORDERS} WHERE {rules} AND o_orderstatus = 'F' GROUP BY 1"""
    same_rows(asia, rows(tpch_engine, want))
    ((filtered_total,),) = rows(
        tpch_engine, f"SELECT SUM(o_totalprice) {_ORDERS} WHERE {rules} AND o_orderstatus = 'F'"
    )
    assert asia[0][1] > 1.5 * filtered_total  # the status filter really was left out


def test_column_totals_recompute_the_measure_at_each_level(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["region.r_name", "orders.avg_customer_lifetime_value"],
        "column_totals": {"orders.avg_customer_lifetime_value": AGG},
    }
    out = rows(tpch_engine, compile_query(model, query).sql)
    total = [r for r in out if r[0] is None]
    ((overall,),) = rows(tpch_engine, f"SELECT AVG(t) FROM ({_LIFETIME}) AS l")
    assert len(out) == 6 and len(total) == 1
    assert total[0][1] == pytest.approx(overall, rel=1e-9)


def test_field_metadata_and_describe(model: SemanticModel) -> None:
    query = {"table": "orders", "fields": ["orders.avg_customer_lifetime_value"]}
    (field,) = compile_query(model, query).fields
    assert field.to_dict()["aggregate_type"] == "average"
    described = yaml.safe_dump(view_payload(model, model.views["orders"]))
    assert "AVG(SUM(orders.o_totalprice))" in described


def test_omnisql_refuses_a_level_of_detail_measure_by_name(model: SemanticModel) -> None:
    query = {
        "join_paths_from_topic_name": "orders",
        "userEditedSQL": "SELECT ${orders.avg_customer_lifetime_value} FROM ${orders}",
    }
    with pytest.raises(NotSupported, match="has a level_of_detail, which OmniSQL does not"):
        compile_query(model, query)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", CASES)
def test_every_dialect_renders_and_reparses(name: str, dialect: str, model: SemanticModel) -> None:
    sql = compile_query(model, CASES[name][0], dialect=dialect).sql
    sqlglot.parse_one(sql, read=dialect)
