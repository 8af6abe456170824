"""A topic's own ``views``: views only that topic sees. The supply_lines topic relabels and
redefines ``lineitem.revenue`` (tax included), adds a filtered measure, a ratio measure and a
dimension to ``lineitem``, and extends ``nation`` inline as ``supplier_nation_x``, joined
through the topic's own relationship, next to the customer's ``nation``. Rows against
hand-written SQL on the TPC-H demo data; every other topic, and a query without a topic, keeps
the model's views."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.errors import ModelInvalid, QueryError
from assay.semantic.access import visible_model
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.describe import topic_payload
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from assay.semantic.viewer import Viewer
from tests.rows import assert_same_rows
from tests.semantic.test_special_dimensions import rows

pytestmark = pytest.mark.tpch

NET = "l_extendedprice * (1 - l_discount)"
TAXED = f"{NET} * (1 + l_tax)"
SUPPLY_LINES: dict[str, Any] = {
    "base_view": "lineitem",
    "views": {
        "lineitem": {
            "measures": {
                "revenue": {
                    "label": "Revenue incl. Tax",
                    "sql": "${l_extendedprice} * (1 - ${l_discount}) * (1 + ${l_tax})",
                },
                "urgent_revenue": {
                    "sql": "${l_extendedprice} * (1 - ${l_discount})",
                    "aggregate_type": "sum",
                    "filters": {"orders.o_orderpriority": {"is": "1-URGENT"}},
                },
                "urgent_share": {"sql": "${urgent_revenue} / ${revenue}"},
            },
            "dimensions": {"is_bulk": {"sql": "${l_quantity} > 45"}},
        },
        "supplier_nation_x": {
            "extends": ["nation"],
            "label": "Supplier Nation",
            "dimensions": {"n_name": {"label": "Supplier Country"}},
        },
    },
    "relationships": [
        {
            "join_from_view": "supplier",
            "join_to_view": "supplier_nation_x",
            "on_sql": "${supplier.s_nationkey} = ${supplier_nation_x.n_nationkey}",
            "relationship_type": "many_to_one",
        }
    ],
    "joins": {"orders": {"customer": {"nation": {}}}, "supplier": {"supplier_nation_x": {}}},
}
IN_TOPIC = {"join_paths_from_topic_name": "supply_lines", "limit": None}
_FROM = """FROM lineitem l LEFT JOIN orders o ON l.l_orderkey = o.o_orderkey
  LEFT JOIN customer c ON o.o_custkey = c.c_custkey
  LEFT JOIN nation n ON c.c_nationkey = n.n_nationkey
  LEFT JOIN supplier s ON l.l_suppkey = s.s_suppkey
  LEFT JOIN nation sn ON s.s_nationkey = sn.n_nationkey"""
FRANCE = {"nation.n_name": {"kind": "EQUALS", "type": "string", "values": ["FRANCE"]}}
URGENT = f"SUM(CASE WHEN o.o_orderpriority = '1-URGENT' THEN {NET} END)"

#: name -> (query through the topic, hand-written SQL, whether row order matters)
CASES: dict[str, tuple[dict[str, Any], str, bool]] = {
    "topic_measures_by_supplier_nation": (
        {
            **IN_TOPIC,
            "fields": [
                "supplier_nation_x.n_name",
                "lineitem.urgent_revenue",
                "lineitem.revenue",
                "lineitem.urgent_share",
            ],
        },
        f"SELECT sn.n_name, {URGENT}, SUM({TAXED}), {URGENT} / SUM({TAXED}) {_FROM} GROUP BY 1",
        False,
    ),
    "customer_and_supplier_nation_side_by_side": (
        {
            **IN_TOPIC,
            "fields": ["nation.n_name", "supplier_nation_x.n_name", "lineitem.count"],
            "filters": FRANCE,
        },
        f"SELECT n.n_name AS c, sn.n_name AS s, COUNT(*) {_FROM} "
        "WHERE n.n_name = 'FRANCE' GROUP BY 1, 2",
        False,
    ),
    "topic_dimension": (
        {**IN_TOPIC, "fields": ["lineitem.is_bulk", "lineitem.count"]},
        f"SELECT l.l_quantity > 45, COUNT(*) {_FROM} GROUP BY 1",
        False,
    ),
}


def topic_views_model(
    topic: dict[str, Any] | None = None, files: dict[str, str] | None = None
) -> SemanticModel:
    """The TPC-H demo model with the supply_lines topic (``topic`` instead, if given) and
    ``files`` changed (name -> text)."""
    texts = read_model_files(tpch_model_dir())
    texts["supply_lines.topic"] = yaml.safe_dump(topic or SUPPLY_LINES, sort_keys=False)
    texts.update(files or {})
    return build_model(texts, name="tpch", attributes=["dept"])


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return topic_views_model()


@pytest.mark.parametrize("name", CASES)
def test_duckdb_matches_hand_written_sql(
    name: str, model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query, sql, ordered = CASES[name]
    got = rows(tpch_engine, compile_query(model, query).sql)
    assert got, "no rows: the case proves nothing"
    assert_same_rows(got, rows(tpch_engine, sql), ordered=ordered)


def test_the_topic_shows_its_own_labels(model: SemanticModel) -> None:
    query = CASES["topic_measures_by_supplier_nation"][0]
    labels = [f.label for f in compile_query(model, query).fields]
    assert labels == ["Supplier Country", "Urgent Revenue", "Revenue incl. Tax", "Urgent Share"]


def test_other_topics_and_no_topic_keep_the_models_views(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    """Alternating the two keeps each its own SQL: the compile caches are per variant."""
    by_year = ["orders.o_orderdate[year]", "lineitem.revenue"]
    want_net = rows(
        tpch_engine,
        f"SELECT YEAR(o.o_orderdate), SUM({NET}) {_FROM} GROUP BY 1",
    )
    want_taxed = rows(
        tpch_engine,
        f"SELECT YEAR(o.o_orderdate), SUM({TAXED}) {_FROM} GROUP BY 1",
    )
    for _ in range(2):
        for scope, want, label in (
            ({"join_paths_from_topic_name": "lineitem"}, want_net, "Revenue"),
            ({"table": "lineitem"}, want_net, "Revenue"),
            (IN_TOPIC, want_taxed, "Revenue incl. Tax"),
        ):
            compiled = compile_query(model, {**scope, "fields": by_year, "limit": None})
            assert compiled.fields[1].label == label, scope
            got = [(y.year, v) for y, v in rows(tpch_engine, compiled.sql)]
            assert_same_rows(got, want, ordered=False)
    for scope in ({"join_paths_from_topic_name": "lineitem"}, {"table": "lineitem"}):
        for field in ("lineitem.urgent_revenue", "supplier_nation_x.n_name"):
            with pytest.raises(QueryError):
                compile_query(model, {**scope, "fields": [field]})
    assert "supplier_nation_x" not in model.views
    assert "urgent_revenue" not in model.views["lineitem"].measures


def test_the_topic_renders_for_every_dialect(model: SemanticModel) -> None:
    query = CASES["topic_measures_by_supplier_nation"][0]
    for dialect in DIALECTS:
        sql = compile_query(model, query, dialect=dialect).sql
        assert "supplier_nation_x" in sql and "1-URGENT" in sql, dialect


def test_topic_detail_shows_the_topics_own_views_and_fields(model: SemanticModel) -> None:
    payload = topic_payload(model, model.topics["supply_lines"])
    views = {v["name"]: v for v in payload["views"]}
    assert "supplier_nation_x" in views
    text = repr(views["lineitem"])
    assert "urgent_revenue" in text and "Revenue incl. Tax" in text
    other = repr(topic_payload(model, model.topics["lineitem"]))
    assert "urgent_revenue" not in other and "supplier_nation_x" not in other


GRANTS = "access_grants:\n  finance: {user_attribute: dept, allowed_values: [finance]}\n"


def test_the_extended_views_grants_apply_in_the_topic(tpch_engine: DuckDBEngine) -> None:
    texts = read_model_files(tpch_model_dir())
    nation = texts["nation.view"] + "\nrequired_access_grants: [finance]\n"
    governed = topic_views_model(files={"model": texts["model"] + GRANTS, "nation.view": nation})
    query = {**IN_TOPIC, "fields": ["supplier_nation_x.n_name", "lineitem.count"]}
    sales = Viewer("u-sales", {"dept": ("sales",)}, frozenset())
    with pytest.raises(QueryError):
        compile_query(governed, query, viewer=sales)
    finance = Viewer("u-finance", {"dept": ("finance",)}, frozenset())
    assert len(rows(tpch_engine, compile_query(governed, query, viewer=finance).sql)) == 25
    for who, sees in ((sales, False), (finance, True)):  # the topic's detail, as each sees it
        cut = visible_model(governed, who)
        views = [v["name"] for v in topic_payload(cut, cut.topics["supply_lines"])["views"]]
        assert ("supplier_nation_x" in views) is sees and "lineitem" in views, views


def _issues(topic: dict[str, Any]) -> list[tuple[str, str, str]]:
    with pytest.raises(ModelInvalid) as caught:
        topic_views_model(topic)
    return [(i.file, i.yaml_path, i.message) for i in caught.value.issues if not i.is_warning]


def test_a_broken_topic_field_is_refused_with_the_topics_path() -> None:
    broken = yaml.safe_load(yaml.safe_dump(SUPPLY_LINES))
    broken["views"]["lineitem"]["measures"]["urgent_revenue"]["sql"] = "${l_extendedprise}"
    issues = _issues(broken)
    assert [(f, p) for f, p, _ in issues] == [
        ("supply_lines.topic", "views.lineitem.measures.urgent_revenue.sql")
    ], issues
    assert "l_extendedprice" in issues[0][2]


def test_a_new_view_reads_the_table_of_the_view_it_extends() -> None:
    """A view file without table_name reads the table named as its file; a topic's view
    extending it reads that table, not one named after the topic's view."""
    files = {
        "customers.view": "dimensions:\n  id: {primary_key: true}\n  name: {}\n",
        "orders.view": "dimensions:\n  id: {primary_key: true}\n  buyer_id: {}\n",
        "sales.topic": yaml.safe_dump(
            {
                "base_view": "orders",
                "views": {"buyers": {"extends": ["customers"]}},
                "relationships": [
                    {
                        "join_from_view": "orders",
                        "join_to_view": "buyers",
                        "on_sql": "${orders.buyer_id} = ${buyers.id}",
                        "relationship_type": "many_to_one",
                    }
                ],
                "joins": {"buyers": {}},
            }
        ),
    }
    model = build_model(files, name="shop")
    query = {"join_paths_from_topic_name": "sales", "fields": ["buyers.name"]}
    sql = compile_query(model, query).sql
    assert "LEFT JOIN customers AS buyers" in sql, sql
