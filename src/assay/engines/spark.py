"""Spark through Spark Connect (``sc://host:port``): the light ``pyspark-client``, no JVM here.

One Connect session per engine, created on first use (a server whose Spark is down still
starts) and recreated when it breaks (a Spark restart loses every session). The client's
default retry policy waits out at least ten minutes of outage, so a dead server would hang
each query for minutes: here it fails in a second or two, as OFFLINE.

A query's client dying does not stop it on the server, so every query carries a unique tag and
``cancel`` interrupts that tag; the session id is logged, and ``close`` (also run at exit)
interrupts whatever is still running. A restarted Assay can interrupt an orphan by connecting
with ``sc://host:port/;session_id=<id>;user_id=<user>`` and calling ``interruptAll``.

Adaptive query execution is off in the engine's session by default: with it, Spark 4.3 submits
shuffle stages from a background thread, and an interrupt that lands in the first tens of
milliseconds of execution ends the query for the client while the stage it then submits runs
to completion on the server (reproduced: 5 to 10 of 22 early cancels leaked; none without it).
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import pyarrow as pa

from assay.errors import ConfigError, EngineError, EngineUnavailable, QueryCancelled

if TYPE_CHECKING:
    from pyspark.errors import PySparkException
    from pyspark.sql.connect.dataframe import DataFrame as ConnectDataFrame
    from pyspark.sql.connect.session import SparkSession

logger = logging.getLogger(__name__)

# The client logs every SQL error once more, as JSON with the JVM stack trace: we report it.
_NOISY_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")
# A second or two of retries (50 + 200 + 800 ms of backoff), not the default ten minutes.
RETRIES = 3
DEFAULT_SHUFFLE_PARTITIONS = 4
# grpc's ValueError("Cannot invoke RPC: Channel closed!") for a session stopped under a query
_CHANNEL_CLOSED = "Channel closed"


def _import_pyspark() -> None:
    """Import the client once, quietly: pyspark warns that it does not fully support pandas
    3, which it uses only for ``toPandas`` (Assay reads Arrow).

    ``pyspark.sql.connect`` checks at import whether it runs under its own doctest runner, by
    looking for a ``__main__`` with neither ``__spec__`` nor ``__file__``: ``python -c``,
    pytest-xdist workers and embedded interpreters look the same, and there it looks for a
    Spark installation and, finding none, exits the process. An interactive session is exempt,
    so during the import this one says it is."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if "pyspark.sql.connect.session" in sys.modules:
        return
    main = sys.modules.get("__main__")
    pretend = (
        main is not None
        and getattr(main, "__spec__", None) is None
        and not hasattr(main, "__file__")
        and not hasattr(sys, "ps1")
    )
    if pretend:
        sys.ps1 = ">>> "
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore",
                message="PySpark does not yet fully support pandas",
                category=FutureWarning,
            )
            import pyspark.sql.connect.session  # noqa: F401, PLC0415
    finally:
        if pretend:
            del sys.ps1


def _short_retries() -> Any:
    """A retry policy that gives up after ``RETRIES`` attempts by declining the error, so the
    client raises the gRPC error itself rather than warning ``RETRIES_EXCEEDED`` first (a
    warning is an error under pytest, and noise in a server log)."""
    from pyspark.sql.connect.client.retries import (  # noqa: PLC0415
        DefaultPolicy,
        RetryPolicyState,
    )

    class _Bounded(RetryPolicyState):
        def can_retry(self, exception: BaseException) -> bool:
            return self._attempt < RETRIES and super().can_retry(exception)

    class _Short(DefaultPolicy):
        def __init__(self) -> None:
            super().__init__(max_retries=RETRIES, max_backoff=2000)

        def to_state(self) -> RetryPolicyState:
            return _Bounded(self)

    return _Short()


_open_engines: weakref.WeakSet[SparkEngine] = weakref.WeakSet()


@atexit.register
def _close_open_engines() -> None:
    """An engine left open at exit would leave its queries running on the server, and its
    gRPC channel blocks interpreter exit."""
    for engine in list(_open_engines):
        engine.close()


