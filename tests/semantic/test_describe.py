"""The topic, topic-list and view payloads, against the tpch and shop models and the shape of
Omni's real topic payload (docs/reference/order_items.topic.json)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.describe import topic_payload, topic_summary, view_payload
from assay.semantic.loader import build_model, load_model, read_model_files
from assay.semantic.model import SemanticModel

SHOP = Path(__file__).resolve().parent.parent / "fixtures" / "models" / "shop"
REFERENCE = Path("/work/shared/docs/reference/order_items.topic.json")

# The keys of the field entries in Omni's real topic payload, by kind of entry: those every
# entry of the kind has, then those only some have (checked against the file when it is here).
REFERENCE_KEYS: dict[str, tuple[set[str], set[str]]] = {
    "dimension": (
        {"data_type", "field_name", "fully_qualified_name", "is_dimension", "view_name"},
        {"all_values", "expr", "extension_model_id", "format", "label", "sql", "view_label"},
    ),
    "date_parent": (
        {"data_type", "field_name", "fully_qualified_name", "group_label", "is_dimension",
         "is_group_parent_field", "parent_field", "parent_label", "time_frames", "view_name"},
        {"extension_model_id", "view_label"},
    ),
    "timeframe": (
        {"data_type", "date_type", "field_name", "fully_qualified_name", "group_label",
         "is_dimension", "label", "parent_field", "parent_label", "time_frames", "view_name"},
        {"drill_fields", "extension_model_id", "view_label"},
    ),
    "aggregation": (
        {"aggregate_type", "data_type", "display_sql", "field_name", "filters",
         "fully_qualified_name", "ignored", "label", "type", "view_name"},
        {"expr", "extension_model_id", "format", "original_sql_for_aggregation", "view_label"},
    ),
    "metric": (
        {"data_type", "expr", "extension_model_id", "field_name", "fully_qualified_name",
         "ignored", "label", "sql", "type", "view_name"},
        set(),
    ),
}  # fmt: skip
# What Assay cannot know: Omni's parsed tree of a field (`expr`), a dimension's `${}` SQL text
# (the loader keeps only the resolved tree; `display_sql` has it), and extension-model keys.
UNKNOWABLE: dict[str, set[str]] = {
    kind: {"expr", "extension_model_id", "view_label"} | ({"sql"} if kind == "dimension" else set())
    for kind in REFERENCE_KEYS
}


@pytest.fixture(scope="module")
def tpch() -> SemanticModel:
    return load_model(tpch_model_dir())


@pytest.fixture(scope="module")
def shop() -> SemanticModel:
    return load_model(SHOP)


def _view(payload: dict[str, Any], name: str) -> dict[str, Any]:
    (view,) = (v for v in payload["views"] if v["name"] == name)
    return dict(view)


def _field(view: dict[str, Any], name: str) -> dict[str, Any]:
    (entry,) = (f for f in view["dimensions"] + view["measures"] if f["field_name"] == name)
    return dict(entry)


def _kind(entry: dict[str, Any]) -> str:
    if "type" in entry:
        return str(entry["type"])
    if entry.get("is_group_parent_field"):
        return "date_parent"
    return "timeframe" if "date_type" in entry else "dimension"


def _entries(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for v in payload["views"] for f in v["dimensions"] + v["measures"]]


# ---------------------------------------------------------------- topic list and topic


def test_topic_summary(tpch: SemanticModel) -> None:
    summary = topic_summary(tpch, tpch.topics["lineitem"])
    assert summary == {
        "name": "lineitem",
        "base_view_name": "lineitem",
        "label": "Sales (Line Items)",
        "description": tpch.topics["lineitem"].description,
        "hidden": False,
    }  # no group_label: the topic has none, and unknown keys are left out


def test_lineitem_topic_has_every_joined_view(tpch: SemanticModel) -> None:
    payload = topic_payload(tpch, tpch.topics["lineitem"])
    names = [v["name"] for v in payload["views"]]
    assert names == sorted(
        ["lineitem", "orders", "customer", "nation", "region", "part", "supplier",
         "supplier_nation", "supplier_region", "partsupp"]
    )  # fmt: skip
    assert payload["name"] == payload["base_view_name"] == "lineitem"
    assert payload["ide_file_name"] == "lineitem.topic"
    assert payload["ai_context"].startswith("Each row of the base view is one order line item.")
    assert payload["default_filters"] == payload["always_where_filters"] == {}
    supplier_nation = _view(payload, "supplier_nation")
    assert supplier_nation["table_name"] == "nation"  # the view aliases another table
    assert supplier_nation["primary_key"] == [
        {"type": "field", "field_name": "supplier_nation.n_nationkey"}
    ]
    assert supplier_nation["ide_file_name"] == "supplier_nation.view"


def test_relationships_follow_the_join_tree(tpch: SemanticModel) -> None:
    payload = topic_payload(tpch, tpch.topics["lineitem"])
    rels = {r["id"]: r for r in payload["relationships"]}
    assert list(rels) == [
        "lineitem_orders", "orders_customer", "customer_nation", "nation_region",
        "lineitem_part", "lineitem_supplier", "supplier_supplier_nation",
        "supplier_nation_supplier_region", "lineitem_partsupp",
    ]  # fmt: skip
    assert {r["type"] for r in rels.values()} == {"MANY_TO_ONE"}
    assert {r["join_type"] for r in rels.values()} == {"ALWAYS_LEFT"}
    assert all(r["ignored"] is False and r["bidirectional"] is False for r in rels.values())
    assert rels["lineitem_orders"] == {
        "id": "lineitem_orders",
        "left_view_name": "lineitem",
        "right_view_name": "orders",
        "join_type": "ALWAYS_LEFT",
        "type": "MANY_TO_ONE",
        "on": {
            "type": "call",
            "operator": "SqlStdOperatorTable.EQUALS",
            "operands": [
                {"type": "field", "field_name": "lineitem.l_orderkey"},
                {"type": "field", "field_name": "orders.o_orderkey"},
            ],
            "distinct": False,
        },
        "sql": "${lineitem.l_orderkey} = ${orders.o_orderkey}",
        "ignored": False,
        "bidirectional": False,
    }
    on = rels["lineitem_partsupp"]["on"]
    assert on["operator"] == "SqlStdOperatorTable.AND"
    assert [o["operator"] for o in on["operands"]] == ["SqlStdOperatorTable.EQUALS"] * 2


def test_a_join_walked_from_the_one_side_is_one_to_many(tpch: SemanticModel) -> None:
    rels = {r["id"]: r for r in topic_payload(tpch, tpch.topics["orders"])["relationships"]}
    lineitem = rels["orders_lineitem"]
    assert (lineitem["left_view_name"], lineitem["right_view_name"]) == ("orders", "lineitem")
    assert lineitem["type"] == "ONE_TO_MANY"
    assert lineitem["sql"] == "${lineitem.l_orderkey} = ${orders.o_orderkey}"  # as declared
    assert rels["orders_customer"]["type"] == "MANY_TO_ONE"


def test_join_via_map(tpch: SemanticModel) -> None:
    payload = topic_payload(tpch, tpch.topics["lineitem"])
    via = payload["join_via_map"]
    assert via["region"] == ["orders", "customer", "nation"]
    assert via["supplier_region"] == ["supplier", "supplier_nation"]
    assert via["orders"] == via["part"] == via["partsupp"] == []
    assert "lineitem" not in via  # the base view is not joined
    assert payload["join_via_map_key_order"] == list(tpch.topics["lineitem"].joins)
    assert list(via) == payload["join_via_map_key_order"]


def test_a_date_appears_once_per_timeframe(tpch: SemanticModel) -> None:
    orders = _view(topic_payload(tpch, tpch.topics["lineitem"]), "orders")
    timeframes = tpch.views["orders"].dimensions["o_orderdate"].timeframes
    assert timeframes is not None and timeframes[0] == "raw"
    dates = [d for d in orders["dimensions"] if d.get("parent_field") == "o_orderdate"]
    assert [d["field_name"] for d in dates] == [
        "o_orderdate" if g == "raw" else f"o_orderdate[{g}]" for g in timeframes
    ]
    parent, *grains = dates
    assert parent["is_group_parent_field"] is True
    assert parent["data_type"] == "TIMESTAMP" and "date_type" not in parent
    assert parent["time_frames"] == [None, *(g.upper() for g in timeframes[1:])]
    by_grain = {d["date_type"]: d for d in grains}
    types = {g: by_grain[g]["data_type"] for g in ("DATE", "YEAR", "MONTH_NUM", "MONTH_NAME")}
    assert types == {
        "DATE": "TIMESTAMP", "YEAR": "TIMESTAMP", "MONTH_NUM": "NUMBER", "MONTH_NAME": "STRING"
    }  # fmt: skip
    month = by_grain["MONTH"]
    assert month["fully_qualified_name"] == "orders.o_orderdate[month]"
    assert month["label"] == "Month" and by_grain["DAY_OF_WEEK_NAME"]["label"] == "Day Of Week Name"
    assert month["parent_label"] == month["group_label"] == "Order Date"
    assert month["drill_fields"] == ["orders.o_orderdate[date]", "orders.o_orderdate[week]"]
    assert "drill_fields" not in by_grain["DATE"] and "drill_fields" not in by_grain["MONTH_NUM"]
    assert month["display_sql"] == "DATE_TRUNC('MONTH', orders.o_orderdate)"


def test_labels_descriptions_and_metadata(tpch: SemanticModel) -> None:
    payload = topic_payload(tpch, tpch.topics["lineitem"])
    for view in payload["views"]:
        model_view = tpch.views[view["name"]]
        assert view["label"] == model_view.label
        assert view.get("description") == model_view.description
        for entry in view["dimensions"] + view["measures"]:
            assert entry["label"], entry["fully_qualified_name"]
            assert entry["view_name"] == view["name"]
            assert entry["fully_qualified_name"] == f"{view['name']}.{entry['field_name']}"
    status = _field(_view(payload, "orders"), "o_orderstatus")
    assert status["label"] == "Order Status"
    assert status["description"].startswith("F = fulfilled")
    assert status["all_values"] == ["F", "O", "P"]
    assert "fulfillment status" in status["synonyms"]
    assert status["ai_context"].startswith("Fulfilled, complete or shipped orders are 'F'")
    assert status["display_sql"] == "orders.o_orderstatus"
    key = _field(_view(payload, "orders"), "o_orderkey")
    assert key["primary_key"] is True and key["format"] == "ID"
    assert _field(_view(payload, "lineitem"), "l_key")["hidden"] is True
    clerk = _field(_view(payload, "orders"), "o_clerk")
    assert clerk["sample_values"][0] == "Clerk#000000001"


def test_measures(tpch: SemanticModel) -> None:
    payload = topic_payload(tpch, tpch.topics["lineitem"])
    measures = [m for v in payload["views"] for m in v["measures"]]
    assert measures
    for m in measures:
        assert m["is_dimension"] is False and m["ignored"] is False
        if m["type"] == "aggregation":
            assert m["aggregate_type"] in {"SUM", "COUNT", "COUNT_DISTINCT", "AVERAGE"}
        else:
            assert m["type"] == "metric" and "aggregate_type" not in m and m["sql"]
    lineitem = _view(payload, "lineitem")
    revenue = _field(lineitem, "revenue")
    assert revenue["aggregate_type"] == "SUM" and revenue["format"] == "USDCURRENCY_2"
    assert revenue["display_sql"] == "SUM(lineitem.l_extendedprice * (1 - lineitem.l_discount))"
    assert _field(lineitem, "count")["display_sql"] == "COUNT(*)"
    high = _field(lineitem, "high_priority_line_count")
    assert high["filters"]["orders.o_orderpriority"]["values"] == ["1-URGENT", "2-HIGH"]
    share = _field(lineitem, "promo_revenue_share")
    assert share["sql"] == "100.0 * ${lineitem.promo_revenue} / ${lineitem.revenue}"
    assert (
        _field(_view(payload, "orders"), "count_customers")["display_sql"]
        == "COUNT(DISTINCT orders.o_custkey)"
    )


def test_sample_queries(tpch: SemanticModel) -> None:
    topic = tpch.topics["orders"]
    samples = topic_payload(tpch, topic)["sample_queries"]
    assert [s["label"] for s in samples] == [s.label for s in topic.sample_queries]
    first = samples[0]
    assert first["prompt"] == "Who are the top 5 customers by total order value?"
    assert first["query"]["fields"] == ["customer.c_name", "orders.sum_totalprice"]
    assert first["query"]["join_paths_from_topic_name"] == "orders"
    assert set(first) == {"label", "query", "prompt"}  # no ai_context on this one


def test_payloads_are_plain_json(tpch: SemanticModel, shop: SemanticModel) -> None:
    for model in (tpch, shop):
        for topic in model.topics.values():
            for payload in (topic_payload(model, topic), topic_summary(model, topic)):
                assert json.loads(json.dumps(payload)) == payload  # lists, not tuples
        for view in model.views.values():
            payload = view_payload(model, view)
            assert json.loads(json.dumps(payload)) == payload


# ---------------------------------------------------------------- Omni's shape


def test_reference_keys_are_those_of_the_reference_file() -> None:
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} is not on this machine")
    reference = _entries(json.loads(REFERENCE.read_text()))
    for kind, (always, sometimes) in REFERENCE_KEYS.items():
        keys = [set(f) for f in reference if _kind(f) == kind]
        assert (set.intersection(*keys), set.union(*keys) - always) == (always, sometimes), kind


@pytest.mark.parametrize("kind", sorted(REFERENCE_KEYS))
def test_field_entries_carry_the_reference_keys(
    kind: str, tpch: SemanticModel, shop: SemanticModel
) -> None:
    """Every key Assay can know that Omni gives every entry of a kind, Assay's entries of that
    kind all have; every key Omni gives only some of them, some of Assay's have."""
    always, sometimes = (keys - UNKNOWABLE[kind] for keys in REFERENCE_KEYS[kind])
    ours: list[set[str]] = [
        set(f)
        for model in (tpch, shop)
        for topic in model.topics.values()
        for f in _entries(topic_payload(model, topic))
        if _kind(f) == kind
    ]
    assert ours
    for keys in ours:
        assert always <= keys, always - keys
    seen = set().union(*ours)
    assert sometimes <= seen, sometimes - seen


