"""The PostgreSQL engine against a real server (tests.live: skipped locally without one)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from assay.engines.base import RunningQuery
from assay.engines.postgres import LOOKAHEAD_ROWS, PostgresEngine
from assay.errors import EngineError, EngineUnavailable, QueryCancelled
from tests.live import POSTGRES_URL, unavailable

SLOW = "SELECT pg_sleep(30)"


@pytest.fixture(scope="module")
def engine() -> Iterator[PostgresEngine]:
    engine = PostgresEngine(POSTGRES_URL)
    try:
        engine.execute("SELECT 1")
    except EngineUnavailable as exc:
        engine.close()
        unavailable(f"PostgreSQL is not reachable: {exc.message}")
    yield engine
    engine.close()


@pytest.fixture
def table(engine: PostgresEngine) -> Iterator[str]:
    """A table of this test alone (xdist workers share the database)."""
    name = f"assay_t_{uuid.uuid4().hex[:12]}"
    engine.execute(
        f"CREATE TABLE {name} (id int8 PRIMARY KEY, small int2, qty int4, price numeric(15,2), "
        "ratio float8, label varchar(20), day date, at timestamp, at_utc timestamptz, ok bool, "
        "tags int4[])"
    )
    engine.execute(
        f"INSERT INTO {name} VALUES (1, 7, 3, 1234567890123.45, 0.5, 'one', '2024-02-29', "
        "'2024-02-29 12:34:56.789', '2024-02-29 12:00:00+02', true, '{1,2}'), "
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
    )
    yield name
    engine.execute(f"DROP TABLE {name}")


def _run_in_thread(query: RunningQuery) -> tuple[threading.Thread, list[BaseException]]:
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            query.reader().read_all()
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    return worker, outcome


def test_columns_arrive_as_their_arrow_types(engine: PostgresEngine, table: str) -> None:
    result = engine.execute(f"SELECT * FROM {table} ORDER BY id")
    types = {f.name: f.type for f in result.schema}
    assert types == {
        "id": pa.int64(),
        "small": pa.int16(),
        "qty": pa.int32(),
        "price": pa.decimal128(15, 2),
        "ratio": pa.float64(),
        "label": pa.string(),
        "day": pa.date32(),
        "at": pa.timestamp("us"),
        "at_utc": pa.timestamp("us", "UTC"),
        "ok": pa.bool_(),
        "tags": pa.list_(pa.int32()),
    }
    first, second = result.to_pylist()
    assert first["price"] == Decimal("1234567890123.45")
    assert first["day"] == date(2024, 2, 29)
    assert first["at"] == datetime(2024, 2, 29, 12, 34, 56, 789000)
    assert first["at_utc"].isoformat() == "2024-02-29T10:00:00+00:00"
    assert first["tags"] == [1, 2]
    assert all(value is None for key, value in second.items() if key != "id")


def test_sums_and_averages_are_exact_decimals(engine: PostgresEngine) -> None:
    """NUMERIC aggregates have no declared scale: the decimal type fits their values."""
    result = engine.execute(
        "SELECT sum(x) AS total, avg(x) AS mean, sum(x) * 0 AS zero FROM "
        "(VALUES (0.1::numeric(15,2)), (0.1), (0.1)) v(x)"
    )
    assert result.schema.field("total").type == pa.decimal128(38, 2)
    assert pa.types.is_decimal(result.schema.field("mean").type)
    row = result.to_pylist()[0]
    assert row["total"] == Decimal("0.30")
    assert row["mean"] == Decimal("0.1")
    assert row["zero"] == 0


def test_unconstrained_numeric_learns_its_scale_from_the_first_rows(
    engine: PostgresEngine,
) -> None:
    """One type for the whole stream: decimals met within the read-ahead stay exact, later
    ones are rounded half-even to the scale already chosen."""
    early, late, rows = LOOKAHEAD_ROWS // 2, 4 * LOOKAHEAD_ROWS, 5 * LOOKAHEAD_ROWS
    result = engine.execute(
        f"SELECT i, CASE WHEN i = {early} THEN 0.125 WHEN i = {late} THEN 2.5 "
        f"WHEN i = {late + 1} THEN 0.0625 ELSE i END::numeric AS x "
        f"FROM generate_series(1, {rows}) i ORDER BY i"
    )
    assert result.schema.field("x").type == pa.decimal128(38, 3)
    x = result.column("x")
    assert x[early - 1].as_py() == Decimal("0.125")
    assert x[late - 1].as_py() == Decimal("2.500")
    assert x[late].as_py() == Decimal("0.062")  # half-even at the third decimal


def test_numeric_nan_makes_a_float_column(engine: PostgresEngine) -> None:
    result = engine.execute("SELECT x FROM (VALUES ('NaN'::numeric), (1.5), (NULL)) v(x)")
    assert result.schema.field("x").type == pa.float64()
    values = result.column("x").to_pylist()
    assert values[0] != values[0] and values[1:] == [1.5, None]


def test_a_numeric_too_wide_for_its_column_is_refused_clearly(engine: PostgresEngine) -> None:
    sql = (
        "SELECT CASE WHEN i < 400000 THEN 1 ELSE 10::numeric ^ 40 END AS x "
        "FROM generate_series(1, 400000) i"
    )
    with pytest.raises(EngineError, match="too large"):
        engine.execute(sql)


def test_large_results_stream_in_batches(engine: PostgresEngine) -> None:
    reader = engine.start("SELECT i, 'row ' || i AS s FROM generate_series(1, 200000) i").reader()
    assert reader.schema.field("i").type == pa.int32()
    sizes = []
    total = 0
    for batch in reader:
        sizes.append(batch.num_rows)
        total += sum(batch.column("i").to_pylist())
    assert sum(sizes) == 200000
    assert len(sizes) > 1
    assert total == 200000 * 200001 // 2


def test_parameters_are_bound(engine: PostgresEngine) -> None:
    assert engine.execute("SELECT $1::int8 + 1 AS n", [41]).to_pylist() == [{"n": 42}]


def test_syntax_errors_carry_the_database_message(engine: PostgresEngine) -> None:
    with pytest.raises(EngineError) as err:
        engine.execute("SELEC 1")
    assert type(err.value) is EngineError
    assert err.value.error_type == "QUERY"
    assert err.value.message == 'PostgreSQL: syntax error at or near "SELEC"'


def test_unknown_tables_and_runtime_errors_are_engine_errors(engine: PostgresEngine) -> None:
    with pytest.raises(EngineError, match='relation "no_such_table" does not exist'):
        engine.execute("SELECT * FROM no_such_table")
    with pytest.raises(EngineError, match="division by zero"):
        engine.execute("SELECT 1 / (i - 5) FROM generate_series(1, 10) i")
    assert engine.execute("SELECT 2 AS n").to_pylist() == [{"n": 2}]


def test_cancel_stops_a_running_query_quickly(engine: PostgresEngine) -> None:
    query = engine.start(SLOW)
    worker, outcome = _run_in_thread(query)
    time.sleep(0.3)
    started = time.monotonic()
    query.cancel()
    worker.join(5)
    assert not worker.is_alive(), "the cancelled query kept running"
    assert time.monotonic() - started < 2
    assert outcome and isinstance(outcome[0], QueryCancelled)
    assert outcome[0].error_type == "KILL"
    assert engine.execute("SELECT 3 AS n").to_pylist() == [{"n": 3}]


def test_cancel_stops_a_streaming_result(engine: PostgresEngine) -> None:
    query = engine.start("SELECT i FROM generate_series(1, 5000000) i")
    reader = query.reader()
    reader.read_next_batch()
    query.cancel()
    with pytest.raises(QueryCancelled):
        reader.read_all()
    assert engine.execute("SELECT 4 AS n").to_pylist() == [{"n": 4}]


def test_cancel_before_start_never_runs(engine: PostgresEngine) -> None:
    query = engine.start(SLOW)
    query.cancel()
    started = time.monotonic()
    with pytest.raises(QueryCancelled, match="before it started"):
        query.reader()
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.002, 0.01, 0.05])
def test_cancel_at_any_moment_stops_the_query(engine: PostgresEngine, delay: float) -> None:
    for _ in range(3):
        query = engine.start(SLOW)
        worker, outcome = _run_in_thread(query)
        time.sleep(delay)
        query.cancel()
        worker.join(5)
        assert not worker.is_alive(), "the cancelled query kept running"
        assert outcome and isinstance(outcome[0], QueryCancelled)
    assert engine.execute("SELECT 4 AS n").to_pylist() == [{"n": 4}]


def test_queries_run_side_by_side(engine: PostgresEngine) -> None:
    queries = [engine.start("SELECT pg_sleep(1), 1 AS n") for _ in range(2)]
    started = time.monotonic()
    runs = [_run_in_thread(q) for q in queries]
    for worker, outcome in runs:
        worker.join(10)
        assert not outcome
    assert time.monotonic() - started < 1.8, "the two queries ran one after the other"


def test_connections_are_reused(engine: PostgresEngine) -> None:
    pids = {engine.execute("SELECT pg_backend_pid() AS p").to_pylist()[0]["p"] for _ in range(5)}
    assert len(pids) == 1


def test_a_connection_killed_mid_query_is_unavailable(engine: PostgresEngine) -> None:
    marker = uuid.uuid4().hex
    query = engine.start(f"SELECT pg_sleep(30) AS {'x' + marker}")
    worker, outcome = _run_in_thread(query)
    deadline = time.monotonic() + 5
    killed = False
    while not killed and time.monotonic() < deadline:
        time.sleep(0.1)
        killed = bool(
            engine.execute(
                "SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity "
                f"WHERE query LIKE '%x{marker}%' AND pid <> pg_backend_pid()"
            ).num_rows
        )
    worker.join(5)
    assert outcome and isinstance(outcome[0], EngineUnavailable), outcome
    assert outcome[0].error_type == "OFFLINE"
    assert engine.execute("SELECT 5 AS n").to_pylist() == [{"n": 5}]


def test_a_dropped_reader_leaves_the_engine_usable(engine: PostgresEngine) -> None:
    reader = engine.start("SELECT i FROM generate_series(1, 2000000) i").reader()
    assert next(iter(reader)).num_rows > 0
    del reader
    assert engine.execute("SELECT 6 AS n").to_pylist() == [{"n": 6}]


def test_statement_timeout_is_a_clear_query_error() -> None:
    engine = PostgresEngine(POSTGRES_URL + "?statement_timeout=200")
    try:
        with pytest.raises(EngineError) as err:
            engine.execute("SELECT pg_sleep(5)")
    finally:
        engine.close()
    assert type(err.value) is EngineError
    assert "timed out after 200 ms" in err.value.message


def test_a_closed_port_is_unavailable_fast_and_keeps_the_password_secret() -> None:
    engine = PostgresEngine("postgresql://postgres:sekrit@127.0.0.1:1/test")  # does not connect
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as err:
        engine.execute("SELECT 1")
    assert time.monotonic() - started < 3
    assert err.value.error_type == "OFFLINE"
    assert "127.0.0.1:1" in err.value.message
    assert "refused" in err.value.message.lower()
    assert "sekrit" not in err.value.message
    engine.close()


def test_an_unknown_database_is_unavailable() -> None:
    engine = PostgresEngine(POSTGRES_URL.rsplit("/", 1)[0] + "/assay_no_such_db")
    with pytest.raises(EngineUnavailable, match='database "assay_no_such_db" does not exist'):
        engine.execute("SELECT 1")
    engine.close()


def test_catalog_lists_tables_by_schema_and_search_path(engine: PostgresEngine, table: str) -> None:
    schema = f"assay_s_{uuid.uuid4().hex[:12]}"
    engine.execute(f"CREATE SCHEMA {schema}")
    try:
        engine.execute(f"CREATE TABLE {schema}.Elsewhere (k int8)")
        catalog = engine.catalog()
    finally:
        engine.execute(f"DROP SCHEMA {schema} CASCADE")
    columns = catalog[table]
    assert catalog[f"public.{table}"] == columns
    assert columns["price"] == "numeric(15,2)"
    assert columns["label"] == "character varying(20)"
    assert columns["day"] == "date"
    assert columns["at"] == "timestamp without time zone"
    assert columns["id"] == "bigint"
    assert columns["tags"] == "int4[]"
    assert catalog[f"{schema}.elsewhere"] == {"k": "bigint"}
    assert "elsewhere" not in catalog  # not on the search path
    assert not any(key.startswith(("pg_catalog.", "information_schema.")) for key in catalog)


def test_a_reader_dropped_unread_closes_its_cursor_and_connection(
    engine: PostgresEngine, recwarn: pytest.WarningsRecorder
) -> None:
    """A reader given up before its first batch (an error beside it, a cancel) frees what it
    holds; a generator that never started would otherwise run no clean-up at all, and the
    driver's cursor and connection would be left for the garbage collector."""
    import gc

    handle = engine.start("SELECT g FROM generate_series(1, 100000) AS g")
    reader = handle.reader()
    assert reader.schema.names == ["g"]
    del reader
    gc.collect()
    leaks = [w for w in recwarn.list if issubclass(w.category, ResourceWarning)]
    assert leaks == []
    assert handle._finished
    assert engine.execute("SELECT 1 AS one").column("one").to_pylist() == [1]
