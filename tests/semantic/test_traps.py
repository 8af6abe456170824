"""Classic BI traps on a model small enough to check by hand (tests/fixtures/traps/).

    customers                orders                          items                 refunds
    id name tier  credit     id cust status  amount          id  order sku qty     id   order refund
    1  ann  gold  100        10 1    shipped 10              100 10    a   1       1000 10    5
    2  bob  gold  300        11 1    open    30              101 10    b   2       1001 10    1
    3  cy   basic  50        12 2    shipped 20              102 10    c   3       1002 12    2
                                                             103 11    a   4
    notes (no primary key)                                   104 12    a   5
    order words: (10, 7), (10, 8)                            105 12    b   6

Every expected number below is worked out from these tables in the docstring of its test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from assay.engines import DuckDBEngine
from assay.errors import FanoutNeedsPrimaryKey
from assay.semantic.compiler import compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

DATA = """
CREATE TABLE customers AS SELECT * FROM (VALUES (1, 'ann', 'gold', 100), (2, 'bob', 'gold', 300),
  (3, 'cy', 'basic', 50)) t(id, name, tier, credit);
CREATE TABLE orders AS SELECT * FROM (VALUES (10, 1, 'shipped', 10), (11, 1, 'open', 30),
  (12, 2, 'shipped', 20)) t(id, customer_id, status, amount);
CREATE TABLE items AS SELECT * FROM (VALUES (100, 10, 'a', 1), (101, 10, 'b', 2), (102, 10, 'c', 3),
  (103, 11, 'a', 4), (104, 12, 'a', 5), (105, 12, 'b', 6)) t(id, order_id, sku, qty);
CREATE TABLE refunds AS SELECT * FROM (VALUES (1000, 10, 5), (1001, 10, 1), (1002, 12, 2))
  t(id, order_id, refund);