class _DataType(Enum):
    ARRAY = "ARRAY"
    BOOLEAN = "BOOLEAN"
    INTERVAL = "INTERVAL"
    JSON = "JSON"
    NUMBER = "NUMBER"
    OTHER_UNGROUPABLE = "OTHER_UNGROUPABLE"
    STRING = "STRING"
    TIMESTAMP = "TIMESTAMP"
    UNKNOWN = "UNKNOWN"


class _Field(BaseModel):
    fully_qualified_name: str
    field_name: str
    data_type: _DataType
    aggregate_type: str | None = None
    label: str | None = None
    is_dimension: bool | None = None
    synonyms: list[str] | None = None
    date_type: str | None = None


class _View(BaseModel):
    name: str
    dimensions: list[_Field]
    measures: list[_Field]
    table_name: str | None = None


class _Relationship(BaseModel):
    id: str
    left_view_name: str
    right_view_name: str
    on: dict[str, Any]
    sql: str
    join_type: str
    type: str


class _Topic(BaseModel):
    """The parts of omni-python-sdk's pydantic topic model (examples/topic.py) that are
    required or typed; its ``on`` only admits one equality, so here it is any object."""

    name: str
    base_view_name: str | None = None
    relationships: list[_Relationship]
    views: list[_View]


def test_payloads_read_as_the_sdk_topic_model(tpch: SemanticModel, shop: SemanticModel) -> None:
    aggregates = {"COUNT", "COUNT_DISTINCT", "SUM", "AVERAGE", "MIN", "MAX", "MEDIAN"}
    aggregates |= {"PERCENTILE", "LIST"}
    for model in (tpch, shop):
        for topic in model.topics.values():
            parsed = _Topic.model_validate(topic_payload(model, topic))
            for view in parsed.views:
                assert {m.aggregate_type for m in view.measures} <= aggregates | {None}