class SparkEngine:
    name = "spark"
    dialect = "spark"

    def __init__(
        self,
        url: str,
        *,
        shuffle_partitions: int = DEFAULT_SHUFFLE_PARTITIONS,
        adaptive: bool = False,
    ) -> None:
        """``shuffle_partitions`` (0: the server's setting) replaces Spark's default of 200,
        which on a small machine or small data spends most of a query scheduling empty tasks.
        ``adaptive`` turns adaptive query execution back on, at the price of cancels that can
        miss (see the module's docstring)."""
        parts = urlsplit(url)
        if parts.scheme != "sc" or not parts.hostname:
            raise ConfigError(f"A Spark Connect URL looks like sc://host:15002, got {url!r}")
        try:
            port = parts.port or 15002
        except ValueError as exc:
            raise ConfigError(f"Bad port in the Spark Connect URL {url!r}") from exc
        self.url = url
        self.address = f"{parts.hostname}:{port}"  # for messages: the URL may hold a token
        self._settings = {"spark.sql.adaptive.enabled": str(adaptive).lower()}
        if shuffle_partitions:
            self._settings["spark.sql.shuffle.partitions"] = str(shuffle_partitions)
        self._lock = threading.Lock()
        self._spark: SparkSession | None = None
        self._retired: list[SparkSession] = []
        self._closed = False

    # ------------------------------------------------------------------ session

    def session(self) -> SparkSession:
        """The engine's Connect session, created (again) if there is none."""
        with self._lock:
            if self._closed:
                raise EngineError("The Spark engine is closed")
            if self._spark is not None and not self._spark.is_stopped:
                return self._spark
            _import_pyspark()
            from pyspark.errors import PySparkException  # noqa: PLC0415
            from pyspark.sql.connect.session import SparkSession  # noqa: PLC0415

            # The constructor, not the builder: the builder's getOrCreate shares one default
            # session per process, and its create() sends settings before we can set retries.
            spark = SparkSession(connection=self.url)
            spark.client.set_retry_policies([_short_retries()])
            try:
                for key, value in self._settings.items():  # the first call connects
                    spark.conf.set(key, value)
            except PySparkException as exc:
                spark.client.close()
                raise translate(exc, self.address) from exc
            user = f";user_id={spark.client._user_id}" if spark.client._user_id else ""
            logger.info(
                "Spark Connect session %s on %s (to interrupt its queries after a crash: "
                "connect to sc://%s/;session_id=%s%s and interruptAll)",
                spark.session_id, self.address, self.address, spark.session_id, user,
            )  # fmt: skip
            self._spark = spark
            _open_engines.add(self)
            return spark

    @property
    def closed(self) -> bool:
        return self._closed

    def _session_broke(self, spark: SparkSession) -> None:
        """Drop a session the server no longer knows (it restarted, or is down): the next
        query starts a new one."""
        with self._lock:
            if self._spark is spark:
                self._spark = None
                self._retired.append(spark)

    # ------------------------------------------------------------------ engine protocol

    def start(self, sql: str, params: Sequence[Any] = ()) -> _SparkQuery:
        return _SparkQuery(self, sql, params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self.start(sql, params).reader().read_all()

    def catalog(self) -> dict[str, dict[str, str]]:
        """Tables and views of the current database (and the session's temporary views), with
        Spark's type names (``decimal(15,2)``, ``bigint``, ``date``)."""
        tables = self.execute("SHOW TABLES").to_pylist()
        spark = self.session()
        from pyspark.errors import PySparkException  # noqa: PLC0415

        out: dict[str, dict[str, str]] = {}
        for row in tables:
            schema, table = str(row["namespace"] or "").lower(), str(row["tableName"]).lower()
            qualified = f"`{schema}`.`{table}`" if schema else f"`{table}`"
            try:
                fields = spark.table(qualified).schema.fields
            except PySparkException as exc:  # dropped meanwhile, or unreadable: skip it
                error = translate(exc, self.address)
                if isinstance(error, EngineUnavailable):
                    self._session_broke(spark)
                    raise error from exc
                logger.warning("Spark catalog: skipping %s: %s", qualified, error.message)
                continue
            columns = {f.name.lower(): f.dataType.simpleString() for f in fields}
            out[table] = columns
            if schema:
                out[f"{schema}.{table}"] = columns
        return out

    def close(self) -> None:
        """Interrupt whatever this engine still runs and release its sessions on the server."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sessions = [*self._retired, *([self._spark] if self._spark else [])]
            self._spark, self._retired = None, []
        _open_engines.discard(self)
        for spark in sessions:
            try:
                interrupted = spark.interruptAll()
                if interrupted:
                    logger.info("Spark: interrupted %d operation(s) on close", len(interrupted))
            except Exception as exc:  # the server may be gone: nothing is running there then
                logger.debug("Spark: interruptAll on close failed: %s", exc)
            spark.stop()  # best effort by design: it logs and never raises


class _SparkQuery:
    """One query: ``reader`` runs it in the calling thread (the thread-local tag must be set
    there), ``cancel`` interrupts the tag from any thread."""

    # How long a cancel keeps interrupting a query that was handed out but is never read.
    CANCEL_PATIENCE_S = 30.0

    def __init__(self, engine: SparkEngine, sql: str, params: Sequence[Any]) -> None:
        self._engine = engine
        self._sql = sql
        self._params = list(params)
        self._tag = f"assay-{uuid.uuid4().hex}"
        self._spark: SparkSession | None = None
        self._cancelled = threading.Event()
        self._started = threading.Event()
        self._finished = threading.Event()

    def cancel(self) -> None:
        """Stop the query, from any thread.

        ``reader`` marks the query started *before* it checks for a cancel, and ``cancel``
        marks the cancel *before* it checks for a start, so one of them always sees the other.
        An interrupt that reaches the server before the tagged operation does (or between the
        query's two operations: analysis, then execution) finds nothing to stop, so once
        started the interrupt is repeated until the query has stopped.
        """
        self._cancelled.set()
        if self._started.is_set() and not self._finished.is_set():
            threading.Thread(
                target=self._interrupt_until_finished, name="spark-cancel", daemon=True
            ).start()

    def _interrupt_until_finished(self) -> None:
        begun = time.monotonic()
        while not self._finished.is_set() and time.monotonic() - begun < self.CANCEL_PATIENCE_S:
            spark = self._spark  # read each time: a retry may have moved to a new session
            assert spark is not None  # set before started
            try:
                spark.interruptTag(self._tag)
            except Exception as exc:  # the server is gone: the query fails on its own
                logger.debug("Spark: interrupting %s failed: %s", self._tag, exc)
                return
            self._finished.wait(0.05 if time.monotonic() - begun < 2 else 0.5)

    def reader(self) -> pa.RecordBatchReader:
        from pyspark.errors import PySparkException  # noqa: PLC0415

        if self._cancelled.is_set():  # spare the session a round trip (checked again below)
            self._finished.set()
            raise QueryCancelled("The query was cancelled before it started")
        retried = False
        while True:
            try:
                spark = self._engine.session()
            except EngineError:
                self._finished.set()
                raise
            self._spark = spark
            self._started.set()
            if self._cancelled.is_set():
                self._finished.set()
                raise QueryCancelled("The query was cancelled before it started")
            try:
                stream, schema, first = self._open(spark)
            except (PySparkException, ValueError) as exc:
                retry = _stale(exc) or _session_gone(exc)
                if retry and not retried and not self._engine.closed:
                    # The server lost the session (it restarted, or the session idled out):
                    # the statement was refused. Or another session replaced a table's files
                    # since this one listed them: the statement failed reading, before any
                    # effect. Either way a fresh session may run it again.
                    self._engine._session_broke(spark)
                    retried = True
                    continue
                self._finished.set()
                raise self._translate(exc) from exc
            except BaseException:
                self._finished.set()
                raise
            break
        if self._cancelled.is_set():
            _close(stream)
            self._finished.set()
            raise QueryCancelled("The query was cancelled")
        return pa.RecordBatchReader.from_batches(schema, self._guarded(stream, first))

    def _open(self, spark: SparkSession) -> tuple[Iterator[Any], pa.Schema, pa.Table | None]:
        """Run the query up to its first rows, under the query's tag."""
        client = spark.client
        client.add_tag(self._tag)  # tags are thread-local: the requests below carry it
        try:
            # Analysis is one operation (errors in the SQL surface here), execution another.
            frame = cast("ConnectDataFrame", spark.sql(self._sql, args=self._params or None))
            if self._cancelled.is_set():
                raise QueryCancelled("The query was cancelled")
            # What toLocalIterator streams from, minus the conversion to Rows: Arrow batches
            # as the server sends them, not toArrow's whole table at once.
            stream = client.to_table_as_iterator(
                frame._plan.to_proto(client), frame._plan.observations
            )
            schema, first = self._first(stream)
        finally:
            client.remove_tag(self._tag)
        return stream, schema, first

    @staticmethod
    def _first(stream: Iterator[Any]) -> tuple[pa.Schema, pa.Table | None]:
        """Wait for the first rows (the schema comes first; an empty result still sends an
        empty batch, but a schema alone must do too)."""
        from pyspark.sql.pandas.types import to_arrow_schema  # noqa: PLC0415
        from pyspark.sql.types import StructType  # noqa: PLC0415

        struct: StructType | None = None
        for item in stream:
            if isinstance(item, pa.Table):
                return item.schema, item
            if isinstance(item, StructType):
                struct = item
        if struct is None:
            return pa.schema([]), None
        return to_arrow_schema(struct, timezone="UTC"), None

    def _guarded(self, stream: Iterator[Any], first: pa.Table | None) -> Iterator[pa.RecordBatch]:
        from pyspark.errors import PySparkException  # noqa: PLC0415

        done = False
        try:
            if first is not None:
                yield from first.to_batches()
            for item in stream:
                if self._cancelled.is_set():
                    raise QueryCancelled("The query was cancelled")
                if isinstance(item, pa.Table):
                    yield from item.to_batches()
            done = True
        except (PySparkException, ValueError) as exc:
            raise self._translate(exc) from exc
        finally:
            if not done:
                _close(stream)
            self._finished.set()

    def _translate(self, exc: PySparkException | ValueError) -> EngineError:
        if self._cancelled.is_set():
            return QueryCancelled("The query was cancelled")
        if self._engine.closed:
            return QueryCancelled("The query was cancelled: the Spark engine was closed")
        if isinstance(exc, ValueError):
            if _CHANNEL_CLOSED not in str(exc):
                raise exc  # not the client's: a bug, reported as such
            if self._spark is not None:
                self._engine._session_broke(self._spark)
            return EngineUnavailable(
                f"The Spark Connect session to {self._engine.address} was closed while the query "
                "ran; the next query opens a new one"
            )
        error = translate(exc, self._engine.address)
        # A stale file listing (another session replaced a table's files) stays stale in this
        # session: the next query gets a fresh one.
        broken = _stale(exc) or _session_gone(exc) or isinstance(error, EngineUnavailable)
        if broken and self._spark is not None:
            self._engine._session_broke(self._spark)
        return error


def _condition(exc: Exception) -> str:
    return str(getattr(exc, "getCondition", lambda: None)() or "")


def _stale(exc: Exception) -> bool:
    return _condition(exc).startswith("FAILED_READ_FILE.FILE_NOT_EXIST")


def _session_gone(exc: Exception) -> bool:
    """The server does not know the session (any more), or the client closed it after the
    server said so (``NO_ACTIVE_SESSION``)."""
    return _condition(exc).startswith(_SESSION_GONE)


def _close(stream: Iterator[Any]) -> None:
    """Close the client's generator: it releases the operation's results on the server."""
    close = getattr(stream, "close", None)
    if close is not None:
        close()


_SESSION_GONE = ("INVALID_HANDLE.SESSION_CHANGED", "INVALID_HANDLE.SESSION_CLOSED",
                 "INVALID_HANDLE.SESSION_NOT_FOUND", "NO_ACTIVE_SESSION")  # fmt: skip


def translate(exc: PySparkException, address: str) -> EngineError:
    """Assay's error for a client error: the condition and the first line of Spark's message,
    without the JVM stack trace and the plan Spark appends."""
    from pyspark.errors.exceptions.connect import SparkConnectGrpcException  # noqa: PLC0415

    condition = exc.getCondition() or ""
    text = str(exc)
    if condition == "OPERATION_CANCELED":
        return QueryCancelled("The query was cancelled")
    status = exc.getGrpcStatusCode() if isinstance(exc, SparkConnectGrpcException) else None
    if getattr(status, "name", "") in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "UNAUTHENTICATED"):
        found = re.search(r'details = "([^"]*)"', text)
        detail = found.group(1) if found else _first_line(text)
        return EngineUnavailable(f"Cannot reach the Spark Connect server at {address}: {detail}")
    if condition.startswith(_SESSION_GONE):
        return EngineUnavailable(
            f"The Spark Connect server at {address} lost this session (restarted?): "
            f"{_first_line(text)}. The next query opens a new one."
        )
    message = _first_line(text)
    return EngineError(f"Spark: {condition}: {message}" if condition else f"Spark: {message}")


def _first_line(text: str) -> str:
    """``[COND] What went wrong. SQLSTATE: 42703; line 1 pos 7;\\n<plan>`` -> what went wrong."""
    text = text.split("JVM stacktrace:", 1)[0].strip()
    line = text.splitlines()[0] if text else ""
    line = re.sub(r"^\([\w.$]+\)\s*", "", line)  # "(org.apache.spark.SparkSQLException) "
    line = re.sub(r"^\[[\w.]+\]\s*", "", line)
    line = re.split(r"\s*SQLSTATE: ", line, maxsplit=1)[0]
    return line.strip() or "unknown error"
