"""Starter models: a real DuckDB database -> describe_duckdb -> starter_files -> a folder that
load_model accepts and that answers queries equal to hand-written SQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from assay.engines import DuckDBEngine
from assay.engines.introspect import describe_duckdb
from assay.semantic.compiler import compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from assay.semantic.starter import (
    Column,
    DatabaseShape,
    Table,
    label_for,
    normalize_name,
    starter_files,
    write_model,
)
from tests.rows import assert_same_rows

SCHEMA = """
CREATE TABLE regions (region_id INTEGER PRIMARY KEY, "Region Name" VARCHAR);
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, name VARCHAR, region_id INTEGER REFERENCES regions (region_id),
    "Signup Date" DATE, credit DECIMAL(10, 2), "2fa" BOOLEAN);
CREATE TABLE customer_profiles (
    customer_id INTEGER PRIMARY KEY REFERENCES customers (id), bio VARCHAR);
CREATE TABLE products (
    sku VARCHAR, variant INTEGER, price DOUBLE, PRIMARY KEY (sku, variant));
CREATE TABLE employees (
    id INTEGER PRIMARY KEY, name VARCHAR, manager_id INTEGER REFERENCES employees (id));
CREATE TABLE orders (
    order_id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers (id),
    seller_id INTEGER REFERENCES employees (id), "Order Date" TIMESTAMP,
    amount DECIMAL(12, 2), status VARCHAR, "order" INTEGER);
CREATE TABLE order_lines (
    order_id INTEGER REFERENCES orders (order_id), line_no INTEGER, sku VARCHAR,
    variant INTEGER, qty INTEGER, PRIMARY KEY (order_id, line_no),
    FOREIGN KEY (sku, variant) REFERENCES products (sku, variant));
CREATE TABLE events (ts TIMESTAMP, kind VARCHAR, value DOUBLE);
CREATE TABLE assay_demo (scale DOUBLE, generator VARCHAR);
CREATE VIEW paid_orders AS SELECT * FROM orders WHERE status = 'paid';

INSERT INTO regions VALUES (1, 'North'), (2, 'South');
INSERT INTO customers VALUES
    (1, 'Ann', 1, DATE '2023-01-05', 100.50, true), (2, 'Bob', 2, DATE '2023-02-11', 20, false),
    (3, 'Cid', 1, DATE '2024-03-01', 7.25, NULL), (4, 'Dee', NULL, NULL, NULL, NULL);
INSERT INTO customer_profiles VALUES (1, 'likes tea'), (3, 'likes coffee');
INSERT INTO products VALUES ('A', 1, 9.5), ('A', 2, 11.0), ('B', 1, 3.25);
INSERT INTO employees VALUES (1, 'Boss', NULL);
INSERT INTO employees VALUES (2, 'Sam', 1), (3, 'Kim', 1);
INSERT INTO orders VALUES
    (10, 1, 2, TIMESTAMP '2024-01-03 10:00', 30.00, 'paid', 1),
    (11, 1, 3, TIMESTAMP '2024-01-20 12:30', 12.50, 'open', 2),
    (12, 2, 2, TIMESTAMP '2024-02-02 08:15', 99.99, 'paid', 3),
    (13, 3, NULL, TIMESTAMP '2024-03-15 17:45', 5.00, 'paid', 4),
    (14, NULL, 3, TIMESTAMP '2024-03-31 23:59', 1.00, 'open', 5);
INSERT INTO order_lines VALUES
    (10, 1, 'A', 1, 2), (10, 2, 'B', 1, 5), (11, 1, 'A', 2, 1), (12, 1, 'A', 1, 7),
    (12, 2, 'A', 2, 3), (12, 3, 'B', 1, 1), (13, 1, 'B', 1, 4);
INSERT INTO events VALUES
    (TIMESTAMP '2024-01-01 00:00', 'click', 1.5), (TIMESTAMP '2024-01-02 00:00', 'click', 2.0),
    (TIMESTAMP '2024-01-02 00:00', 'view', NULL);
