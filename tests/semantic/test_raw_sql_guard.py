"""Raw SQL in the semantic layer: the read-only statement check (a table of statements that
must pass and must be refused, per dialect), the dispatch between semantic, verbatim and
OmniSQL queries, and who may run raw SQL on which model.

The engines' own read-only walls, and what a refused statement leaves in the database, are
checked on real databases in tests/engines/test_raw_sql_jobs.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from assay.demo.tpch import tpch_model_dir
from assay.errors import Forbidden, InvalidQuery, NotSupported
from assay.semantic.compiler import compile_query
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from assay.semantic.raw_sql import ROW_CAP, compile_verbatim, restriction
from assay.semantic.sql_guard import check_read_only
from assay.semantic.sql_mode import sql_mode
from assay.semantic.viewer import Viewer
from tests.governed import ATTRIBUTE_NAMES, governed_model

DIALECTS = ("duckdb", "postgres", "mysql")

# (dialects, SQL) that must pass
READS: list[tuple[tuple[str, ...], str]] = [
    (DIALECTS, "SELECT r_name FROM region ORDER BY 1"),
    (DIALECTS, "select r_name from region where r_name = 'A;B' -- trailing; comment"),
    (DIALECTS, "SELECT r_name FROM region;"),
    (DIALECTS, "SELECT ';DROP TABLE region;' AS s"),
    (DIALECTS, "WITH r AS (SELECT * FROM region) SELECT count(*) AS n FROM r"),
    (DIALECTS, "SELECT 1 AS a UNION ALL SELECT 2"),
    (DIALECTS, "SELECT n_name FROM nation n JOIN region r ON n.n_regionkey = r.r_regionkey"),
    (DIALECTS, "SELECT * FROM (SELECT r_name FROM region) AS t"),
    (DIALECTS, "SELECT /* a comment; DELETE FROM region */ 1 AS one"),
    (("duckdb", "postgres"), "VALUES (1), (2)"),
    (("duckdb",), "FROM region"),
    (("duckdb",), "SELECT * FROM range(3)"),
    (("duckdb",), "SELECT * FROM region r, unnest([1, 2]) u"),
    (("postgres",), "SELECT * FROM region, LATERAL generate_series(1, 2) g"),
    (("postgres",), "SELECT * FROM generate_series(1, 3)"),
    (("postgres",), "SELECT $$;DROP TABLE region;$$ AS s"),
    (("postgres",), "SELECT pg_typeof(1)"),
    (("duckdb", "postgres"),
     "SELECT date_trunc('year', o_orderdate) AS y, count(*) FROM orders GROUP BY 1"),
]  # fmt: skip

# (dialects, SQL, words the refusal must contain)
REFUSED: list[tuple[tuple[str, ...], str, str]] = [
    (DIALECTS, "DELETE FROM region", "DELETE is not allowed"),
    (DIALECTS, "delete from region", "DELETE is not allowed"),
    (DIALECTS, "INSERT INTO region VALUES (9, 'X', 'y')", "INSERT is not allowed"),
    (DIALECTS, "UPDATE region SET r_name = 'X'", "UPDATE is not allowed"),
    (DIALECTS, "DROP TABLE region", "DROP is not allowed"),
    (DIALECTS, "CREATE TABLE x AS SELECT * FROM region", "CREATE is not allowed"),
    (DIALECTS, "ALTER TABLE region ADD COLUMN x INT", "ALTER is not allowed"),
    (DIALECTS, "TRUNCATE TABLE region", "not allowed"),
    (DIALECTS, "SELECT 1; DELETE FROM region", "exactly one statement; this has 2"),
    (DIALECTS, "SELECT 1 /* hidden */; DROP TABLE region", "exactly one statement"),
    (DIALECTS, "SELECT 1 -- a comment\n; DROP TABLE region", "exactly one statement"),
    (DIALECTS, "SELECT 1; SELECT 2", "exactly one statement"),
    (DIALECTS, "SELEC 1", "could not be parsed"),
    (DIALECTS, "", "exactly one statement; this has 0"),
    (DIALECTS, "SELECT * FROM region FOR UPDATE", "a lock"),
    (("postgres",), "WITH gone AS (DELETE FROM region RETURNING *) SELECT * FROM gone", "DELETE"),
    (("postgres",),
     "WITH x AS (INSERT INTO region VALUES (9, 'X', 'y') RETURNING 1) SELECT 1", "INSERT"),
    (("postgres",), "SELECT * INTO copy_of_region FROM region", "SELECT ... INTO"),
    (("postgres",), "COPY region TO '/tmp/region.csv'", "COPY is not allowed"),
    (("postgres",), "SELECT pg_read_file('/etc/passwd')", "pg_read_file() is not allowed"),
    (("postgres",), "SELECT PG_SLEEP(10)", "pg_sleep() is not allowed"),
    (("postgres",), "SELECT lo_import('/etc/passwd')", "lo_import() is not allowed"),
    (("postgres",), "SELECT set_config('default_transaction_read_only', 'off', false)",
     "set_config() is not allowed"),
    (("postgres",), "SELECT nextval('s')", "nextval() is not allowed"),
    (("postgres",), "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS t(a int)", "not allowed"),
    (("postgres",), "SELECT query_to_xml('DELETE FROM region', true, true, '')",
     "query_to_xml() is not allowed"),
    (("postgres",), "SELECT * FROM pg_ls_dir('.')", "not allowed"),
    (("postgres",), "SELECT * FROM ROWS FROM (pg_ls_dir('.'))", "not allowed"),
    (("postgres",), "SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file()"),
    (("postgres",), 'SELECT "pg_read_file"(\'/etc/passwd\')', "pg_read_file()"),
    (("postgres",), "SET default_transaction_read_only = off", "SET is not allowed"),
    (("postgres",), "EXPLAIN ANALYZE DELETE FROM region", "EXPLAIN is not allowed"),
    (("postgres",), "BEGIN", "not allowed"),
    (("duckdb",), "COPY (SELECT * FROM region) TO '/tmp/region.csv'", "COPY is not allowed"),
    (("duckdb",), "ATTACH '/tmp/other.duckdb' AS other", "ATTACH is not allowed"),
    (("duckdb",), "PRAGMA database_list", "PRAGMA is not allowed"),
    (("duckdb",), "CALL pragma_version()", "CALL is not allowed"),
    (("duckdb",), "INSTALL httpfs", "INSTALL is not allowed"),
    (("duckdb",), "LOAD httpfs", "LOAD is not allowed"),
    (("duckdb",), "SET enable_external_access = true", "SET is not allowed"),
    (("duckdb",), "EXPORT DATABASE '/tmp/out'", "could not be parsed"),
    (("duckdb",), "SELECT * FROM read_csv('/etc/passwd')", "READ_CSV('/etc/passwd')"),
    (("duckdb",), "SELECT * FROM region JOIN read_parquet('x') ON true", "not allowed"),
    (("duckdb",), "SELECT * FROM main.read_csv('/etc/passwd')", "not allowed"),
    (("duckdb",), "select * from READ_PARQUET('s3://bucket/x.parquet')", "not allowed"),
    (("duckdb",), "SELECT * FROM read_json_auto('/etc/x.json')", "not allowed"),
    (("duckdb",), "SELECT * FROM read_text('/etc/passwd')", "not allowed"),
    (("duckdb",), "SELECT * FROM glob('/etc/*')", "not allowed"),
    (("duckdb",), "SELECT * FROM 'region.parquet'", "looks like a file or URL"),
    (("duckdb",), "SELECT * FROM '/etc/passwd'", "looks like a file or URL"),
    (("duckdb",), "SELECT * FROM \"https://example.com/x.csv\"", "looks like a file or URL"),
    (("duckdb",), "FROM 'data/*.csv'", "looks like a file or URL"),
    (("duckdb",), "SELECT getenv('HOME')", "getenv() is not allowed"),
    (("duckdb",), "SELECT * FROM query('DELETE FROM region')", "not allowed"),
    (("duckdb",), "SELECT * FROM duckdb_secrets()", "not allowed"),
    (("duckdb",), "SELECT * FROM region, LATERAL (SELECT * FROM read_csv('/etc/passwd'))",
     "not allowed"),
    (("duckdb",), "SELECT (SELECT count(*) FROM read_csv('/etc/passwd')) AS n", "not allowed"),
    (("mysql",), "SELECT 1 /*! , sleep(5) */", "executable comments"),
    (("mysql",), "SELECT 1 /*M! , load_file('/etc/passwd') */", "executable comments"),
    (("mysql",), "SELECT load_file('/etc/passwd')", "load_file() is not allowed"),
    (("mysql",), "SELECT SLEEP(10)", "sleep() is not allowed"),
    (("mysql",), "SELECT benchmark(100000000, md5('x'))", "benchmark() is not allowed"),
    (("mysql",), "SELECT get_lock('x', 10)", "get_lock() is not allowed"),
    (("mysql",), "SELECT * FROM region INTO OUTFILE '/tmp/x'", "could not be parsed"),
    (("mysql",), "SELECT * FROM region LOCK IN SHARE MODE", "a lock"),
    (("mysql",), "SELECT 1 --(SELECT load_file('/etc/passwd'))", "load_file() is not allowed"),
    (("mysql",), "DO sleep(1)", "could not be parsed"),
    (("mysql",), "HANDLER region OPEN", "could not be parsed"),
]  # fmt: skip


def _cases(rows: list[Any]) -> list[Any]:
    return [(d, *rest) for dialects, *rest in rows for d in dialects]


@pytest.mark.parametrize(("dialect", "sql"), _cases(READS))
def test_reads_pass(dialect: str, sql: str) -> None:
    check_read_only(sql, dialect)


@pytest.mark.parametrize(("dialect", "sql", "words"), _cases(REFUSED))
def test_anything_but_one_read_is_refused_by_name(dialect: str, sql: str, words: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        check_read_only(sql, dialect)
    assert words in caught.value.message
    assert caught.value.message.startswith("Raw SQL ")


# ---------------------------------------------------------------- dispatch


@pytest.mark.parametrize(
    ("query", "mode"),
    [
        ({"fields": ["region.r_name"]}, "semantic"),
        ({"userEditedSQL": ""}, "semantic"),
        ({"userEditedSQL": "SELECT 1", "rewriteSql": False}, "raw"),
        ({"userEditedSQL": "SELECT 1", "dbtMode": True}, "raw"),
        ({"userEditedSQL": "SELECT 1", "parsed": False}, "raw"),
        ({"userEditedSQL": "-- DO NOT PARSE\nSELECT 1"}, "raw"),
        ({"userEditedSQL": "SELECT 1\n  --   DO NOT PARSE  \n"}, "raw"),
        ({"userEditedSQL": "SELECT 1 -- DO NOT PARSE"}, "omnisql"),  # not a line of its own
        ({"userEditedSQL": "SELECT ${orders.count} FROM ${orders}"}, "omnisql"),
        ({"userEditedSQL": "SELECT 1", "rewriteSql": True}, "omnisql"),
        ({"userEditedSQL": "SELECT 1", "rewriteSql": "false"}, "omnisql"),  # not the boolean
    ],
)
def test_which_path_a_query_takes(query: dict[str, Any], mode: str) -> None:
    assert sql_mode(query) == mode


def test_the_semantic_compiler_refuses_raw_sql(tpch_model: SemanticModel) -> None:
    with pytest.raises(NotSupported, match="runs only as a query job"):
        compile_query(tpch_model, {"userEditedSQL": "SELECT 1", "rewriteSql": False})


# ---------------------------------------------------------------- who may run it


def raw(sql: str = "SELECT r_name FROM region", **extra: Any) -> dict[str, Any]:
    return {"userEditedSQL": sql, "rewriteSql": False, "fields": [], "table": "", **extra}


def test_a_querier_runs_it_verbatim_with_the_cap(tpch_model: SemanticModel) -> None:
    text = "SELECT r_name FROM region ORDER BY 1;\n"
    compiled = compile_verbatim(tpch_model, raw(text, limit=10), viewer=Viewer("u"))
    assert compiled.sql == "SELECT r_name FROM region ORDER BY 1"  # the query's limit: ignored
    assert compiled.limit == ROW_CAP and compiled.fields == () and compiled.columns == []
    assert compiled.pretty_sql() == compiled.sql


@pytest.mark.parametrize("role", ["RESTRICTED_QUERIER", "VIEWER"])
def test_a_role_without_query_sql_is_refused(tpch_model: SemanticModel, role: str) -> None:
    with pytest.raises(Forbidden) as caught:
        compile_verbatim(tpch_model, raw(), viewer=Viewer("u", role=role))
    assert caught.value.message == (
        "Permission denied - queries based on manually written SQL are restricted"
    )
    assert caught.value.error_type == "FORBIDDEN"


def test_sorts_need_sql_sorts_enabled_and_wrap_the_statement(tpch_model: SemanticModel) -> None:
    sorts = [{"column_name": "R_NAME", "sort_descending": True, "null_sort": "LAST"}]
    with pytest.raises(NotSupported, match="sqlSortsEnabled: true"):
        compile_verbatim(tpch_model, raw(sorts=sorts))
    text = "SELECT r_name AS R_NAME FROM region -- no semicolon"
    compiled = compile_verbatim(tpch_model, raw(text, sorts=sorts, sqlSortsEnabled=True),
                                dialect="postgres")  # fmt: skip
    assert compiled.sql == (
        'SELECT * FROM (\nSELECT r_name AS R_NAME FROM region -- no semicolon\n) AS "omni_sql" '
        'ORDER BY "omni_sql"."R_NAME" DESC NULLS LAST'
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("filters", {"region.r_name": {"is": "ASIA"}}),
        ("column_totals", {"n": {"type": "aggregation"}}),
        ("pivots", ["region.r_name"]),
        ("calculations", [{"calc_name": "c"}]),
        ("offset", 5),
    ],
)
def test_keys_raw_sql_does_not_apply_are_refused_by_name(
    tpch_model: SemanticModel, key: str, value: Any
) -> None:
    with pytest.raises(NotSupported, match=f"query.{key}: .*raw SQL"):
        compile_verbatim(tpch_model, raw(**{key: value}))


def test_dbt_mode_renders_nothing(tpch_model: SemanticModel) -> None:
    plain = compile_verbatim(tpch_model, {"userEditedSQL": "SELECT 1 AS one", "dbtMode": True})
    assert plain.sql == "SELECT 1 AS one"
    with pytest.raises(NotSupported, match="DBT_RENDER_FAILED"):
        compile_verbatim(tpch_model, {"userEditedSQL": "SELECT * FROM {{ ref('x') }}",
                                      "dbtMode": True})  # fmt: skip


def test_a_write_is_refused_before_anything_runs(tpch_model: SemanticModel) -> None:
    with pytest.raises(InvalidQuery, match="DELETE is not allowed"):
        compile_verbatim(tpch_model, raw("DELETE FROM region"), viewer=Viewer("u"))


# ---------------------------------------------------------------- access rules


GRANTED_ONLY = """
access_grants:
  finance:
    user_attribute: department
    allowed_values: [finance]
