"""``join_to_view_as``: the same view joined twice under aliases (the buyer's nation and the
seller's nation of a line item) on the TPC-H demo data, each query's rows against
hand-written SQL on DuckDB, and every dialect's rendering read back by its own parser.

PostgreSQL and MariaDB run the same comparisons in tests/engines/test_aliases.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlglot

from assay.engines import DuckDBEngine
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.model import SemanticModel
from tests.alias_model import alias_model
from tests.rows import assert_same_rows
from tests.semantic.test_special_dimensions import rows

pytestmark = pytest.mark.tpch

_TRADE = """FROM lineitem l
  LEFT JOIN orders o ON l.l_orderkey = o.o_orderkey
  LEFT JOIN customer c ON o.o_custkey = c.c_custkey
  LEFT JOIN nation cn ON c.c_nationkey = cn.n_nationkey
  LEFT JOIN supplier s ON l.l_suppkey = s.s_suppkey
  LEFT JOIN nation sn ON s.s_nationkey = sn.n_nationkey"""

#: (query, hand-written SQL in DuckDB's and PostgreSQL's common dialect, ordered?)
CASES: dict[str, tuple[dict[str, Any], str, bool]] = {
    "buyer_and_seller_nation": (
        {
            "join_paths_from_topic_name": "trade",
            "fields": ["buyer_nation.n_name", "seller_nation.n_name", "lineitem.count"],
            "limit": None,
        },
        f"SELECT cn.n_name AS buyer, sn.n_name AS seller, COUNT(*) {_TRADE} GROUP BY 1, 2",
        False,
    ),
    "filter_and_sort_on_aliases": (
        {
            "join_paths_from_topic_name": "trade",
            "fields": ["buyer_nation.n_name", "lineitem.sum_quantity"],
            "filters": {
                "seller_nation.n_name": {"type": "string", "kind": "EQUALS", "values": ["FRANCE"]},
                "buyer_nation.n_name": {
                    "type": "string",
                    "kind": "EQUALS",
                    "values": ["FRANCE"],
                    "is_negative": True,
                },
            },
            "sorts": [{"column_name": "lineitem.sum_quantity", "sort_descending": True}],
            "limit": None,
        },
        f"""SELECT cn.n_name, SUM(l.l_quantity) {_TRADE}
            WHERE sn.n_name = 'FRANCE' AND cn.n_name <> 'FRANCE'
            GROUP BY 1 ORDER BY 2 DESC""",
        True,
    ),
    "same_nation_both_sides": (
        {
            "join_paths_from_topic_name": "trade",
            "fields": ["seller_nation.n_name", "lineitem.count"],
            "filters": {
                "buyer_nation.n_name": {
                    "type": "string",
                    "kind": "EQUALS",
                    "values": ["JAPAN", "PERU"],
                },
                "seller_nation.n_name": {
                    "type": "string",
                    "kind": "EQUALS",
                    "values": ["JAPAN", "PERU"],
                },
            },
        },
        f"""SELECT sn.n_name, COUNT(*) {_TRADE}
            WHERE cn.n_name IN ('JAPAN', 'PERU') AND sn.n_name IN ('JAPAN', 'PERU')
            GROUP BY 1""",
        False,
    ),
    "alias_below_an_alias_with_where_sql": (
        {
            "join_paths_from_topic_name": "trade",
            "fields": ["buyer_region.r_name", "seller_nation.n_name", "lineitem.count"],
            "limit": None,
        },
        f"""SELECT cr.r_name, sn.n_name, COUNT(*) {_TRADE}
            JOIN region cr ON cn.n_regionkey = cr.r_regionkey
            WHERE cr.r_name <> 'AFRICA' GROUP BY 1, 2""",
        False,
    ),
    "fields_naming_their_own_view": (
        {
            "join_paths_from_topic_name": "trade",
            "fields": [
                "buyer_nation.name_and_key",
                "buyer_nation.count_in_europe",
                "seller_nation.count_in_europe",
            ],
            "limit": None,
        },
        f"""SELECT cn.n_name || '-' || CAST(cn.n_nationkey AS VARCHAR) AS name_and_key,
                   COUNT(DISTINCT CASE WHEN cn.n_regionkey = 3 THEN cn.n_nationkey END) AS b,
                   COUNT(DISTINCT CASE WHEN sn.n_regionkey = 3 THEN sn.n_nationkey END) AS s
            {_TRADE} GROUP BY 1""",
        False,
    ),
    "alias_as_the_base_view": (
        {"table": "seller_nation", "fields": ["seller_nation.n_name"], "limit": None},
        "SELECT n_name FROM nation",
        False,
    ),
}


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return alias_model()


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql, ordered = CASES[name]
    got = rows(tpch_engine, compile_query(model, query, dialect="duckdb").sql)
    assert_same_rows(got, rows(tpch_engine, sql), ordered=ordered, nonempty=True)


def test_the_alias_is_a_view_of_its_own(model: SemanticModel) -> None:
    buyer, seller, nation = (model.views[v] for v in ("buyer_nation", "seller_nation", "nation"))
    assert buyer.label == "Buyer Nation" and seller.label == "Seller Nation"
    assert list(buyer.dimensions) == list(nation.dimensions)
    assert buyer.dimensions["n_name"].label == nation.dimensions["n_name"].label
    assert buyer.source.sql() == "nation AS buyer_nation"
    assert buyer.dimensions["name_and_key"].views_used == {"buyer_nation"}


def test_the_demo_topics_still_join_nation_itself(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query = {"join_paths_from_topic_name": "customer", "fields": ["nation.n_name",
             "customer.count"], "limit": None}  # fmt: skip
    sql = compile_query(model, query).sql
    assert "AS nation" in sql and "buyer_nation" not in sql
    want = (
        "SELECT n_name, COUNT(*) FROM customer JOIN nation ON c_nationkey = n_nationkey GROUP BY 1"
    )
    assert_same_rows(rows(tpch_engine, sql), rows(tpch_engine, want), ordered=False, nonempty=True)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", CASES)
def test_every_dialect_renders_and_reparses(name: str, dialect: str, model: SemanticModel) -> None:
    sql = compile_query(model, CASES[name][0], dialect=dialect).sql
    sqlglot.parse_one(sql, read=dialect)
