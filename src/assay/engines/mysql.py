"""MySQL and MariaDB through PyMySQL (pure Python), streamed with an unbuffered cursor.

Rows arrive as text, exactly as the server wrote them: PyMySQL's per-value converters are
switched off, and each column of a chunk of rows becomes one Arrow string array cast in bulk
to the type the result's metadata names (DECIMAL(p, s) as an exact ``decimal128(p, s)``).
A cancel is ``KILL QUERY`` sent over a second, short-lived connection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pymysql
import pymysql.converters
import pymysql.cursors
from pymysql.constants import FIELD_TYPE, FLAG

from assay.engines.pooled import ConnectionPool, PooledQuery
from assay.engines.urls import redact
from assay.errors import ConfigError, EngineError, EngineUnavailable, QueryCancelled

Connection = Any  # pymysql.Connection: untyped
BATCH_ROWS = 64 * 1024
DEFAULT_CONNECT_TIMEOUT_S = 5
# Encoders only: without decoders every value arrives as the server's text (bytes if binary).
_ENCODERS = {k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}
# Client errors and server errors that mean the server is gone, not that the query is wrong.
_LOST = {1040, 1044, 1045, 1049, 1053, 1698, 1927, 2002, 2003, 2005, 2006, 2013, 2055, 4031}
_INTERRUPTED = 1317
_TIMED_OUT = {1969, 3024}  # MariaDB's max_statement_time, MySQL's max_execution_time
_OPTIONS = {"connect_timeout", "read_timeout", "write_timeout", "statement_timeout",
            "max_statement_time", "charset", "ssl_ca", "ssl_cert", "ssl_key"}  # fmt: skip


class MySQLEngine:
    name = "mariadb"
    dialect = "mysql"

    def __init__(self, url: str) -> None:
        """``mysql://user:pass@host:port/db?connect_timeout=5&statement_timeout=30000`` (or
        ``mariadb://``); ``statement_timeout`` is in ms, ``max_statement_time`` in seconds."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"Unknown option {', '.join(unknown)} in {redact(url)}: "
                f"expected some of {', '.join(sorted(_OPTIONS))}"
            )
        try:
            timeout_ms = float(options.pop("statement_timeout", "0"))
            timeout_ms = float(options.pop("max_statement_time", "0")) * 1000 or timeout_ms
            self._args: dict[str, Any] = {
                "host": parts.hostname or "localhost",
                "port": parts.port or 3306,
                "user": unquote(parts.username or "root"),
                "password": unquote(parts.password or ""),
                "database": unquote(parts.path.lstrip("/")) or None,
                "connect_timeout": float(options.pop("connect_timeout", DEFAULT_CONNECT_TIMEOUT_S)),
                "charset": options.pop("charset", "utf8mb4"),
                **{k: float(v) for k, v in options.items() if k.endswith("_timeout")},
                **{k: v for k, v in options.items() if k.startswith("ssl_")},
            }
        except ValueError as exc:
            raise ConfigError(f"Invalid option in {redact(url)}: {exc}") from exc
        self.statement_timeout_ms = timeout_ms
        self.where = f"{self._args['host']}:{self._args['port']}"
        self.server = "MariaDB" if parts.scheme.lower() == "mariadb" else "MySQL"
        self._pool: ConnectionPool[Connection] = ConnectionPool(self.connect, _close, _ping)
        # Raw SQL's own connections: whatever a user's statement leaves in its session (a
        # setting changed by a stored routine it called) never reaches the engine's other
        # queries.
        self._read_only_pool: ConnectionPool[Connection] = ConnectionPool(
            self.connect, _close, _ping
        )

    def start(self, sql: str, params: Sequence[Any] = ()) -> _MySQLQuery:
        """Parameters use PyMySQL's ``%s`` placeholders."""
        return _MySQLQuery(self, sql, params)

    def start_read_only(self, sql: str) -> _MySQLQuery:
        """Run users' raw SQL in a READ ONLY transaction: a statement that would write fails
        in the server, whatever got past Assay's statement check. The session's mode is set
        again before each statement, since a routine the previous one called may have changed
        it."""
        return _MySQLQuery(self, sql, (), pool=self._read_only_pool, read_only=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.start(sql, params).reader().read_all()

    def catalog(self) -> dict[str, dict[str, str]]:
        rows = self.execute(
            "SELECT table_schema AS s, table_name AS t, column_name AS c, column_type AS k, "
            "table_schema = DATABASE() AS here FROM information_schema.columns "
            "WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', "
            "'sys') ORDER BY table_schema, table_name, ordinal_position"
        ).to_pylist()
        out: dict[str, dict[str, str]] = {}
        for row in rows:
            schema, table = row["s"].lower(), row["t"].lower()
            out.setdefault(f"{schema}.{table}", {})[row["c"].lower()] = row["k"]
            if row["here"]:  # the connection's database: reachable unqualified
                out.setdefault(table, {})[row["c"].lower()] = row["k"]
        return out

    def close(self) -> None:
        self._pool.close()
        self._read_only_pool.close()

    def connect(self, **extra: Any) -> Connection:
        """A new connection in autocommit mode (a pooled connection must not hold a snapshot
        open between queries), with TIMESTAMPs in UTC."""
        try:
            conn = pymysql.connect(
                **{**self._args, **extra}, conv=_ENCODERS, autocommit=True,
                cursorclass=pymysql.cursors.SSCursor, init_command="SET time_zone = '+00:00'",
            )  # fmt: skip
        except (pymysql.Error, OSError) as exc:
            cause = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise EngineUnavailable(
                f"Cannot connect to {self.server} at {self.where}: {self._scrub(str(cause))}"
            ) from exc
        self.server = "MariaDB" if "mariadb" in conn.get_server_info().lower() else "MySQL"
        if self.statement_timeout_ms:
            variable, value = (
                ("max_statement_time", self.statement_timeout_ms / 1000)
                if self.server == "MariaDB"
                else ("max_execution_time", int(self.statement_timeout_ms))
            )
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SET SESSION {variable} = {value}")
            except pymysql.Error as exc:
                _close(conn)
                raise self.translate(exc) from exc
        return conn

    def _scrub(self, text: str) -> str:
        password = self._args["password"]
        return text.replace(password, "***") if password else text

    def translate(self, exc: Exception) -> EngineError:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        text = self._scrub(str(exc.args[1]) if len(exc.args) > 1 else str(exc))
        if code in _LOST or isinstance(exc, pymysql.err.InterfaceError | OSError):
            cause = text or type(exc).__name__
            return EngineUnavailable(f"{self.server} at {self.where}: connection lost: {cause}")
        if code in _TIMED_OUT:
            limit = self.statement_timeout_ms
            where = (
                f"after {limit:g} ms (statement_timeout in the connection URL)"
                if limit
                else ("(the server's statement time limit)")
            )
            return EngineError(f"{self.server}: the query timed out {where}")
        if code == _INTERRUPTED:
            return QueryCancelled("The query was interrupted in the database")
        return EngineError(f"{self.server}: {text}")


def _close(conn: Connection) -> None:
    conn.close()


def _ping(conn: Connection) -> bool:
    try:
        conn.ping(reconnect=False)
    except (pymysql.Error, OSError):
        return False
    return True


class _MySQLQuery(PooledQuery[Connection]):
    def __init__(
        self,
        engine: MySQLEngine,
        sql: str,
        params: Sequence[Any],
        pool: ConnectionPool[Connection] | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__(engine._pool if pool is None else pool, sql, params)
        self._engine = engine
        self._read_only = read_only
        self._cursor: Any = None
        self._killer: Connection | None = None

    def _open(self, conn: Connection) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        if self._read_only:
            with conn.cursor() as setting:
                setting.execute("SET SESSION TRANSACTION READ ONLY")
        cursor = conn.cursor()
        self._cursor = cursor
        cursor.execute(self._sql, self._params or None)
        if not cursor.description:  # not a query: nothing to read
            return pa.schema([]), iter(())
        columns = [_column(f) for f in cursor._result.fields]
        schema = pa.schema([pa.field(name, kind) for name, kind, _ in columns])
        converters = [convert for _, _, convert in columns]
        return schema, self._batches(cursor, schema, converters)

    @staticmethod
    def _batches(
        cursor: Any, schema: pa.Schema, converters: list[Callable[[Sequence[Any]], pa.Array]]
    ) -> Iterator[pa.RecordBatch]:
        while rows := cursor.fetchmany(BATCH_ROWS):
            columns = zip(*rows, strict=True)
            arrays = [convert(values) for convert, values in zip(converters, columns, strict=True)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def _interrupt(self, conn: Connection) -> None:
        if self._killer is None:
            self._killer = self._engine.connect(connect_timeout=2)
        with self._killer.cursor() as cur:
            cur.execute(f"KILL QUERY {int(conn.thread_id())}")

    def _interrupted(self) -> None:
        killer, self._killer = self._killer, None
        if killer is not None:
            self._engine._pool.discard(killer)

    def _end(self, conn: Connection, clean: bool) -> None:
        cursor, self._cursor = self._cursor, None
        if clean:
            if cursor is not None:
                cursor.close()  # the result was read to its end: nothing left to drain
            self._pool.release(conn)
            return
        if cursor is not None:  # the rest of the result dies with the connection: PyMySQL
            # would read it to its end when the cursor or result is closed or collected
            if cursor._result is not None:
                cursor._result.unbuffered_active = False
            cursor.connection = None
        self._pool.discard(conn)

    def _translate(self, exc: Exception) -> EngineError:
        return self._engine.translate(exc)


# ---------------------------------------------------------------------- types

_INTEGERS = {
    FIELD_TYPE.TINY: (pa.int8(), pa.uint8()),
    FIELD_TYPE.SHORT: (pa.int16(), pa.uint16()),
    FIELD_TYPE.INT24: (pa.int32(), pa.uint32()),
    FIELD_TYPE.LONG: (pa.int32(), pa.uint32()),
    FIELD_TYPE.LONGLONG: (pa.int64(), pa.uint64()),
    FIELD_TYPE.YEAR: (pa.int16(), pa.int16()),
}
_TEXT = {FIELD_TYPE.VARCHAR, FIELD_TYPE.VAR_STRING, FIELD_TYPE.STRING, FIELD_TYPE.ENUM,
         FIELD_TYPE.SET, FIELD_TYPE.JSON, FIELD_TYPE.TINY_BLOB, FIELD_TYPE.MEDIUM_BLOB,
         FIELD_TYPE.LONG_BLOB, FIELD_TYPE.BLOB}  # fmt: skip
_BINARY_CHARSET = 63


def _column(field: Any) -> tuple[str, pa.DataType, Callable[[Sequence[Any]], pa.Array]]:
    """A result column's name, Arrow type and converter from the server's text values."""
    code, name = field.type_code, field.name
    unsigned = bool(field.flags & FLAG.UNSIGNED)
    kind: pa.DataType
    if code in _INTEGERS:
        kind = _INTEGERS[code][unsigned]
    elif code in (FIELD_TYPE.DECIMAL, FIELD_TYPE.NEWDECIMAL):
        # The length counts the digits, the point and the sign.
        scale = field.scale
        precision = field.length - (scale > 0) - (not unsigned)
        precision = max(precision, scale, 1)
        kind = (
            pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
        )
    elif code == FIELD_TYPE.FLOAT:
        kind = pa.float32()
    elif code == FIELD_TYPE.DOUBLE:
        kind = pa.float64()
    elif code in (FIELD_TYPE.DATE, FIELD_TYPE.NEWDATE):
        return name, pa.date32(), _dates
    elif code in (FIELD_TYPE.DATETIME, FIELD_TYPE.TIMESTAMP):
        # TIMESTAMP values are in the session's time zone, which `connect` sets to UTC.
        kind = pa.timestamp("us", "UTC" if code == FIELD_TYPE.TIMESTAMP else None)
        return name, kind, lambda values: _datetimes(values, kind)
    elif code == FIELD_TYPE.TIME:  # may be negative or past 24 hours: a duration
        return name, pa.duration("us"), _durations
    elif code == FIELD_TYPE.NULL:
        return name, pa.null(), lambda values: pa.nulls(len(values))
    elif code == FIELD_TYPE.BIT:
        return name, pa.uint64(), _bits
    elif code in _TEXT and field.charsetnr != _BINARY_CHARSET:
        return name, pa.string(), lambda values: pa.array(values, pa.string())
    else:  # binary strings, BLOBs, GEOMETRY, anything unforeseen
        return name, pa.binary(), _binaries
    return name, kind, lambda values: pc.cast(pa.array(values, pa.string()), kind)


def _nulled_zeros(values: Sequence[Any]) -> pa.Array:
    """MySQL's zero dates ('0000-00-00') are no dates: NULL."""
    texts = pa.array(values, pa.string())
    zero = pc.fill_null(pc.starts_with(texts, "0000-00-00"), False)
    return pc.if_else(zero, pa.scalar(None, pa.string()), texts)


def _dates(values: Sequence[Any]) -> pa.Array:
    texts = _nulled_zeros(values)
    try:
        return pc.cast(texts, pa.date32())
    except pa.ArrowInvalid:  # partly zero dates ('2024-00-15') the server may allow
        return pa.array([_date(v) for v in texts.to_pylist()], pa.date32())


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _datetimes(values: Sequence[Any], kind: pa.DataType) -> pa.Array:
    texts = _nulled_zeros(values)
    try:
        return pc.cast(pc.cast(texts, pa.timestamp("us")), kind)
    except pa.ArrowInvalid:
        parsed = [pymysql.converters.convert_datetime(v) if v else None for v in texts.to_pylist()]
        return pa.array([v if not isinstance(v, str) else None for v in parsed], kind)


def _durations(values: Sequence[Any]) -> pa.Array:
    return pa.array(
        [None if v is None else pymysql.converters.convert_timedelta(v) for v in values],
        pa.duration("us"),
    )


def _bits(values: Sequence[Any]) -> pa.Array:
    return pa.array([None if v is None else int.from_bytes(v, "big") for v in values], pa.uint64())


def _binaries(values: Sequence[Any]) -> pa.Array:
    return pa.array([v.encode() if isinstance(v, str) else v for v in values], pa.binary())