CREATE TABLE notes AS SELECT * FROM (VALUES (10, 7), (10, 8)) t(order_id, words);
"""


@pytest.fixture(scope="module")
def model() -> SemanticModel:
    return load_model(FIXTURES / "traps")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DuckDBEngine]:
    path: Path = tmp_path_factory.mktemp("traps") / "traps.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(DATA)
    eng = DuckDBEngine(path)
    yield eng
    eng.close()


def run(
    model: SemanticModel, engine: DuckDBEngine, topic: str, fields: list[str], **extra: Any
) -> dict[Any, tuple[Any, ...]]:
    """Rows keyed by their first column (or None for a single total row)."""
    query = {
        "table": topic,
        "join_paths_from_topic_name": topic,
        "fields": fields,
        "limit": None,
        **extra,
    }
    compiled = compile_query(model, query)
    rows = [tuple(r.values()) for r in engine.execute(compiled.sql).to_pylist()]
    return {r[0]: r[1:] for r in rows}


def num(v: Any) -> float:
    return float(v)


class TestFanOutTrap:
    def test_parent_totals_by_child_dimension(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Order amount by item sku: a is in orders 10, 11, 12 (10+30+20=60); b in 10, 12
        (30); c in 10 (10). A plain join would give a: 60, b: 30, c: 10 only by luck of one
        item per sku per order, so the grand total is checked too (60, not 10*3+30+20*2=100)."""
        rows = run(model, engine, "orders", ["items.sku", "orders.total_amount", "orders.count"])
        assert {k: (num(v[0]), v[1]) for k, v in rows.items()} == {
            "a": (60, 3), "b": (30, 2), "c": (10, 1)}  # fmt: skip
        total = run(model, engine, "orders", ["orders.total_amount", "items.total_qty"])
        (only,) = total.items()
        assert (num(only[0]), num(only[1][0])) == (60, 21)

    def test_two_levels_of_one_to_many(self, model: SemanticModel, engine: DuckDBEngine) -> None:
        """Customers by sku through orders -> items: a reaches ann (orders 10, 11) and bob
        (12): 2 customers, credit 400; c reaches only ann: 1, 100; cy, with no orders, is the
        NULL group: 1, 50."""
        rows = run(
            model, engine, "customers", ["items.sku", "customers.count", "customers.total_credit"]
        )
        assert {k: (v[0], num(v[1])) for k, v in rows.items()} == {
            "a": (2, 400), "b": (2, 400), "c": (1, 100), None: (1, 50)}  # fmt: skip

    def test_parent_without_children_keeps_its_null_group(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Customers by order status: shipped ann+bob (2, 400), open ann (1, 100), and cy
        with no orders in the NULL group (1, 50)."""
        rows = run(
            model,
            engine,
            "customers",
            ["orders.status", "customers.count", "customers.total_credit"],
        )
        assert {k: (v[0], num(v[1])) for k, v in rows.items()} == {
            "shipped": (2, 400), "open": (1, 100), None: (1, 50)}  # fmt: skip

    def test_filter_on_many_side_counts_each_parent_once(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Orders with an item of sku a or b: 10 (a, b), 11 (a), 12 (a, b) = 3 orders, amount
        60; a plain join counts order 10 and 12 twice (5 rows)."""
        flt = {"items.sku": {"type": "string", "kind": "EQUALS", "values": ["a", "b"]}}
        rows = run(model, engine, "orders", ["orders.count", "orders.total_amount"], filters=flt)
        assert [(v0, num(v1[0])) for v0, v1 in rows.items()] == [(3, 60)]

    def test_having_on_a_fanned_out_measure(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Sku groups whose order amount exceeds 25: a (60) and b (30), not c (10)."""
        flt = {"orders.total_amount": {"type": "number", "kind": "GREATER_THAN", "values": ["25"]}}
        rows = run(model, engine, "orders", ["items.sku", "orders.total_amount"], filters=flt)
        assert sorted(rows) == ["a", "b"]

    def test_measure_filters_through_fan_out(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Shipped amount (orders 10 and 12) by sku: a 30, b 30, c 10."""
        rows = run(model, engine, "orders", ["items.sku", "orders.shipped_amount"])
        assert {k: num(v[0]) for k, v in rows.items()} == {"a": 30, "b": 30, "c": 10}


class TestChasmTrap:
    def test_two_sibling_one_to_many_joins(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Items and refunds both hang off orders; joined together each multiplies the other.
        Per order: 10 -> qty 6, refund 6; 11 -> 4, none; 12 -> 11, 2. Totals: 21, 8, 60."""
        rows = run(
            model, engine, "orders", ["orders.id", "items.total_qty", "refunds.total_refund"]
        )
        assert {k: tuple(None if x is None else num(x) for x in v) for k, v in rows.items()} == {
            10: (6, 6), 11: (4, None), 12: (11, 2)}  # fmt: skip
        total = run(
            model,
            engine,
            "orders",
            ["orders.total_amount", "items.total_qty", "refunds.total_refund"],
        )
        (only,) = total.items()
        assert (num(only[0]), num(only[1][0]), num(only[1][1])) == (60, 21, 8)


class TestNonSymmetricAggregates:
    """Median, percentile, max, list and averages cannot be fixed with SUM(DISTINCT hash):
    de-duplicating per group first keeps them exact."""

    def test_median_percentile_average_list_by_child_dimension(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """sku a: orders 10, 30, 20 -> median 20, avg 20, max 30, p90 28 (linear), statuses
        {open, shipped}; b: 10, 20 -> median 15, avg 15; c: 10."""
        fields = ["items.sku", "orders.median_amount", "orders.avg_amount", "orders.max_amount",
                  "orders.p90_amount", "orders.statuses", "orders.amount_per_order"]  # fmt: skip
        rows = run(model, engine, "orders", fields)
        a = rows["a"]
        assert (num(a[0]), num(a[1]), num(a[2]), num(a[3])) == (20, 20, 30, 28)
        assert sorted(a[4]) == ["open", "shipped"]
        assert num(a[5]) == 20  # derived: total_amount / count = 60 / 3
        assert (num(rows["b"][0]), num(rows["b"][1])) == (15, 15)
        assert num(rows["c"][0]) == 10

    def test_median_of_parent_through_fan_out(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Median credit of shipped customers (ann 100, bob 300) is 200 even though ann has
        three items on order 10 and bob two on order 12."""
        flt = {"orders.status": {"type": "string", "kind": "EQUALS", "values": ["shipped"]}}
        rows = run(
            model, engine, "customers", ["customers.median_credit", "items.total_qty"], filters=flt
        )
        (only,) = rows.items()
        assert (num(only[0]), num(only[1][0])) == (200, 17)


class TestPrimaryKeyRequired:
    def test_fanned_out_view_without_primary_key_is_refused(self, model: SemanticModel) -> None:
        with pytest.raises(FanoutNeedsPrimaryKey) as err:
            compile_query(model, {"join_paths_from_topic_name": "orders",
                                  "fields": ["items.sku", "notes.total_words"]})  # fmt: skip
        assert err.value.error_type == "PLAN_PK_REQUIRED_DUE_TO_JOIN_FANOUT"
        assert "notes" in err.value.message and "primary_key" in err.value.message

    def test_same_view_is_fine_when_nothing_fans_it_out(
        self, model: SemanticModel, engine: DuckDBEngine
    ) -> None:
        """Notes joined alone (to-one towards orders from the notes side is not used): 15."""
        rows = run(model, engine, "orders", ["orders.status", "notes.total_words"])
        assert {k: None if v[0] is None else num(v[0]) for k, v in rows.items()} == {
            "shipped": 15,
            "open": None,
        }


class TestJoinsOnlyWhatIsNeeded:
    def test_single_view_query_is_single_table_sql(self, model: SemanticModel) -> None:
        query = {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.status", "orders.total_amount"],
        }
        compiled = compile_query(model, query)
        assert compiled.joined_views == ()
        assert "JOIN" not in compiled.sql.upper()

    def test_only_the_path_to_a_needed_view_is_joined(self, model: SemanticModel) -> None:
        compiled = compile_query(model, {"join_paths_from_topic_name": "customers",
                                         "fields": ["items.sku", "customers.count"]})  # fmt: skip
        assert compiled.joined_views == ("orders", "items")
        assert compiled.deduplicated_views == ("customers",)
