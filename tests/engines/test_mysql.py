"""The MySQL/MariaDB engine against a real server (tests.live: skipped locally without one)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pymysql.cursors
import pytest

from assay.engines.base import RunningQuery
from assay.engines.mysql import MySQLEngine
from assay.errors import ConfigError, EngineError, EngineUnavailable, QueryCancelled
from tests.live import MARIADB_URL, unavailable

SLOW = "SELECT SLEEP(30)"
# 200,000 rows without a table, recursion limits or MariaDB's sequence engine.
DIGITS = "(SELECT 0 d UNION ALL " + " UNION ALL ".join(f"SELECT {i}" for i in range(1, 10)) + ")"
ROWS_200K = (
    "SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d AS i "
    f"FROM {DIGITS} a, {DIGITS} b, {DIGITS} c, {DIGITS} e, {DIGITS} f, "
    "(SELECT 0 d UNION ALL SELECT 1) g"
)


@pytest.fixture(scope="module")
def engine() -> Iterator[MySQLEngine]:
    engine = MySQLEngine(MARIADB_URL)
    try:
        engine.execute("SELECT 1")
    except EngineUnavailable as exc:
        engine.close()
        unavailable(f"MariaDB is not reachable: {exc.message}")
    yield engine
    engine.close()


@pytest.fixture
def table(engine: MySQLEngine) -> Iterator[str]:
    """A table of this test alone (xdist workers share the database)."""
    name = f"assay_t_{uuid.uuid4().hex[:12]}"
    engine.execute(
        f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, tiny TINYINT, small SMALLINT, qty INT, "
        "big BIGINT UNSIGNED, price DECIMAL(15,2), wide DECIMAL(50,10), ratio DOUBLE, "
        "approx FLOAT, label VARCHAR(20), raw VARBINARY(8), day DATE, at DATETIME(6), "
        "stamp TIMESTAMP NULL, span TIME)"
    )
    engine.execute(
        f"INSERT INTO {name} VALUES (1, -7, 300, 3, 18446744073709551615, 1234567890123.45, "
        "12345678901234567890123456789012345678.0123456789, 0.5, 1.5, 'ünï', x'00ff', "
        "'2024-02-29', '2024-02-29 12:34:56.789', '2024-02-29 12:00:00', '-30:15:00'), "
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
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


def test_columns_arrive_as_their_arrow_types(engine: MySQLEngine, table: str) -> None:
    result = engine.execute(f"SELECT * FROM {table} ORDER BY id")
    types = {f.name: f.type for f in result.schema}
    assert types == {
        "id": pa.int64(),
        "tiny": pa.int8(),
        "small": pa.int16(),
        "qty": pa.int32(),
        "big": pa.uint64(),
        "price": pa.decimal128(15, 2),
        "wide": pa.decimal256(50, 10),
        "ratio": pa.float64(),
        "approx": pa.float32(),
        "label": pa.string(),
        "raw": pa.binary(),
        "day": pa.date32(),
        "at": pa.timestamp("us"),
        "stamp": pa.timestamp("us", "UTC"),
        "span": pa.duration("us"),
    }
    first, second = result.to_pylist()
    assert first["big"] == 18446744073709551615
    assert first["price"] == Decimal("1234567890123.45")
    assert first["wide"] == Decimal("12345678901234567890123456789012345678.0123456789")
    assert first["label"] == "ünï"
    assert first["raw"] == b"\x00\xff"
    assert first["day"] == date(2024, 2, 29)
    assert first["at"] == datetime(2024, 2, 29, 12, 34, 56, 789000)
    assert first["stamp"].isoformat() == "2024-02-29T12:00:00+00:00"
    assert first["span"] == -timedelta(hours=30, minutes=15)
    assert all(value is None for key, value in second.items() if key != "id")


def test_aggregates_are_exact_decimals(engine: MySQLEngine) -> None:
    result = engine.execute(
        "SELECT SUM(x) AS total, AVG(x) AS mean, COUNT(*) AS n FROM "
        "(SELECT CAST(0.1 AS DECIMAL(15,2)) x UNION ALL SELECT 0.1 UNION ALL SELECT 0.1) v"
    )
    assert pa.types.is_decimal(result.schema.field("total").type)
    assert result.schema.field("total").type.scale == 2
    assert result.schema.field("n").type == pa.int64()
    assert result.to_pylist() == [{"total": Decimal("0.30"), "mean": Decimal("0.1"), "n": 3}]


def test_zero_dates_are_null(engine: MySQLEngine) -> None:
    name = f"assay_z_{uuid.uuid4().hex[:12]}"
    setup = engine.connect()  # its own connection: the relaxed sql_mode must not be pooled
    try:
        with setup.cursor(pymysql.cursors.Cursor) as cur:
            cur.execute("SET SESSION sql_mode = ''")
            cur.execute(f"CREATE TABLE {name} (d DATE, t DATETIME)")
            cur.execute(f"INSERT INTO {name} VALUES ('0000-00-00', '0000-00-00 00:00:00'), "
                        "('2024-01-02', '2024-01-02 03:04:05')")  # fmt: skip
        rows = engine.execute(f"SELECT d, t FROM {name} ORDER BY d").to_pylist()
    finally:
        engine.execute(f"DROP TABLE IF EXISTS {name}")
        setup.close()
    assert rows == [
        {"d": None, "t": None},
        {"d": date(2024, 1, 2), "t": datetime(2024, 1, 2, 3, 4, 5)},
    ]


def test_large_results_stream_in_batches(engine: MySQLEngine) -> None:
    reader = engine.start(ROWS_200K).reader()
    sizes = []
    total = 0
    for batch in reader:
        sizes.append(batch.num_rows)
        total += sum(batch.column("i").to_pylist())
    assert sum(sizes) == 200000
    assert len(sizes) > 1
    assert total == 199999 * 200000 // 2


def test_parameters_are_bound(engine: MySQLEngine) -> None:
    assert engine.execute("SELECT %s + 1 AS n", [41]).to_pylist() == [{"n": 42}]


def test_syntax_errors_carry_the_database_message(engine: MySQLEngine) -> None:
    with pytest.raises(EngineError) as err:
        engine.execute("SELEC 1")
    assert type(err.value) is EngineError
    assert err.value.error_type == "QUERY"
    assert "error in your SQL syntax" in err.value.message
    assert "near 'SELEC 1'" in err.value.message


def test_unknown_tables_are_engine_errors(engine: MySQLEngine) -> None:
    with pytest.raises(EngineError, match="no_such_table' doesn't exist"):
        engine.execute("SELECT * FROM no_such_table")
    assert engine.execute("SELECT 2 AS n").to_pylist() == [{"n": 2}]


def test_cancel_stops_a_running_query_quickly(engine: MySQLEngine) -> None:
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


def test_cancel_stops_a_streaming_result(engine: MySQLEngine) -> None:
    query = engine.start(ROWS_200K)
    reader = query.reader()
    reader.read_next_batch()
    query.cancel()
    with pytest.raises(QueryCancelled):
        reader.read_all()
    assert engine.execute("SELECT 4 AS n").to_pylist() == [{"n": 4}]


def test_cancel_before_start_never_runs(engine: MySQLEngine) -> None:
    query = engine.start(SLOW)
    query.cancel()
    started = time.monotonic()
    with pytest.raises(QueryCancelled, match="before it started"):
        query.reader()
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("delay", [0.0, 0.0005, 0.002, 0.01, 0.05])
def test_cancel_at_any_moment_stops_the_query(engine: MySQLEngine, delay: float) -> None:
    for _ in range(3):
        query = engine.start(SLOW)
        worker, outcome = _run_in_thread(query)
        time.sleep(delay)
        query.cancel()
        worker.join(5)
        assert not worker.is_alive(), "the cancelled query kept running"
        assert outcome and isinstance(outcome[0], QueryCancelled)
    assert engine.execute("SELECT 5 AS n").to_pylist() == [{"n": 5}]


def test_queries_run_side_by_side(engine: MySQLEngine) -> None:
    queries = [engine.start("SELECT SLEEP(1) AS s") for _ in range(2)]
    started = time.monotonic()
    runs = [_run_in_thread(q) for q in queries]
    for worker, outcome in runs:
        worker.join(10)
        assert not outcome
    assert time.monotonic() - started < 1.8, "the two queries ran one after the other"


def test_connections_are_reused(engine: MySQLEngine) -> None:
    ids = {engine.execute("SELECT CONNECTION_ID() AS c").to_pylist()[0]["c"] for _ in range(5)}
    assert len(ids) == 1


def test_a_connection_killed_mid_query_is_unavailable(engine: MySQLEngine) -> None:
    marker = "x" + uuid.uuid4().hex
    query = engine.start(f"SELECT SLEEP(30) AS {marker}")
    worker, outcome = _run_in_thread(query)
    deadline = time.monotonic() + 5
    victims: list[int] = []
    while not victims and time.monotonic() < deadline:
        time.sleep(0.1)
        victims = [
            r["id"]
            for r in engine.execute(
                "SELECT id FROM information_schema.processlist "
                f"WHERE info LIKE '%{marker}%' AND id <> CONNECTION_ID()"
            ).to_pylist()
        ]
    for victim in victims:
        engine.execute(f"KILL CONNECTION {victim}")
    worker.join(5)
    assert outcome and isinstance(outcome[0], EngineUnavailable), outcome
    assert outcome[0].error_type == "OFFLINE"
    assert engine.execute("SELECT 6 AS n").to_pylist() == [{"n": 6}]


def test_a_dropped_reader_leaves_the_engine_usable(engine: MySQLEngine) -> None:
    reader = engine.start(ROWS_200K).reader()
    assert next(iter(reader)).num_rows > 0
    del reader
    assert engine.execute("SELECT 7 AS n").to_pylist() == [{"n": 7}]


def test_statement_timeout_is_a_clear_query_error() -> None:
    engine = MySQLEngine(MARIADB_URL + "?statement_timeout=200")
    try:
        with pytest.raises(EngineError) as err:
            engine.execute("SELECT SLEEP(5)")
    except EngineUnavailable as exc:
        unavailable(f"MariaDB is not reachable: {exc.message}")
    finally:
        engine.close()
    assert type(err.value) is EngineError
    assert "timed out after 200 ms" in err.value.message


def test_a_closed_port_is_unavailable_fast_and_keeps_the_password_secret() -> None:
    engine = MySQLEngine("mysql://root:sekrit@127.0.0.1:1/test")  # does not connect
    started = time.monotonic()
    with pytest.raises(EngineUnavailable) as err:
        engine.execute("SELECT 1")
    assert time.monotonic() - started < 3
    assert err.value.error_type == "OFFLINE"
    assert "127.0.0.1:1" in err.value.message
    assert "refused" in err.value.message.lower()
    assert "sekrit" not in err.value.message
    engine.close()


def test_unknown_url_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="conect_timeout"):
        MySQLEngine("mariadb://root:pw@db/x?conect_timeout=3")


def test_catalog_lists_the_database_tables(engine: MySQLEngine, table: str) -> None:
    catalog = engine.catalog()
    database = engine.execute("SELECT DATABASE() AS d").to_pylist()[0]["d"].lower()
    columns = catalog[table]
    assert catalog[f"{database}.{table}"] == columns
    assert columns["price"] == "decimal(15,2)"
    assert columns["label"] == "varchar(20)"
    assert columns["day"] == "date"
    assert columns["big"].startswith("bigint") and columns["big"].endswith("unsigned")
    assert not any(key.startswith(("mysql.", "information_schema.")) for key in catalog)