# ---------------------------------------------------------------- curation, filters, views


def test_topic_fields_curation(shop: SemanticModel) -> None:
    payload = topic_payload(shop, shop.topics["order_items"])
    customers = _view(payload, "customers")
    # fields: [order_items.*, orders.*, customers.name, -customers.country, products.*]
    assert [f["field_name"] for f in customers["dimensions"] + customers["measures"]] == ["name"]
    assert customers["primary_key"] == []  # customers.id is not exposed
    orders = _view(payload, "orders")
    assert {f["field_name"] for f in orders["measures"]} == {"count", "completed_count"}
    # The uncurated topic and the view list show everything.
    whole = _view(topic_payload(shop, shop.topics["customers"]), "customers")
    assert {f["field_name"] for f in whole["dimensions"]} >= {"id", "name", "country"}


def test_topic_filters(shop: SemanticModel) -> None:
    payload = topic_payload(shop, shop.topics["order_items"])
    assert payload["default_filters"]["orders.created_at"]["left_side"] == "12 months ago"
    status = payload["always_where_filters"]["orders.status"]
    assert (status["kind"], status["values"], status["is_negative"]) == (
        "EQUALS",
        ["cancelled"],
        True,
    )
    assert payload["always_having_filters"] == {}


def test_shop_measure_kinds(shop: SemanticModel) -> None:
    items = _view(topic_payload(shop, shop.topics["order_items"]), "order_items")
    p90 = _field(items, "p90_price")
    assert (p90["aggregate_type"], p90["percentile"]) == ("PERCENTILE", 90)
    assert _field(items, "product_names")["aggregate_type"] == "LIST"
    assert _field(items, "product_names")["data_type"] == "STRING"
    assert _field(items, "revenue")["display_sql"] == (
        "SUM(order_items.quantity * order_items.sale_price)"
    )
    custom = _field(items, "average_line")
    assert custom["type"] == "metric" and "aggregate_type" not in custom
    assert custom["sql"] == "SUM(order_items.quantity * order_items.sale_price) / COUNT(*)"
    assert _field(items, "revenue_per_item")["sql"] == (
        "${order_items.revenue} / ${order_items.count}"
    )
    assert set(_field(items, "completed_bulk_revenue")["filters"]) == {
        "order_items.quantity",
        "orders.status",
    }


