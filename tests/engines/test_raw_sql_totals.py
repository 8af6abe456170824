"""Raw SQL ``column_totals`` on real DuckDB, PostgreSQL and MariaDB: one totals row at the
end, its base cells NULL, each total in a ``<lower(column)>__omni_summ`` sidecar after its
column and ``$omni_column_total_indicator`` saying ``column_total``; the sums equal
hand-written SUMs over the whole SQL result (also when the 50,000-row cap cuts the data
rows), computed on the read-only path; and what cannot be totaled is refused by name.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from assay.jobs.runner import JobRunner
from assay.semantic.viewer import Viewer
from tests.engines.test_raw_sql_jobs import CAP, Recorded, engine, raw, result, run, runner

__all__ = ["engine", "runner"]  # fixtures, used by name
INDICATOR = "$omni_column_total_indicator"
TOTALS = {"order_count": {"type": "aggregation"}, "revenue": {"type": "aggregation"}}
BY_PRIORITY = (
    "SELECT o_orderpriority AS prio, COUNT(*) AS order_count, SUM(o_totalprice) AS revenue "
    "FROM orders WHERE o_orderdate < DATE '1994-01-01' GROUP BY o_orderpriority ORDER BY 1"
)


def totals(**extra: Any) -> dict[str, Any]:
    return {"sqlSortsEnabled": True, "column_totals": TOTALS, **extra}


def scalar(engine: Recorded, sql: str) -> Any:
    return engine.execute(sql).column(0)[0].as_py()


def test_the_totals_row_carries_sums_over_the_whole_result_in_sidecars(
    runner: tuple[JobRunner, Recorded],
) -> None:
    jobs, engine = runner
    job = run(jobs, raw(BY_PRIORITY, **totals()), Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    table = result(jobs, job)
    assert table.column_names == [
        "prio", "order_count", "order_count__omni_summ", "revenue", "revenue__omni_summ",
        INDICATOR,
    ]  # fmt: skip
    assert table.num_rows == 6  # five priorities, then the totals row
    *data, last = table.to_pylist()
    assert [r[INDICATOR] for r in data] == [None] * 5 and last[INDICATOR] == "column_total"
    assert all(r["order_count__omni_summ"] is None and r["revenue__omni_summ"] is None
               for r in data)  # fmt: skip
    assert (last["prio"], last["order_count"], last["revenue"]) == (None, None, None)
    where = "FROM orders WHERE o_orderdate < DATE '1994-01-01'"
    assert last["order_count__omni_summ"] == scalar(engine, f"SELECT COUNT(*) {where}")
    revenue = scalar(engine, f"SELECT SUM(o_totalprice) {where}")
    assert Decimal(last["revenue__omni_summ"]) == revenue
    assert sum(r["order_count"] for r in data) == last["order_count__omni_summ"]
    schema = table.schema  # each sidecar in its column's type
    assert schema.field("order_count__omni_summ").type == schema.field("order_count").type
    assert schema.field("revenue__omni_summ").type == schema.field("revenue").type
    # both statements on the read-only path; the sums over the SQL as written
    assert [path for path, _ in engine.started] == ["read_only", "read_only"]
    assert "SUM(" in engine.started[1][1] and BY_PRIORITY in engine.started[1][1]
    assert job.summary is not None
    assert list(job.summary["fields"]) == ["prio", "order_count", "revenue"]
    assert job.summary["total_rows"] == 6 and "row_limit_reached" not in job.summary
    assert job.summary["display_sql"].startswith(BY_PRIORITY)
    assert engine.started[1][1] in job.summary["display_sql"]


def test_sorted_rows_keep_their_order_and_the_totals_row_stays_last(
    runner: tuple[JobRunner, Recorded],
) -> None:
    jobs, _ = runner
    query = raw(BY_PRIORITY, **totals(sorts=[{"column_name": "order_count",
                                              "sort_descending": True}]))  # fmt: skip
    job = run(jobs, query, Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    rows = result(jobs, job).to_pylist()
    counts = [r["order_count"] for r in rows[:-1]]
    assert counts == sorted(counts, reverse=True) and rows[-1][INDICATOR] == "column_total"


def test_the_cap_cuts_data_rows_only_and_the_total_covers_every_row(
    runner: tuple[JobRunner, Recorded],
) -> None:
    jobs, engine = runner
    sql = "SELECT l_orderkey, l_quantity FROM lineitem"
    query = raw(sql, sqlSortsEnabled=True, column_totals={"l_quantity": {"type": "aggregation"}})
    job = run(jobs, query, Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    table = result(jobs, job)
    assert table.num_rows == CAP + 1
    kinds = table.column(INDICATOR).to_pylist()
    assert kinds[:CAP] == [None] * CAP and kinds[CAP] == "column_total"
    assert job.summary is not None
    assert job.summary["row_limit_reached"] is True and job.summary["total_rows"] == CAP + 1
    whole = scalar(engine, "SELECT SUM(l_quantity) FROM lineitem")
    kept = sum(Decimal(v) for v in table.column("l_quantity").to_pylist()[:CAP])
    total = Decimal(table.column("l_quantity__omni_summ")[CAP].as_py())
    assert total == whole and total > kept  # the whole table's, not the rows kept
    assert engine.cancelled >= 1  # the rest of lineitem is not streamed for no one


def test_with_totals_and_without_are_cached_apart(runner: tuple[JobRunner, Recorded]) -> None:
    jobs, _ = runner
    plain = run(jobs, raw(BY_PRIORITY, sqlSortsEnabled=True), Viewer("u"))
    summed = run(jobs, raw(BY_PRIORITY, **totals()), Viewer("u"))
    assert result(jobs, plain).num_rows == 5 and result(jobs, summed).num_rows == 6
    again = run(jobs, raw(BY_PRIORITY, **totals()), Viewer("u"))
    assert again.summary is not None and again.summary["cache_type"] == "EXACT"
    assert result(jobs, again).equals(result(jobs, summed))


@pytest.mark.parametrize(
    ("keys", "extra", "message"),
    [
        ({"nope": {}}, {}, "expected {\"type\": \"aggregation\"}"),
        ({"::total::": {"type": "aggregation"}}, {},
         "name the result columns to total instead"),
        ({"nope": {"type": "aggregation"}}, {},
         "'nope' is not a column of the SQL's result (its columns: 'prio', 'order_count', "
         "'revenue')"),
        ({"prio": {"type": "aggregation"}}, {}, "only numeric columns can be totaled"),
        (TOTALS, {"sqlSortsEnabled": False}, "only with sqlSortsEnabled: true"),
    ],
)  # fmt: skip
def test_what_cannot_be_totaled_is_refused_by_name(
    runner: tuple[JobRunner, Recorded], keys: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    jobs, _ = runner
    query = raw(BY_PRIORITY, **{"sqlSortsEnabled": True, "column_totals": keys, **extra})
    job = run(jobs, query, Viewer("u"))
    assert (job.status, job.error_type) == ("FAILED", "PLAN"), job.error_message
    assert message in (job.error_message or "")


def test_a_role_without_query_sql_is_refused_before_any_sum(
    runner: tuple[JobRunner, Recorded],
) -> None:
    jobs, engine = runner
    job = run(jobs, raw(BY_PRIORITY, **totals()), Viewer("u", role="RESTRICTED_QUERIER"))
    assert (job.status, job.error_type) == ("FAILED", "FORBIDDEN")
    assert engine.started == []


def test_a_write_inside_the_totaled_sql_never_reaches_the_engine(
    runner: tuple[JobRunner, Recorded],
) -> None:
    jobs, engine = runner
    job = run(jobs, raw("SELECT 1 AS one; DELETE FROM region", **totals()), Viewer("u"))
    assert (job.status, job.error_type) == ("FAILED", "PLAN") and engine.started == []


def test_a_sum_past_its_columns_type_keeps_the_wider_type(
    runner: tuple[JobRunner, Recorded],
) -> None:
    """Three INTEGER values of 2e9 sum to 6e9, which no 32-bit integer holds: the sidecar
    keeps the database's wider type rather than overflowing."""
    jobs, engine = runner
    big = {"duckdb": "CAST(2000000000 AS INTEGER)", "postgres": "CAST(2000000000 AS INTEGER)",
           "mysql": "CAST(2000000000 AS SIGNED)"}[engine.dialect]  # fmt: skip
    sql = f"SELECT {big} AS n FROM region WHERE r_regionkey < 3"
    query = raw(sql, sqlSortsEnabled=True, column_totals={"n": {"type": "aggregation"}})
    job = run(jobs, query, Viewer("u"))
    assert job.status == "COMPLETE", job.error_message
    table = result(jobs, job)
    assert int(table.column("n__omni_summ")[3].as_py()) == 6_000_000_000
    if table.schema.field("n").type == pa.int32():
        assert table.schema.field("n__omni_summ").type != pa.int32()