"""
FILTER_ONLY = """
access_filters:
  - field: region.r_name
    user_attribute: region
    values_for_unfiltered: [ALL]
"""


@pytest.fixture(scope="module")
def filtered_model() -> SemanticModel:
    """The tpch model with one access filter (ALL unfiltered) and one grant on a field."""
    files = read_model_files(tpch_model_dir())
    files["model"] += GRANTED_ONLY
    files["customer.topic"] += FILTER_ONLY
    files["customer.view"] = files["customer.view"].replace(
        "  c_acctbal:\n", "  c_acctbal:\n    required_access_grants: [finance]\n", 1
    )
    return build_model(files, name="tpch", attributes=ATTRIBUTE_NAMES)


def who(role: str = "QUERIER", admin: bool = False, **values: str) -> Viewer:
    return Viewer("u", {k: (v,) for k, v in values.items()}, role=role, org_admin=admin)


def test_rules_that_restrict_a_user_refuse_their_raw_sql(filtered_model: SemanticModel) -> None:
    asia = who(region="ASIA", department="finance")
    with pytest.raises(Forbidden) as caught:
        compile_verbatim(filtered_model, raw(), viewer=asia)
    assert caught.value.message == (
        "Permission denied - raw SQL is not allowed on a model whose access rules restrict you "
        "(the access filter on region.r_name in topic 'customer')"
    )
    no_grant = who(region="ALL", department="sales")
    with pytest.raises(Forbidden, match=r"customer.c_acctbal requires access grants"):
        compile_verbatim(filtered_model, raw(), viewer=no_grant)
    with pytest.raises(Forbidden, match="access rules restrict you"):  # an admin is no exception
        compile_verbatim(filtered_model, raw(), viewer=who(admin=True, department="finance"))
    with pytest.raises(Forbidden, match="access rules restrict you"):  # nobody: no values
        compile_verbatim(filtered_model, raw(), viewer=None)


def test_a_user_no_rule_restricts_may_run_it(filtered_model: SemanticModel) -> None:
    free = who(region="ALL", department="finance")
    assert restriction(filtered_model, free) is None
    assert compile_verbatim(filtered_model, raw(), viewer=free).sql == "SELECT r_name FROM region"


def test_sql_tailored_by_attributes_restricts_everyone() -> None:
    """A topic's always_where_sql reads min_balance: raw SQL would skip it, so it is refused
    even to a user with every value."""
    files = read_model_files(tpch_model_dir())
    files["customer.topic"] += (
        "always_where_sql: ${customer.c_acctbal} >= {{ omni_attributes.min_balance }}\n"
    )
    model = build_model(files, name="tpch", attributes=ATTRIBUTE_NAMES)
    everyone = who(region="ALL", department="finance", min_balance="-1000")
    reason = restriction(model, everyone)
    assert reason == "the model's SQL reads your user attributes (min_balance)"
    assert restriction(governed_model(), everyone) is not None


def test_column_totals_sum_the_whole_statement_on_the_same_wall(tpch_model: SemanticModel) -> None:
    text = "SELECT r_regionkey AS k, r_name FROM region -- keys\n;"
    totals = {"k": {"type": "aggregation"}}
    compiled = compile_verbatim(tpch_model, raw(text, column_totals=totals, sqlSortsEnabled=True),
                                dialect="postgres")  # fmt: skip
    assert compiled.totals == ("k",) and compiled.limit_per == "$omni_column_total_indicator"
    assert compiled.totals_sql == (
        'SELECT SUM("omni_sql"."k") AS "omni_summ_0" FROM (\n'
        'SELECT r_regionkey AS k, r_name FROM region -- keys\n) AS "omni_sql"'
    )
    assert compiled.pretty_sql().endswith(compiled.totals_sql)
    with pytest.raises(InvalidQuery, match="name the result columns to total instead"):
        compile_verbatim(tpch_model, raw(column_totals={"::total::": {"type": "aggregation"}},
                                         sqlSortsEnabled=True))  # fmt: skip
    with pytest.raises(InvalidQuery, match=r"query\.column_totals: expected an object"):
        compile_verbatim(tpch_model, raw(column_totals=["k"], sqlSortsEnabled=True))
    empty = compile_verbatim(tpch_model, raw(column_totals={}))  # omniframes' default
    assert empty.totals == () and empty.totals_sql == "" and empty.limit_per is None
