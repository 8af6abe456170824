"""Is a user's SQL a single read? The first wall in front of raw SQL jobs (semantic layer:
pure sqlglot, no engines).

A statement is let through only when sqlglot can prove it reads: exactly one statement, a
``SELECT`` (with its ``WITH``), a set operation or ``VALUES``; nothing anywhere in it that
writes, locks or changes the session; every ``FROM`` source a table name, a subquery or one of
a few generator functions (an allow-list: DuckDB reads files and URLs through table functions
and file names in ``FROM``); and no call to a function that reads files, sleeps, takes locks
or reaches another server. SQL sqlglot cannot parse is refused, since nothing about it can be
proven. The engines add a second wall (a read-only transaction or connection) behind this.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from assay.errors import InvalidQuery

_STATEMENT_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
# Nodes that write, lock, change the session or run other statements, wherever they appear
# (a data-modifying CTE is an Insert/Update/Delete inside a SELECT's WITH).
_WRITES: tuple[type[exp.Expr], ...] = (
    exp.DML,
    exp.DDL,
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.TruncateTable,
    exp.Copy,
    exp.Command,
    exp.Set,
    exp.Pragma,
    exp.Into,
    exp.Lock,
    exp.Attach,
    exp.Detach,
    exp.Use,
    exp.Install,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.LoadData,
    exp.Grant,
    exp.Revoke,
    exp.Export,
    exp.Kill,
    exp.Declare,
    exp.Execute,
    exp.Analyze,
    exp.Refresh,
    exp.Cache,
    exp.Uncache,
)
# Generators allowed as a FROM source: they read nothing but their arguments.
_SOURCE_FUNCTIONS = frozenset({"range", "generate_series", "unnest", "generate_subscripts"})
_SOURCE_CLASSES = (exp.GenerateSeries, exp.ExplodingGenerateSeries, exp.Unnest)
# Functions that read files or the environment, sleep, lock, write sequences or settings, or
# reach other servers or statements, by lower-case name. Names starting with a prefix in
# _DENIED_PREFIXES are refused too (PostgreSQL's pg_* admin functions, large objects, dblink).
_DENIED_FUNCTIONS = frozenset(
    {
        # DuckDB: files, URLs, the environment, other databases, SQL in a string
        "read_csv", "read_csv_auto", "read_parquet", "parquet_scan", "parquet_metadata",
        "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata", "read_json",
        "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
        "read_ndjson_auto", "read_ndjson_objects", "read_text", "read_blob", "read_xlsx",
        "glob", "sniff_csv", "getenv", "query", "query_table", "iceberg_scan",
        "iceberg_metadata", "delta_scan", "sqlite_scan", "sqlite_attach", "postgres_scan",
        "postgres_attach", "postgres_query", "postgres_execute", "mysql_scan", "mysql_query",
        "mysql_execute", "duckdb_secrets", "which_secret", "load_extension", "http_get",
        "http_post", "st_read", "read_osm", "current_setting",
        # PostgreSQL
        "lo_import", "lo_export", "lo_unlink", "lo_create", "lo_open", "lo_put", "lo_from_bytea",
        "set_config", "setval", "nextval", "lastval", "currval", "query_to_xml",
        "query_to_xmlschema", "query_to_xml_and_xmlschema", "cursor_to_xml",
        "cursor_to_xmlschema", "txid_current", "dblink",
        # MySQL / MariaDB
        "load_file", "sleep", "benchmark", "get_lock", "release_lock", "release_all_locks",
        "is_used_lock", "master_pos_wait", "source_pos_wait", "sys_exec", "sys_eval",
        # Spark
        "reflect", "java_method", "input_file_name",
    }
)  # fmt: skip
_DENIED_PREFIXES = ("pg_", "lo_", "dblink", "duckdb_", "st_read")
_ALLOWED_PREFIXED = frozenset({"pg_typeof"})
# A FROM name that DuckDB would read as a file or URL (a replacement scan): a path, a glob or
# a file extension. Table names are never written like that.
_PATH_LIKE = re.compile(r"[/\\:*?]|\.[A-Za-z0-9]+$")


def check_read_only(sql: str, dialect: str) -> exp.Expr:
    """The parsed statement when ``sql`` is provably one read in ``dialect``; otherwise
    ``InvalidQuery`` naming what is refused and why.

    >>> type(check_read_only("SELECT 1 AS one", "duckdb")).__name__
    'Select'
    """
    _check_comments(sql, dialect)
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidQuery(
            f"Raw SQL could not be parsed, so it cannot be proven read-only: {first}"
        ) from exc
    if len(statements) != 1:
        raise InvalidQuery(f"Raw SQL must be exactly one statement; this has {len(statements)}")
    (tree,) = statements
    if not isinstance(tree, _STATEMENT_ROOTS):
        raise InvalidQuery(
            f"Raw SQL must be a read (SELECT, WITH ... SELECT, UNION, VALUES): "
            f"{_what(tree)} is not allowed"
        )
    for node in tree.walk():
        if isinstance(node, _WRITES):
            raise InvalidQuery(
                f"Raw SQL must only read: {_what(node)} is not allowed (it could change the "
                "database, the session or files)"
            )
        if isinstance(node, exp.Table):
            _check_source(node)
        if isinstance(node, exp.Func):
            _check_function(node)
    return tree


def _check_comments(sql: str, dialect: str) -> None:
    """MySQL and MariaDB run the text of ``/*! ... */`` comments as SQL; sqlglot does not,
    so what it would check is not what the server would run."""
    try:
        tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    except (ParseError, TokenError) as exc:
        raise InvalidQuery(
            f"Raw SQL could not be parsed, so it cannot be proven read-only: {exc}"
        ) from exc
    for token in tokens:
        for comment in token.comments:
            if comment.lstrip().startswith(("!", "M!")):
                raise InvalidQuery(
                    "Raw SQL must not contain executable comments (/*! ... */): the database "
                    "runs their text as SQL"
                )


def _check_source(table: exp.Table) -> None:
    source = table.this
    if isinstance(source, exp.Identifier):
        if _PATH_LIKE.search(source.name):
            raise InvalidQuery(
                f"Raw SQL may read tables only: {source.name!r} in FROM looks like a file or "
                "URL, which is not allowed"
            )
        return
    if isinstance(source, _SOURCE_CLASSES):
        return
    if isinstance(source, exp.Func) and _function_name(source) in _SOURCE_FUNCTIONS:
        return
    shown = (source if isinstance(source, exp.Expr) else table).sql()
    raise InvalidQuery(
        f"Raw SQL may read tables, subqueries and {', '.join(sorted(_SOURCE_FUNCTIONS))} in "
        f"FROM: {shown[:80]!r} is not allowed"
    )


def _check_function(func: exp.Func) -> None:
    name = _function_name(func)
    denied = name in _DENIED_FUNCTIONS or (
        name.startswith(_DENIED_PREFIXES) and name not in _ALLOWED_PREFIXED
    )
    if denied:
        raise InvalidQuery(
            f"Raw SQL must only read tables: the function {name}() is not allowed (it reads "
            "files or settings, waits, locks, writes or reaches outside the database)"
        )


def _function_name(func: exp.Func) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.name).lower()
    return func.sql_name().lower()


def _what(node: exp.Expr) -> str:
    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    if isinstance(node, exp.Lock):
        return "SELECT ... FOR UPDATE/SHARE (a lock)"
    return node.key.upper()