"""


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DuckDBEngine, Path]]:
    root = tmp_path_factory.mktemp("starter")
    db = root / "shop.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute(SCHEMA)
    engine = DuckDBEngine(db)
    folder = root / "model"
    write_model(folder, starter_files(describe_duckdb(engine), model_name="shop"))
    yield engine, folder
    engine.close()


@pytest.fixture(scope="module")
def model(shop: tuple[DuckDBEngine, Path]) -> SemanticModel:
    engine, folder = shop
    return load_model(folder, catalog=engine.catalog())


def _file(folder: Path, name: str) -> Any:
    return yaml.safe_load((folder / name).read_text())


def _rows(engine: DuckDBEngine, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r.values()) for r in engine.execute(sql).to_pylist()]


def _check(model: SemanticModel, engine: DuckDBEngine, query: dict[str, Any], sql: str) -> None:
    compiled = compile_query(model, query)
    assert compiled.columns == query["fields"]
    want = _rows(engine, sql)
    assert want, "the hand-written SQL returned no rows: the case proves nothing"
    assert_same_rows(_rows(engine, compiled.sql), want, ordered=False)


def test_describe_reads_columns_and_keys(shop: tuple[DuckDBEngine, Path]) -> None:
    tables = {t.name: t for t in describe_duckdb(shop[0]).tables}
    assert "assay_demo" not in tables
    assert tables["paid_orders"].is_view
    assert tables["products"].primary_key == ("sku", "variant")
    assert tables["events"].primary_key == ()
    (fk,) = tables["order_lines"].foreign_keys[1:]
    assert (fk.columns, fk.referenced_table, fk.referenced_columns) == (
        ("sku", "variant"),
        "products",
        ("sku", "variant"),
    )
    columns = {c.name: c for c in tables["orders"].columns}
    assert columns["Order Date"].sql_type == "TIMESTAMP"
    assert not columns["order_id"].nullable and columns["amount"].nullable


def test_files_and_model_validate(shop: tuple[DuckDBEngine, Path], model: SemanticModel) -> None:
    folder = shop[1]
    assert not model.warnings
    assert set(model.views) == {
        "regions",
        "customers",
        "customer_profiles",
        "products",
        "employees",
        "orders",
        "order_lines",
        "events",
        "paid_orders",
        "manager_employees",
    }
    assert set(model.topics) == {
        "customers",
        "customer_profiles",
        "employees",
        "orders",
        "order_lines",
    }
    orders = _file(folder, "orders.view.yaml")
    dims = orders["dimensions"]
    assert dims["order_id"]["primary_key"] is True
    assert dims["order_date"] == {
        "sql": '"Order Date"',
        "label": "Order Date",
        "timeframes": ["raw", "date", "week", "month", "quarter", "year"],
    }
    assert dims["customer_id"]["label"] == "Customer Id"
    assert set(orders["measures"]) == {
        "count",
        "sum_amount",
        "avg_amount",
        "sum_order",
        "avg_order",
    }
    assert orders["measures"]["sum_amount"]["format"] == "number_2"
    assert _file(folder, "customers.view.yaml")["dimensions"]["c_2fa"]["sql"] == '"2fa"'
    products = _file(folder, "products.view.yaml")["dimensions"]
    assert products["products_key"]["primary_key"] and products["products_key"]["hidden"]
    assert model.views["products"].primary_key is not None
    events_text = (folder / "events.view.yaml").read_text()
    assert events_text.startswith("# Generated") and "fan-out" in events_text
    assert model.views["events"].primary_key is None
    assert (folder / "model.yaml").read_text().startswith("# Generated")
    rels = {
        (r["join_from_view"], r["join_to_view"]): r for r in _file(folder, "relationships.yaml")
    }
    assert rels[("order_lines", "products")]["on_sql"] == (
        "${order_lines.sku} = ${products.sku} AND ${order_lines.variant} = ${products.variant}"
    )
    assert rels[("customer_profiles", "customers")]["relationship_type"] == "one_to_one"
    assert rels[("orders", "customers")]["relationship_type"] == "many_to_one"
    assert rels[("employees", "manager_employees")]["on_sql"] == (
        "${employees.manager_id} = ${manager_employees.id}"
    )
    assert _file(folder, "order_lines.topic.yaml")["joins"] == {
        "orders": {"customers": {"regions": {}}, "employees": {"manager_employees": {}}},
        "products": {},
    }


def test_query_across_a_relationship(shop: tuple[DuckDBEngine, Path], model: SemanticModel) -> None:
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["regions.region_name", "orders.count", "orders.sum_amount"],
    }
    _check(
        model,
        shop[0],
        query,
        """
        SELECT r."Region Name", count(*), sum(o.amount) FROM orders o
        LEFT JOIN customers c ON o.customer_id = c.id
        LEFT JOIN regions r ON c.region_id = r.region_id GROUP BY 1""",
    )


def test_query_through_a_multi_column_key(
    shop: tuple[DuckDBEngine, Path], model: SemanticModel
) -> None:
    query = {
        "join_paths_from_topic_name": "order_lines",
        "fields": ["products.sku", "order_lines.sum_qty", "products.sum_price"],
    }
    _check(
        model,
        shop[0],
        query,
        """
        SELECT p.sku, sum(l.qty), (SELECT sum(price) FROM products q WHERE q.sku = p.sku
                                   AND (q.sku, q.variant) IN (SELECT (sku, variant)
                                                              FROM order_lines))
        FROM order_lines l LEFT JOIN products p ON l.sku = p.sku AND l.variant = p.variant
        GROUP BY 1""",
    )


def test_date_grain_and_fanout_on_a_key(
    shop: tuple[DuckDBEngine, Path], model: SemanticModel
) -> None:
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["orders.order_date[month]", "orders.avg_amount", "customers.sum_credit"],
    }
    _check(
        model,
        shop[0],
        query,
        """
        SELECT m, avg(amount), (SELECT sum(credit) FROM customers WHERE id IN
            (SELECT customer_id FROM orders WHERE date_trunc('month', "Order Date") = m))
        FROM (SELECT date_trunc('month', "Order Date") AS m, amount FROM orders) GROUP BY m""",
    )


def test_keyword_column_self_join_and_view_without_key(
    shop: tuple[DuckDBEngine, Path], model: SemanticModel
) -> None:
    engine = shop[0]
    _check(
        model,
        engine,
        {
            "join_paths_from_topic_name": "employees",
            "fields": ["manager_employees.name", "employees.count"],
        },
        """
        SELECT m.name, count(*) FROM employees e LEFT JOIN employees m ON e.manager_id = m.id
        GROUP BY 1""",
    )
    _check(
        model,
        engine,
        {"table": "orders", "fields": ["orders.status", "orders.sum_order"]},
        'SELECT status, sum("order") FROM orders GROUP BY 1',
    )
    _check(
        model,
        engine,
        {
            "table": "events",
            "fields": ["events.kind", "events.count", "events.avg_value", "events.ts[date]"],
        },
        "SELECT kind, count(*), avg(value), CAST(ts AS DATE) FROM events GROUP BY 1, 4",
    )
    _check(
        model,
        engine,
        {
            "table": "customers",
            "fields": ["customers.c_2fa", "customers.signup_date[year]", "customers.count"],
        },
        """SELECT "2fa", date_trunc('year', "Signup Date"), count(*) FROM customers
              GROUP BY 1, 2""",
    )
    _check(
        model,
        engine,
        {"table": "paid_orders", "fields": ["paid_orders.count"]},
        "SELECT count(*) FROM paid_orders",
    )


def test_tpch_demo_without_declared_keys(tpch_path: Path, tmp_path: Path) -> None:
    engine = DuckDBEngine(tpch_path)
    try:
        shape = describe_duckdb(engine)
        assert {t.name for t in shape.tables} == {
            "region",
            "nation",
            "supplier",
            "customer",
            "part",
            "partsupp",
            "orders",
            "lineitem",
        }
        files = starter_files(shape, model_name="tpch_starter")
        assert yaml.safe_load(files["relationships.yaml"]) == []
        assert not [f for f in files if f.endswith(".topic.yaml")]
        write_model(tmp_path, files)
        model = load_model(tmp_path, catalog=engine.catalog())
        assert model.name == "tpch_starter" and not model.relationships
        orders = model.views["orders"]
        assert "o_orderdate" in orders.dimensions and "sum_o_totalprice" in orders.measures
        assert "sum_o_orderkey" not in orders.measures  # a key: no sums
        for view in ("orders", "lineitem", "nation"):
            _check(
                model,
                engine,
                {"table": view, "fields": [f"{view}.count"]},
                f"SELECT count(*) FROM {view}",
            )
        _check(
            model,
            engine,
            {
                "table": "orders",
                "fields": ["orders.o_orderdate[year]", "orders.count", "orders.sum_o_totalprice"],
            },
            "SELECT date_trunc('year', o_orderdate), count(*), sum(o_totalprice) FROM orders "
            "GROUP BY 1",
        )
    finally:
        engine.close()


def test_names_collisions_and_schemas(tmp_path: Path) -> None:
    assert normalize_name("Order Date") == "order_date"
    assert normalize_name("2fa") == "c_2fa" and normalize_name("Größe") == "groe"
    assert normalize_name("???") == "c"
    assert label_for("customer_id") == "Customer Id" and label_for("CustomerId") == "Customer Id"
    cols = (Column("id", "INTEGER", False), Column("count", "BIGINT"), Column("Count", "DOUBLE"))
    shape = DatabaseShape((Table("main", "t", cols, ("id",)), Table("ops", "t", cols)))
    files = starter_files(shape, model_name="Many Things", connection="warehouse")
    assert set(files) == {"model.yaml", "relationships.yaml", "main_t.view.yaml", "ops_t.view.yaml"}
    ops = yaml.safe_load(files["ops_t.view.yaml"])
    assert ops["schema"] == "ops" and "schema" not in yaml.safe_load(files["main_t.view.yaml"])
    assert list(ops["dimensions"]) == ["id", "count", "count_2"]
    assert ops["dimensions"]["count_2"]["sql"] == '"Count"'
    assert next(iter(ops["measures"])) == "count_3"  # a column already took "count"
    assert yaml.safe_load(files["model.yaml"])["connection"] == "warehouse"
    write_model(tmp_path / "m", files)
    load_model(tmp_path / "m")
    with pytest.raises(FileExistsError):
        write_model(tmp_path / "m", files)
    write_model(tmp_path / "m", files, overwrite=True)
    with duckdb.connect(str(tmp_path / "s.duckdb")) as conn:
        conn.execute(
            "CREATE SCHEMA ops; CREATE TABLE ops.a (id INT PRIMARY KEY);"
            "CREATE TABLE b (x INT UNIQUE NOT NULL, a_id INT)"
        )
    engine = DuckDBEngine(tmp_path / "s.duckdb")
    try:
        assert [t.name for t in describe_duckdb(engine, schema="ops").tables] == ["a"]
        (b,) = describe_duckdb(engine, schema="main").tables
        assert b.unique_keys == (("x",),)
        view = yaml.safe_load(starter_files(DatabaseShape((b,)), model_name="s")["b.view.yaml"])
        assert view["dimensions"]["x"]["primary_key"] is True  # UNIQUE NOT NULL is a key
        assert list(view["measures"]) == ["count"]  # keys and *_id columns: no sums
    finally:
        engine.close()
