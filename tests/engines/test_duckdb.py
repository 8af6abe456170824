"""The DuckDB engine against real database files."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from assay.engines import DuckDBEngine, RunningQuery
from assay.errors import EngineError, EngineUnavailable, QueryCancelled

# Hours of work: a query that is not really cancelled never finishes within a test.
SLOW = "SELECT count(*) FROM range(10000000000000) a"


@pytest.fixture
def engine(tmp_path: Path) -> DuckDBEngine:
    path = tmp_path / "t.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE t AS SELECT range AS i, 'row ' || range AS s FROM range(200000)")
    return DuckDBEngine(path)


def test_results_are_arrow_with_bound_parameters(engine: DuckDBEngine) -> None:
    table = engine.execute("SELECT i, s FROM t WHERE i < ? ORDER BY i", [3])
    assert table.column_names == ["i", "s"]
    assert table.to_pylist() == [
        {"i": 0, "s": "row 0"},
        {"i": 1, "s": "row 1"},
        {"i": 2, "s": "row 2"},
    ]


def test_large_results_stream_in_batches(engine: DuckDBEngine) -> None:
    reader = engine.start("SELECT i FROM t").reader()
    sizes = [batch.num_rows for batch in reader]
    assert sum(sizes) == 200000
    assert len(sizes) > 1


def test_sql_errors_are_engine_errors_naming_the_problem(engine: DuckDBEngine) -> None:
    with pytest.raises(EngineError) as err:
        engine.execute("SELECT nope FROM t")
    assert err.value.error_type == "QUERY"
    assert "nope" in err.value.message


def test_cancel_stops_a_running_query(engine: DuckDBEngine) -> None:
    query = engine.start(SLOW)
    started = threading.Event()

    def cancel_soon() -> None:
        started.wait(5)
        query.cancel()

    threading.Thread(target=cancel_soon).start()
    started.set()
    with pytest.raises(QueryCancelled) as err:
        query.reader().read_all()
    assert err.value.error_type == "KILL"


def test_cancel_before_start_never_runs(engine: DuckDBEngine) -> None:
    query = engine.start("SELECT 1")
    query.cancel()
    with pytest.raises(QueryCancelled):
        query.reader()


def test_queries_do_not_wait_for_each_other(engine: DuckDBEngine) -> None:
    """A quick query completes while a slow one is still running on another cursor."""
    slow = engine.start(SLOW)
    outcome: list[BaseException] = []

    def run_slow() -> None:
        try:
            slow.reader().read_all()
        except QueryCancelled as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run_slow)
    worker.start()
    try:
        assert engine.execute("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 200000}]
        assert worker.is_alive(), "the slow query should still be running"
    finally:
        slow.cancel()
        worker.join(10)
    assert outcome and isinstance(outcome[0], QueryCancelled)


def test_missing_database_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable) as err:
        DuckDBEngine(tmp_path / "nope.duckdb")
    assert err.value.error_type == "OFFLINE"
    assert "nope.duckdb" in err.value.message


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.002, 0.01, 0.05])
def test_cancel_at_any_moment_stops_the_query(engine: DuckDBEngine, delay: float) -> None:
    """However the cancel races the query's start, the query stops (it would otherwise run
    for minutes) and reports the cancel."""
    for _ in range(5):
        query = engine.start(SLOW)
        outcome: list[BaseException] = []

        def run(q: RunningQuery = query, out: list[BaseException] = outcome) -> None:
            try:
                q.reader().read_all()
            except QueryCancelled as exc:
                out.append(exc)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        time.sleep(delay)
        query.cancel()
        worker.join(20)
        assert not worker.is_alive(), "the cancelled query kept running"
        assert outcome and isinstance(outcome[0], QueryCancelled)
