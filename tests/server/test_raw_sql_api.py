"""Raw SQL over ``POST /api/v1/query/run`` on a real `assay serve`: who may run it (a QUERIER
no access rule restricts), who may not (a RESTRICTED_QUERIER; a user an access filter binds),
writes refused with a clear job error and the table unchanged, the 50,000-row cap, and
column totals as omniframes reads them and as ``resultType`` documents render them.

The server is this module's own: its tpch model gets one access filter (region, ``ALL``
unfiltered) through the YAML API, so that the rule binds one user and not another.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pytest

from tests.server.conftest import MODEL_ID, Server, make_home
from tests.server.directory import ATTRIBUTES, SCIM

pytestmark = pytest.mark.tpch
RUN = "/api/v1/query/run"
FILTER = """
access_filters:
  - field: region.r_name
    user_attribute: region
    values_for_unfiltered: [ALL]
"""
#: userName -> (region, model role)
PEOPLE = {
    "all@example.com": ("ALL", "QUERIER"),
    "asia@example.com": ("ASIA", "QUERIER"),
    "restricted@example.com": ("ALL", "RESTRICTED_QUERIER"),
}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[dict[str, str]]:
    server = Server(make_home(tmp_path_factory.mktemp("raw_sql")), tpch_path,
                    env={"ASSAY_RUN_WAIT_SECONDS": "30"}).start()  # fmt: skip
    org = server.key("--org")
    with httpx.Client(base_url=server.url, timeout=60,
                      headers={"Authorization": f"Bearer {org}"}) as api:  # fmt: skip
        made = api.post("/api/v1/user-attributes",
                        json={"name": "region", "multiple_values": True})  # fmt: skip
        assert made.status_code == 201, made.text
        files = api.get(f"/api/v1/models/{MODEL_ID}/yaml").json()["files"]
        written = api.post(f"/api/v1/models/{MODEL_ID}/yaml",
                           json={"fileName": "customer.topic",
                                 "yaml": files["customer.topic"] + FILTER})  # fmt: skip
        assert written.status_code == 200, written.text
        for name, (region, role) in PEOPLE.items():
            user = api.post(SCIM, json={"userName": name, ATTRIBUTES: {"region": [region]}})
            assert user.status_code == 201, user.text
            roles = f"/api/v1/users/{user.json()['id']}/model-roles"
            set_role = api.post(roles, json={"modelId": MODEL_ID, "roleName": role})
            assert set_role.status_code == 200, set_role.text
    out = {name: server.key("--user", name) for name in PEOPLE}
    out["url"] = server.url
    yield out
    server.stop()


def run(tokens: dict[str, str], who: str, sql: str, **query: Any) -> dict[str, Any]:
    body = {"query": {"modelId": MODEL_ID, "userEditedSQL": sql, "rewriteSql": False,
                      "fields": [], "table": "", "limit": 1000, **query}}  # fmt: skip
    answer = httpx.post(f"{tokens['url']}{RUN}", json=body, timeout=120,
                        headers={"Authorization": f"Bearer {tokens[who]}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    lines = [json.loads(x) for x in answer.text.splitlines() if x.strip()]
    return next(x for x in lines if "job_id" in x)


def rows(job: dict[str, Any]) -> pa.Table:
    assert job["status"] == "COMPLETE", job
    return pa.ipc.open_stream(base64.b64decode(job["result"])).read_all()


def direct(tpch_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tpch_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_a_querier_no_rule_restricts_runs_it(tokens: dict[str, str], tpch_path: Path) -> None:
    sql = "SELECT r_name AS NAME, count(*) AS n FROM region GROUP BY 1 ORDER BY 1"
    job = run(tokens, "all@example.com", sql)
    table = rows(job)
    assert table.column_names == ["NAME", "n"]  # the database's names, as Omni returns them
    assert [tuple(r.values()) for r in table.to_pylist()] == direct(tpch_path, sql)
    assert set(job["summary"]["fields"]) == {"NAME", "n"}
    assert job["summary"]["display_sql"] == sql


def test_a_restricted_querier_is_refused(tokens: dict[str, str]) -> None:
    job = run(tokens, "restricted@example.com", "SELECT r_name FROM region")
    assert (job["status"], job["error_type"]) == ("FAILED", "FORBIDDEN")
    assert job["error_message"] == (
        "Permission denied - queries based on manually written SQL are restricted"
    )


def test_a_user_an_access_filter_binds_is_refused(tokens: dict[str, str]) -> None:
    """Raw SQL skips the region filter, so ASIA's user could read every region: refused,
    however the statement is written."""
    for sql in [
        "SELECT r_name FROM region",
        "SELECT c_name FROM customer JOIN nation ON c_nationkey = n_nationkey "
        "JOIN region ON n_regionkey = r_regionkey WHERE r_name = 'EUROPE'",
        "-- DO NOT PARSE\nSELECT 1 AS one",
    ]:
        query: dict[str, Any] = {"rewriteSql": None} if "DO NOT PARSE" in sql else {}
        job = run(tokens, "asia@example.com", sql, **query)
        assert (job["status"], job["error_type"]) == ("FAILED", "FORBIDDEN"), sql
        assert (
            "raw SQL is not allowed on a model whose access rules restrict you"
            in (job["error_message"])
        )
        assert "region.r_name" in job["error_message"]


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM region",
        "select 1 as one; delete from region",
        "WITH gone AS (DELETE FROM region RETURNING *) SELECT * FROM gone",
        "SELECT * FROM read_csv('/etc/passwd')",
        "COPY region TO '/tmp/assay-raw-sql-region.csv'",
    ],
)
def test_a_write_is_refused_with_a_clear_job_error(
    tokens: dict[str, str], tpch_path: Path, sql: str
) -> None:
    job = run(tokens, "all@example.com", sql)
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert job["error_message"].startswith("Raw SQL ")
    assert "not allowed" in job["error_message"] or "one statement" in job["error_message"]
    assert direct(tpch_path, "SELECT count(*) FROM region") == [(5,)]
    assert not Path("/tmp/assay-raw-sql-region.csv").exists()


def test_the_result_stops_at_50000_rows(tokens: dict[str, str]) -> None:
    job = run(tokens, "all@example.com", "SELECT l_orderkey, l_partkey FROM lineitem")
    assert rows(job).num_rows == 50_000
    assert job["summary"]["row_limit_reached"] is True
    assert job["summary"]["total_rows"] == 50_000


@pytest.mark.parametrize("result_type", ["csv", "json"])
def test_rendered_results_keep_the_databases_names(
    tokens: dict[str, str], tpch_path: Path, result_type: str
) -> None:
    sql = "SELECT r_regionkey AS KEY, r_name FROM region ORDER BY 1"
    body = {"query": {"modelId": MODEL_ID, "userEditedSQL": sql, "rewriteSql": False,
                      "fields": []}, "resultType": result_type}  # fmt: skip
    token = tokens["all@example.com"]
    answer = httpx.post(f"{tokens['url']}{RUN}", json=body, timeout=120,
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    expected = direct(tpch_path, sql)
    if result_type == "csv":
        lines = answer.text.strip().splitlines()
        assert lines[0] == '"KEY","r_name"' and len(lines) == 1 + len(expected)
    else:
        got = answer.json()
        assert [(r["KEY"], r["r_name"]) for r in got] == expected


# ---------------------------------------------------------------- column totals

BY_STATUS = (
    "SELECT o_orderstatus AS STATUS, count(*) AS order_count, sum(o_totalprice) AS revenue "
    "FROM orders GROUP BY 1 ORDER BY 1"
)


def test_omniframes_reads_the_totals_row_of_its_own_sql_job(
    tokens: dict[str, str], tpch_path: Path
) -> None:
    """The body omniframes builds for a raw SQL job with column totals (``Query.for_sql``;
    its DataFrame API leaves totals in the SQL), and its own normalization: the data rows
    equal DuckDB's, and ``keep_totals`` folds each ``__omni_summ`` sidecar into its column
    on the one totals row, which equals hand-written sums."""
    from omniframes.compile.querymodel import Query
    from omniframes.transport.normalize import normalize

    query = Query.for_sql(MODEL_ID, BY_STATUS, column_totals=("order_count", "revenue"))
    query.validate()
    wire = query.to_wire()
    assert wire["sqlSortsEnabled"] is True and wire["rewriteSql"] is False
    auth = {"Authorization": f"Bearer {tokens['all@example.com']}"}
    answer = httpx.post(f"{tokens['url']}{RUN}", json={"query": wire}, timeout=120, headers=auth)
    assert answer.status_code == 200, answer.text
    job = next(json.loads(x) for x in answer.text.splitlines() if '"job_id"' in x)
    table = rows(job)
    assert table.column_names == ["STATUS", "order_count", "order_count__omni_summ", "revenue",
                                  "revenue__omni_summ", "$omni_column_total_indicator"]  # fmt: skip
    assert list(job["summary"]["fields"]) == ["STATUS", "order_count", "revenue"]
    seen = normalize(table, job["summary"]["fields"], keep_totals=True)
    assert [tuple(r.values()) for r in seen.data.to_pylist()] == direct(tpch_path, BY_STATUS)
    assert seen.totals is not None and seen.total_row_types == ("column_total",)
    ((status, count, revenue),) = [tuple(r.values()) for r in seen.totals.to_pylist()]
    assert (status, count, revenue) == (
        None, *direct(tpch_path, "SELECT count(*), sum(o_totalprice) FROM orders")[0]
    )  # fmt: skip


@pytest.mark.parametrize("result_type", ["csv", "json"])
def test_rendered_totals_show_each_total_under_its_column(
    tokens: dict[str, str], tpch_path: Path, result_type: str
) -> None:
    body = {"query": {"modelId": MODEL_ID, "userEditedSQL": BY_STATUS, "rewriteSql": False,
                      "sqlSortsEnabled": True, "fields": [],
                      "column_totals": {"order_count": {"type": "aggregation"}}},
            "resultType": result_type}  # fmt: skip
    auth = {"Authorization": f"Bearer {tokens['all@example.com']}"}
    answer = httpx.post(f"{tokens['url']}{RUN}", json=body, timeout=120, headers=auth)
    assert answer.status_code == 200, answer.text
    ((orders,),) = direct(tpch_path, "SELECT count(*) FROM orders")
    statuses = len(direct(tpch_path, BY_STATUS))
    if result_type == "csv":
        lines = answer.text.strip().splitlines()
        assert lines[0] == '"STATUS","order_count","revenue"'
        assert len(lines) == 2 + statuses and lines[-1] == f",{orders},"
    else:
        got = answer.json()
        assert list(got[-1]) == ["STATUS", "order_count", "revenue"]
        assert got[-1] == {"STATUS": None, "order_count": orders, "revenue": None}
        assert len(got) == statuses + 1


def test_totals_without_sql_sorts_enabled_are_refused(tokens: dict[str, str]) -> None:
    job = run(tokens, "all@example.com", BY_STATUS,
              column_totals={"order_count": {"type": "aggregation"}})  # fmt: skip
    assert (job["status"], job["error_type"]) == ("FAILED", "PLAN")
    assert "only with sqlSortsEnabled: true" in job["error_message"]
