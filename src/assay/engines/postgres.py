"""PostgreSQL through ADBC (libpq underneath): results arrive as Arrow, streamed in batches.

ADBC hands PostgreSQL NUMERIC over as text (an opaque extension type). It becomes an exact
decimal here: ``numeric(p, s)`` columns as ``decimal128(p, s)``; unconstrained ``numeric``
(what SUM, AVG and arithmetic return) as ``decimal128(38, s)`` with ``s`` the largest scale
among the first rows, read ahead before the schema is fixed (an aggregate's whole result).
A later value with more decimals is rounded half-even to that scale; one whose integer part
does not fit fails the query with a clear message rather than coming back wrong. Wider values
take ``decimal256``; NaN or infinity among the first rows makes the column ``float64``.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as pg
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_manager.dbapi import Connection, Cursor

from assay.engines.pooled import ConnectionPool, PooledQuery
from assay.engines.urls import redact
from assay.errors import ConfigError, EngineError, EngineUnavailable, QueryCancelled

# ADBC's batch size hint: about 64k rows of a narrow result per batch, like DuckDB's.
BATCH_BYTES = 1 << 20
# Rows read before the type of unconstrained NUMERIC columns is fixed.
LOOKAHEAD_ROWS = 64 * 1024
DEFAULT_CONNECT_TIMEOUT_S = 5
UNCONSTRAINED_SCALE = 10  # when the first rows hold no value to learn the scale from
_LOST = re.compile(
    r"server closed the connection|terminating connection|no connection to the server|"
    r"could not (receive|send) data|connection to server .* failed|lost synchronization|"
    r"the database system is (shutting down|starting up|in recovery mode)|SSL SYSCALL error",
    re.IGNORECASE,
)


class PostgresEngine:
    name = "postgres"
    dialect = "postgres"

    def __init__(self, url: str) -> None:
        """``postgresql://user:pass@host:port/db?connect_timeout=5&statement_timeout=30000``:
        ``statement_timeout`` (ms) is Assay's; the other parameters go to libpq."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query))
        timeout = options.pop("statement_timeout", "0")
        if not timeout.isdigit():
            raise ConfigError(f"statement_timeout must be milliseconds in {redact(url)}")
        self.statement_timeout_ms = int(timeout)
        options.setdefault("connect_timeout", str(DEFAULT_CONNECT_TIMEOUT_S))
        options.setdefault("application_name", "assay")
        self._uri = parts._replace(scheme="postgresql", query=urlencode(options)).geturl()
        self._password = parts.password
        self.where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        self._pool: ConnectionPool[Connection] = ConnectionPool(self.connect, _close, _ping)
        # Raw SQL's own connections: whatever a user's statement leaves in its session (a
        # setting changed by a function it called) never reaches the engine's other queries.
        self._read_only_pool: ConnectionPool[Connection] = ConnectionPool(
            self.connect, _close, _ping
        )

    def start(self, sql: str, params: Sequence[Any] = ()) -> _PostgresQuery:
        """Parameters use PostgreSQL's ``$1`` placeholders."""
        return _PostgresQuery(self, sql, params)

    def start_read_only(self, sql: str) -> _PostgresQuery:
        """Run users' raw SQL in a READ ONLY transaction: a statement that would write fails
        in the server, whatever got past Assay's statement check. The session default is set
        again before each statement, since a function the previous one called may have
        changed it (``set_config('default_transaction_read_only', 'off', false)``); within a
        transaction that began read-only, nothing can make it write."""
        return _PostgresQuery(self, sql, (), pool=self._read_only_pool, read_only=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.start(sql, params).reader().read_all()

    def catalog(self) -> dict[str, dict[str, str]]:
        rows = self.execute(
            "SELECT table_schema, table_name, column_name, data_type, udt_name, "
            "numeric_precision, numeric_scale, character_maximum_length "
            "FROM information_schema.columns "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND table_schema NOT LIKE 'pg\\_%' "
            "ORDER BY table_schema, table_name, ordinal_position"
        ).to_pylist()
        path = [r["s"] for r in self.execute(_SEARCH_PATH).to_pylist()]
        out: dict[str, dict[str, str]] = {}
        bare: dict[str, tuple[int, dict[str, str]]] = {}  # table -> (rank in path, columns)
        for row in rows:
            schema, table = row["table_schema"].lower(), row["table_name"].lower()
            columns = out.setdefault(f"{schema}.{table}", {})
            columns[row["column_name"].lower()] = _type_name(row)
            if schema in path:  # reachable unqualified; the first schema in the path wins
                rank = path.index(schema)
                if table not in bare or bare[table][0] > rank:
                    bare[table] = (rank, columns)
        out.update({table: columns for table, (_, columns) in bare.items()})
        return out

    def close(self) -> None:
        self._pool.close()
        self._read_only_pool.close()

    def connect(self, *, autocommit: bool = True) -> Connection:
        """A new connection; the engine's own run in autocommit mode, so a pooled connection
        never sits idle in a transaction (holding back VACUUM and DDL)."""
        try:
            conn: Connection = pg.connect(self._uri, autocommit=autocommit)
        except adbc_driver_manager.Error as exc:
            cause = _message(exc).removeprefix("Failed to connect: ")
            raise EngineUnavailable(
                f"Cannot connect to PostgreSQL at {self.where}: {self._scrub(cause)}"
            ) from exc
        if self.statement_timeout_ms:
            try:
                with conn.cursor() as cur:
                    cur.execute(f"SET statement_timeout = {self.statement_timeout_ms}")
            except adbc_driver_manager.Error as exc:
                conn.close()
                raise self.translate(exc) from exc
        return conn

    def _scrub(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    def translate(self, exc: Exception) -> EngineError:
        text = self._scrub(_message(exc))
        state = str(getattr(exc, "sqlstate", None) or "")
        if state.startswith("08") or state in {"57P01", "57P02", "57P03"} or _LOST.search(text):
            return EngineUnavailable(f"PostgreSQL at {self.where}: the connection was lost: {text}")
        if "statement timeout" in text:
            limit = self.statement_timeout_ms
            where = (
                f"after {limit} ms (statement_timeout in the connection URL)"
                if limit
                else ("(the server's statement_timeout)")
            )
            return EngineError(f"PostgreSQL: the query timed out {where}")
        if "due to user request" in text:
            return QueryCancelled("The query was cancelled in the database")
        return EngineError(f"PostgreSQL: {text}")


_READ_ONLY = "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY"
_SEARCH_PATH = (
    "SELECT lower(s) AS s, n FROM unnest(current_schemas(false)) WITH ORDINALITY AS p(s, n) "
    "UNION ALL SELECT 'public', 1000000 ORDER BY 2"
)


def _type_name(row: dict[str, Any]) -> str:
    """The column's type as PostgreSQL spells it, with precision where it matters."""
    kind, udt = row["data_type"].lower(), row["udt_name"]
    if kind == "numeric" and row["numeric_precision"] is not None:
        return f"numeric({row['numeric_precision']},{row['numeric_scale']})"
    if kind in ("character varying", "character") and row["character_maximum_length"]:
        return f"{kind}({row['character_maximum_length']})"
    if kind == "array":
        return f"{udt.removeprefix('_')}[]"
    return str(udt) if kind == "user-defined" else kind


def _message(exc: BaseException) -> str:
    """A driver error's own words: without ADBC's status prefix, the SQL echoed back and the
    caret lines, keeping PostgreSQL's HINT."""
    text = str(exc).split("\n\nQuery was:", 1)[0]
    text = re.sub(r"^[A-Z_]+: ", "", text.strip())
    text = re.sub(r"^\[libpq\] ", "", text)
    text = re.sub(r"^(Failed to (prepare|execute) query: |Execution error \[\w+\]: )", "", text)
    text = re.sub(r"^(could not begin COPY: )?(ERROR|FATAL):\s+", "", text)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    head = [ln for ln in lines if not ln.startswith(("LINE ", "^")) and ln != "^"][:1]
    hints = [ln for ln in lines if ln.startswith("HINT:")]
    words = " ".join(head + hints).removesuffix(".").split()
    return " ".join(words) or str(exc).strip()


def _close(conn: Connection) -> None:
    conn.close()


def _ping(conn: Connection) -> bool:
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchall()
    except adbc_driver_manager.Error:
        return False
    return True


class _PostgresQuery(PooledQuery[Connection]):
    def __init__(
        self,
        engine: PostgresEngine,
        sql: str,
        params: Sequence[Any],
        pool: ConnectionPool[Connection] | None = None,
        read_only: bool = False,
    ) -> None:
        super().__init__(engine._pool if pool is None else pool, sql, params)
        self._engine = engine
        self._read_only = read_only
        self._cursor: Cursor | None = None

    def _open(self, conn: Connection) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        if self._read_only:
            with conn.cursor() as setting:
                setting.execute(_READ_ONLY)
        cursor = conn.cursor(
            adbc_stmt_kwargs={"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)}
        )
        self._cursor = cursor
        cursor.execute(self._sql, self._params or None)
        source: pa.RecordBatchReader = cursor.fetch_record_batch()
        head: list[pa.RecordBatch] = []
        if any(_is_numeric(f) and _typmod(f) < 0 for f in source.schema):
            rows = 0
            while rows < LOOKAHEAD_ROWS:
                try:
                    batch = source.read_next_batch()
                except StopIteration:
                    break
                head.append(batch)
                rows += batch.num_rows
        schema = pa.schema([_target(f, [b.column(i) for b in head]) for i, f in
                            enumerate(source.schema)])  # fmt: skip
        return schema, self._convert(schema, head, source)

    def _convert(
        self, schema: pa.Schema, head: list[pa.RecordBatch], source: pa.RecordBatchReader
    ) -> Iterator[pa.RecordBatch]:
        for batch in itertools.chain(head, source):
            columns = [_cast(c, f) for c, f in zip(batch.columns, schema, strict=True)]
            yield pa.RecordBatch.from_arrays(columns, schema=schema)

    def _interrupt(self, conn: Connection) -> None:
        if self._cursor is not None:
            self._cursor.adbc_cancel()

    def _end(self, conn: Connection, clean: bool) -> None:
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            if not clean:  # stop a result still streaming, instead of draining it on close
                with contextlib.suppress(adbc_driver_manager.Error):
                    cursor.adbc_cancel()
            cursor.close()
        if clean:
            self._pool.release(conn)
        else:
            self._pool.discard(conn)

    def _translate(self, exc: Exception) -> EngineError:
        return self._engine.translate(exc)


# ---------------------------------------------------------------------- types


def _is_numeric(field: pa.Field) -> bool:
    return isinstance(field.type, pa.OpaqueType) and field.type.type_name == "numeric"


def _typmod(field: pa.Field) -> int:
    return int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1"))


def _target(field: pa.Field, head: list[pa.Array]) -> pa.Field:
    """The Arrow type a column arrives as: numbers for NUMERIC, plain storage for the other
    extension types (UUIDs as their text)."""
    kind = field.type
    if _is_numeric(field):
        return field.with_type(_numeric_type(_typmod(field), head))
    if isinstance(kind, pa.UuidType):
        return field.with_type(pa.string())
    if isinstance(kind, pa.BaseExtensionType):
        return field.with_type(kind.storage_type)
    return field


def _numeric_type(typmod: int, head: list[pa.Array]) -> pa.DataType:
    if typmod >= 4:  # numeric(p, s): PostgreSQL packs (p << 16 | s) + 4, s an 11-bit signed
        precision = ((typmod - 4) >> 16) & 0xFFFF
        scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024
        if scale < 0:  # rounded to tens, hundreds...: integers with more digits
            precision, scale = precision - scale, 0
        return _decimal(max(precision, scale), scale)
    texts = [a.storage for a in head]
    values = pa.chunked_array(texts, pa.string()) if texts else pa.chunked_array([], pa.string())
    values = values.drop_null()
    if len(values) == 0:
        return pa.decimal128(38, UNCONSTRAINED_SCALE)
    if pc.any(pc.match_substring_regex(values, "[a-z]")).as_py():  # nan, inf, -inf
        return pa.float64()
    length = pc.utf8_length(values)
    dot = pc.find_substring(values, ".")
    has_dot = pc.greater_equal(dot, 0)
    scale = pc.max(pc.if_else(has_dot, pc.subtract(pc.subtract(length, dot), 1), 0)).as_py()
    whole = pc.subtract(pc.if_else(has_dot, dot, length), pc.starts_with(values, "-").cast("int32"))
    digits = pc.max(whole).as_py() + scale
    if digits > 76:
        return pa.float64()
    return pa.decimal128(38, scale) if digits <= 38 else pa.decimal256(76, scale)


def _decimal(precision: int, scale: int) -> pa.DataType:
    if precision <= 38:
        return pa.decimal128(precision, scale)
    return pa.decimal256(precision, scale) if precision <= 76 else pa.float64()


def _cast(column: pa.Array, field: pa.Field) -> pa.Array:
    kind = column.type
    if kind == field.type:
        return column
    if isinstance(kind, pa.UuidType):
        values = column.to_pylist()
        return pa.array([None if v is None else str(v) for v in values], pa.string())
    storage = column.storage if isinstance(kind, pa.BaseExtensionType) else column
    if storage.type == field.type:
        return storage
    try:
        return pc.cast(storage, field.type)
    except pa.ArrowInvalid:
        if not pa.types.is_decimal(field.type):
            raise
        return _rounded(storage, field)


_WIDE = Context(prec=200)


def _rounded(texts: pa.Array, field: pa.Field) -> pa.Array:
    """The slow path for values the column's decimal type cannot take as they are: more
    decimals (rounded half-even), NaN or infinity, or too many digits (refused)."""
    kind = field.type
    quantum = Decimal(1).scaleb(-kind.scale)
    out: list[Decimal | None] = []
    for text in texts.to_pylist():
        if text is None:
            out.append(None)
            continue
        value = Decimal(text)
        if not value.is_finite():
            raise EngineError(
                f"PostgreSQL: column {field.name!r} holds {text}, which a decimal cannot; "
                "cast the column to double precision"
            )
        try:
            rounded = value.quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WIDE)
        except InvalidOperation:
            rounded = None
        if rounded is None or len(rounded.as_tuple().digits) > kind.precision:
            raise EngineError(
                f"PostgreSQL: column {field.name!r} holds {text}, too large for the decimal "
                f"type chosen from its first rows ({kind}); cast the column to a numeric(p, s)"
            )
        out.append(rounded)
    return pa.array(out, kind)
