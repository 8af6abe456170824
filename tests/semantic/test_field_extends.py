"""A field's own ``extends: [view.field]``: the field inherits the named fields' parameters,
its own overriding them (Omni keeps reusable formats and labels in a template view). On the
TPC-H demo model: metadata as inherited, rows against hand-written SQL on DuckDB, and each
malformed ``extends`` refusing the model with file, path and suggestion."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.errors import ModelInvalid
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.rows import assert_same_rows
from tests.semantic.test_special_dimensions import rows

pytestmark = pytest.mark.tpch

FORMATS = {
    "template": True,
    "dimensions": {
        "money": {"format": "usdcurrency_2", "label": "Money", "description": "In US dollars"},
    },
    "measures": {"total_money": {"aggregate_type": "sum", "format": "usdcurrency_0",
                                 "label": "Total"}},
}  # fmt: skip
ORDERS_FIELDS: dict[str, dict[str, Any]] = {
    "dimensions": {
        "totalprice_usd": {"extends": ["formats.money"], "sql": "${o_totalprice}",
                           "label": "Order Value"},
        # a chain: the template's format, then totalprice_usd's SQL and label
        "totalprice_copy": {"extends": ["orders.totalprice_usd"], "description": "A copy"},
    },
    "measures": {"revenue_usd": {"extends": ["formats.total_money"], "sql": "${o_totalprice}"}},
}  # fmt: skip


def _model(orders_fields: dict[str, dict[str, Any]]) -> SemanticModel:
    files = read_model_files(tpch_model_dir())
    files["formats.view"] = yaml.safe_dump(FORMATS)
    orders = yaml.safe_load(files["orders.view"])
    for kind, fields in orders_fields.items():
        orders.setdefault(kind, {}).update(fields)
    files["orders.view"] = yaml.safe_dump(orders, sort_keys=False)
    return build_model(files, name="tpch")


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return _model(ORDERS_FIELDS)


def test_fields_inherit_and_override(model: SemanticModel) -> None:
    orders = model.views["orders"]
    usd = orders.dimensions["totalprice_usd"]
    assert (usd.format, usd.label, usd.description) == ("usdcurrency_2", "Order Value",
                                                        "In US dollars")  # fmt: skip
    revenue = orders.measures["revenue_usd"]
    assert (revenue.format, revenue.label, revenue.aggregate_type) == ("usdcurrency_0", "Total",
                                                                       "sum")  # fmt: skip
    copy = orders.dimensions["totalprice_copy"]
    assert (copy.format, copy.label, copy.description) == ("usdcurrency_2", "Order Value",
                                                           "A copy")  # fmt: skip
    assert "formats" not in model.views  # a template is a starting point only


def test_inherited_sql_reads_the_extending_view(
    model: SemanticModel, tpch_engine: DuckDBEngine
) -> None:
    query = {
        "table": "orders",
        "fields": ["orders.o_orderstatus", "orders.revenue_usd", "orders.totalprice_copy"],
        "filters": {"orders.totalprice_copy": {"type": "number", "kind": "GREATER_THAN",
                                               "values": [400000]}},
        "limit": None,
    }  # fmt: skip
    got = rows(tpch_engine, compile_query(model, query).sql)
    want = rows(
        tpch_engine,
        "SELECT o_orderstatus, SUM(o_totalprice), o_totalprice FROM orders "
        "WHERE o_totalprice > 400000 GROUP BY 1, 3",
    )
    assert_same_rows(got, want, ordered=False)
    assert got


def _issues(orders_fields: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    with pytest.raises(ModelInvalid) as caught:
        _model(orders_fields)
    return [(i.file, i.yaml_path, i.message) for i in caught.value.issues]


@pytest.mark.parametrize(
    ("fields", "path", "words"),
    [
        ({"dimensions": {"x": {"extends": ["formats.mony"]}}}, "dimensions.x.extends[0]",
         ["no field 'mony' in view 'formats'", 'Did you mean "money"?']),
        ({"dimensions": {"x": {"extends": ["fromats.money"]}}}, "dimensions.x.extends[0]",
         ["no view 'fromats'", 'Did you mean "formats"?']),
        ({"dimensions": {"x": {"extends": ["formats.total_money"]}}}, "dimensions.x.extends[0]",
         ["is one of the measures: dimensions extend dimensions only"]),
        ({"dimensions": {"x": {"extends": "formats.money"}}}, "dimensions.x.extends",
         ["extends must be a list of fields"]),
        ({"dimensions": {"a": {"extends": ["orders.b"]}, "b": {"extends": ["orders.a"]}}},
         "dimensions.b.extends[0]", ["field extends form a cycle: orders.a -> orders.b"]),
    ],
    ids=["unknown_field", "unknown_view", "measure_from_dimension", "not_a_list", "cycle"],
)  # fmt: skip
def test_a_malformed_field_extends_refuses_the_model(
    fields: dict[str, dict[str, Any]], path: str, words: list[str]
) -> None:
    issues = _issues(fields)
    assert any(
        file == "orders.view" and where == path and all(w in message for w in words)
        for file, where, message in issues
    ), issues