def test_view_payload(shop: SemanticModel) -> None:
    products = view_payload(shop, shop.views["products"])
    assert products["name"] == "products"
    assert (products["schema"], products["table_name"]) == ("catalog", "products")
    assert products["fields"] == [
        {"name": "id", "type": "dimension"},
        {"name": "name", "type": "dimension"},
        {"name": "category", "type": "dimension"},
        {"name": "cost", "type": "dimension"},
        {"name": "count", "type": "measure"},
    ]
    assert [d["field_name"] for d in products["dimensions"]] == ["id", "name", "category", "cost"]
    assert products["measures"][0]["fully_qualified_name"] == "products.count"
    orders = view_payload(shop, shop.views["orders"])
    names = [d["field_name"] for d in orders["dimensions"]]
    assert "created_at[month]" in names  # timeframes expand here too
    assert sum(f["type"] == "dimension" for f in orders["fields"]) == len(
        shop.views["orders"].dimensions
    )  # but the flat list names each field once


def test_data_types_come_from_the_database(tpch_engine: DuckDBEngine) -> None:
    model = load_model(tpch_model_dir(), catalog=tpch_engine.catalog())
    payload = topic_payload(model, model.topics["orders"])
    orders = _view(payload, "orders")
    assert _field(orders, "o_totalprice")["data_type"] == "NUMBER"
    assert _field(orders, "o_orderstatus")["data_type"] == "STRING"
    assert _field(orders, "o_orderdate")["data_type"] == "TIMESTAMP"
    # Without the database, an untyped column says so in Omni's own word.
    bare = load_model(tpch_model_dir())
    untyped = topic_payload(bare, bare.topics["orders"])
    assert _field(_view(untyped, "orders"), "o_totalprice")["data_type"] == "UNKNOWN"


def test_a_derived_table_view_shows_its_sql() -> None:
    files = {
        **read_model_files(SHOP),
        "big_orders.view": "sql: SELECT id FROM orders WHERE id > 1\n"
        "dimensions:\n  id:\n    primary_key: true\n",
    }
    model = build_model(files, name="shop")
    payload = view_payload(model, model.views["big_orders"])
    assert payload["sql"] == "SELECT id FROM orders WHERE id > 1"
    assert "table_name" not in payload and "schema" not in payload
    assert payload["primary_key"] == [{"type": "field", "field_name": "big_orders.id"}]
