"""The database's column types feed the model: data types, default timeframes, and warnings
for columns that do not exist (warnings: one missing column must not take the model down)."""

from __future__ import annotations

import pytest

from assay.demo.tpch import tpch_model_dir
from assay.engines import DuckDBEngine
from assay.semantic.catalog import DEFAULT_TIMEFRAMES, omni_type
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model, load_model, read_model_files


@pytest.mark.parametrize(
    ("sql_type", "expected"),
    [("DECIMAL(15,2)", "NUMBER"), ("BIGINT", "NUMBER"), ("DOUBLE", "NUMBER"),
     ("VARCHAR", "STRING"), ("DATE", "TIMESTAMP"), ("TIMESTAMP WITH TIME ZONE", "TIMESTAMP"),
     ("BOOLEAN", "BOOLEAN"), ("INTEGER[]", "ARRAY"), ("JSON", "JSON"), ("INTERVAL", "INTERVAL"),
     ("nonsense type(", "UNKNOWN")],
)  # fmt: skip
def test_omni_types(sql_type: str, expected: str) -> None:
    assert omni_type(sql_type) == expected


def test_catalog_types_every_column_dimension(tpch_engine: DuckDBEngine) -> None:
    model = load_model(tpch_model_dir(), catalog=tpch_engine.catalog())
    assert model.warnings == ()
    dims = model.views["orders"].dimensions
    assert dims["o_totalprice"].data_type == "NUMBER"
    assert dims["o_orderpriority"].data_type == "STRING"
    assert dims["o_orderdate"].data_type == "TIMESTAMP"
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.o_orderkey", "orders.o_orderstatus"],
    }
    compiled = compile_query(model, query)
    assert [f.data_type for f in compiled.fields] == ["NUMBER", "STRING"]


def test_date_columns_without_timeframes_get_omnis_default_set(tpch_engine: DuckDBEngine) -> None:
    files = dict(read_model_files(tpch_model_dir()))
    files["orders.view"] = files["orders.view"].replace("timeframes:", "unused_timeframes:")
    files["orders.view"] = "\n".join(
        line for line in files["orders.view"].splitlines() if "unused_timeframes" not in line
    )
    model = build_model(files, name="tpch", catalog=tpch_engine.catalog())
    assert model.views["orders"].dimensions["o_orderdate"].timeframes == DEFAULT_TIMEFRAMES
    fields = ["orders.o_orderdate[quarter]", "orders.o_orderpriority[month]"]
    ok = compile_query(model, {"join_paths_from_topic_name": "orders", "fields": fields})
    assert ok.columns == ["orders.o_orderdate[quarter]"]
    assert ok.missing_fields == ("orders.o_orderpriority[month]",)  # a string has no grains


def test_missing_columns_and_tables_are_warnings_with_suggestions(
    tpch_engine: DuckDBEngine,
) -> None:
    files = dict(read_model_files(tpch_model_dir()))
    files["orders.view"] = files["orders.view"].replace(
        "  o_clerk:", "  o_clerk:\n    sql: o_clerc", 1
    )
    files["region.view"] = files["region.view"].replace("table_name: region", "table_name: regions")
    model = build_model(files, name="tpch", catalog=tpch_engine.catalog())
    messages = {(w.file, w.yaml_path): w.message for w in model.warnings}
    assert "'o_clerc' does not exist" in messages[("orders.view", "dimensions.o_clerk.sql")]
    assert 'Did you mean "o_clerk"' in messages[("orders.view", "dimensions.o_clerk.sql")]
    assert "'regions' was not found" in messages[("region.view", "table_name")]
    assert all(w.is_warning for w in model.warnings)
