"""The Spark Connect engine against a local Spark Connect server (see tests/spark_server.py)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pytest

from assay.engines.spark import SparkEngine
from assay.errors import EngineError, EngineUnavailable, QueryCancelled
from tests import spark_server

# Minutes of work: a query that is not really cancelled does not finish within a test, and one
# orphaned by a killed test run (the server does not stop it) ends on its own. One partition,
# so one task: the other of the server's two task slots stays free for other queries.
SLOW = "SELECT sum(id % 7) AS s FROM range(0, 100000000000, 1, 1)"


@pytest.fixture(scope="module")
def url() -> str:
    return spark_server.url()


@pytest.fixture
def engine(url: str) -> Iterator[SparkEngine]:
    engine = SparkEngine(url)
    yield engine
    engine.close()


def _cancelled_in_time(engine: SparkEngine, delay: float) -> float:
    """Start SLOW, cancel it from another thread after ``delay``; the seconds it took to stop."""
    query = engine.start(SLOW)
    threading.Timer(delay, query.cancel).start()
    begun = time.monotonic()
    with pytest.raises(QueryCancelled) as err:
        query.reader().read_all()
    assert err.value.error_type == "KILL"
    return time.monotonic() - begun - delay


def test_types_come_back_exact(engine: SparkEngine) -> None:
    table = engine.execute(
        "SELECT CAST(12345678901.25 AS DECIMAL(15,2)) AS d, DATE'2024-02-29' AS dt, "
        "CAST(7 AS INT) AS i, CAST(9000000000 AS BIGINT) AS b, CAST(NULL AS INT) AS n, "
        "CAST(NULL AS DECIMAL(15,2)) AS nd, 'text' AS s, 1.5D AS f, true AS t"
    )
    schema = table.schema
    assert schema.field("d").type == pa.decimal128(15, 2)
    assert schema.field("dt").type == pa.date32()
    assert schema.field("i").type == pa.int32()
    assert schema.field("b").type == pa.int64()
    assert table.to_pylist() == [
        {
            "d": Decimal("12345678901.25"),
            "dt": date(2024, 2, 29),
            "i": 7,
            "b": 9000000000,
            "n": None,
            "nd": None,
            "s": "text",
            "f": 1.5,
            "t": True,
        }
    ]


def test_decimal_sums_stay_exact(engine: SparkEngine) -> None:
    """0.1 added a million times: a float would drift, a decimal does not."""
    table = engine.execute("SELECT sum(CAST(0.10 AS DECIMAL(15,2))) AS s FROM range(1000000)")
    assert pa.types.is_decimal(table.schema.field("s").type)
    assert table.column("s")[0].as_py() == Decimal("100000.00")


def test_bound_parameters(engine: SparkEngine) -> None:
    table = engine.execute("SELECT id FROM range(10) WHERE id < ? ORDER BY id", [3])
    assert table.column("id").to_pylist() == [0, 1, 2]


def test_many_rows_stream_in_batches(engine: SparkEngine) -> None:
    reader = engine.start("SELECT id, CAST(id AS STRING) AS s FROM range(1000000)").reader()
    total = count = 0
    for batch in reader:
        total += pa.compute.sum(batch.column("id")).as_py() or 0
        count += batch.num_rows
    assert count == 1000000
    assert total == 999999 * 1000000 // 2


def test_an_empty_result_keeps_its_schema(engine: SparkEngine) -> None:
    table = engine.execute(
        "SELECT id, DATE_ADD(DATE'2024-01-01', CAST(id AS INT)) AS d FROM range(0)"
    )
    assert table.num_rows == 0
    assert table.column_names == ["id", "d"]
    assert table.schema.field("d").type == pa.date32()


def test_cancel_stops_a_running_query_and_the_engine_goes_on(engine: SparkEngine) -> None:
    assert _cancelled_in_time(engine, 1.0) < 5
    assert engine.execute("SELECT 42 AS x").to_pylist() == [{"x": 42}]


def test_the_session_is_set_for_cancels_that_stick(engine: SparkEngine) -> None:
    """Adaptive execution off (its background stage submission outlives an early interrupt),
    and few shuffle partitions."""
    settings = {
        row["key"]: row["value"]
        for key in ("spark.sql.adaptive.enabled", "spark.sql.shuffle.partitions")
        for row in engine.execute(f"SET {key}").to_pylist()
    }
    assert settings == {"spark.sql.adaptive.enabled": "false", "spark.sql.shuffle.partitions": "4"}


def test_cancel_before_start_never_runs(engine: SparkEngine) -> None:
    query = engine.start(SLOW)
    query.cancel()
    begun = time.monotonic()
    with pytest.raises(QueryCancelled):
        query.reader()
    assert time.monotonic() - begun < 1


def test_cancel_while_rows_stream_in(engine: SparkEngine) -> None:
    """Rows already on their way stop too: the next batch read raises."""
    query = engine.start("SELECT id FROM range(0, 1000000000, 1, 1000)")
    reader = query.reader()
    assert reader.read_next_batch().num_rows > 0
    query.cancel()
    begun = time.monotonic()
    with pytest.raises(QueryCancelled):
        reader.read_all()
    assert time.monotonic() - begun < 5
    assert engine.execute("SELECT 1 AS x").to_pylist() == [{"x": 1}]


@pytest.mark.parametrize("delay", [0.0, 0.02, 0.1, 0.3])
def test_a_cancel_is_never_lost(engine: SparkEngine, delay: float) -> None:
    """However the cancel falls against the query's start (analysis, then execution, each its
    own server operation), the query stops."""
    assert _cancelled_in_time(engine, delay) < 5


def test_sql_errors_name_the_condition_without_the_jvm(engine: SparkEngine) -> None:
    with pytest.raises(EngineError) as err:
        engine.execute("SELECT nope FROM range(3)")
    assert type(err.value) is EngineError
    assert err.value.error_type == "QUERY"
    message = err.value.message
    assert message.startswith("Spark: UNRESOLVED_COLUMN")
    assert "`nope`" in message
    assert "JVM" not in message and "at org.apache" not in message and "\n" not in message


def test_runtime_errors_are_engine_errors(engine: SparkEngine) -> None:
    with pytest.raises(EngineError) as err:
        engine.execute("SELECT 1 / 0 AS x")
    assert type(err.value) is EngineError
    assert "DIVIDE_BY_ZERO" in err.value.message


def test_a_dead_server_is_offline_within_seconds() -> None:
    begun = time.monotonic()
    engine = SparkEngine("sc://127.0.0.1:1")  # lazy: constructing does not connect
    assert time.monotonic() - begun < 1
    try:
        with pytest.raises(EngineUnavailable) as err:
            engine.execute("SELECT 1")
        assert err.value.error_type == "OFFLINE"
        assert "127.0.0.1:1" in err.value.message
        with pytest.raises(EngineUnavailable):  # and again: no session was kept half-open
            engine.catalog()
    finally:
        engine.close()
    assert time.monotonic() - begun < 10


def test_catalog_lists_tables_of_the_current_database(engine: SparkEngine) -> None:
    table = f"assay_test_{uuid.uuid4().hex[:12]}"
    engine.execute(
        f"CREATE TABLE {table} USING parquet AS SELECT CAST(1 AS BIGINT) AS Id, "
        "CAST(2.5 AS DECIMAL(15,2)) AS Amount, DATE'2024-01-01' AS Day"
    )
    try:
        catalog = engine.catalog()
        want = {"id": "bigint", "amount": "decimal(15,2)", "day": "date"}
        assert catalog[table] == want
        assert catalog[f"default.{table}"] == want
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {table}")


def test_concurrent_queries_are_independent(engine: SparkEngine) -> None:
    """While a slow query runs, other threads' queries go through the same engine; cancelling
    the slow one cancels only it."""
    outcome: dict[str, object] = {}

    def run(name: str, sql: str) -> None:
        try:
            outcome[name] = engine.execute(sql).to_pylist()
        except BaseException as exc:
            outcome[name] = exc

    slow = engine.start(SLOW)
    slow_thread = threading.Thread(target=lambda: outcome.update(slow=_error(slow.reader)))
    slow_thread.start()
    time.sleep(0.5)
    others = [
        threading.Thread(target=run, args=("a", "SELECT count(*) AS n FROM range(1000)")),
        threading.Thread(target=run, args=("b", "SELECT 42 AS x")),
    ]
    for thread in others:
        thread.start()
    for thread in others:
        thread.join(60)
    assert outcome["a"] == [{"n": 1000}]
    assert outcome["b"] == [{"x": 42}]
    assert slow_thread.is_alive(), "the slow query should still be running"
    slow.cancel()
    slow_thread.join(30)
    assert isinstance(outcome["slow"], QueryCancelled)


def _error(reader: Callable[[], pa.RecordBatchReader]) -> BaseException | None:
    try:
        reader().read_all()
    except BaseException as exc:
        return exc
    return None


def test_two_queries_at_once_both_finish(engine: SparkEngine) -> None:
    results: dict[int, int] = {}

    def run(n: int) -> None:
        table = engine.execute(f"SELECT count(*) AS n FROM range({n}) a JOIN range(100) b")
        results[n] = table.column("n")[0].as_py()

    threads = [threading.Thread(target=run, args=(n,)) for n in (200000, 300000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {200000: 20000000, 300000: 30000000}


def test_a_stopped_session_is_replaced(engine: SparkEngine) -> None:
    first = engine.session()
    first.stop()
    assert engine.execute("SELECT 1 AS x").to_pylist() == [{"x": 1}]
    assert engine.session() is not first


def test_close_interrupts_running_queries(url: str) -> None:
    engine = SparkEngine(url)
    query = engine.start(SLOW)
    threading.Timer(1.0, engine.close).start()
    begun = time.monotonic()
    with pytest.raises(EngineError):
        query.reader().read_all()
    assert time.monotonic() - begun < 10
