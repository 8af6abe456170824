"""OmniSQL over the API of a real `assay serve` with the governed tpch model: a user's
statement returns only their rows whatever its WHERE says, a role that may not write SQL is
refused, a bad reference is a job error naming it, and the SQL's LIMIT (not the query
object's) bounds the answer.
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

from tests.server.conftest import MODEL_ID
from tests.server.governed_server import Governed, start_governed

pytestmark = pytest.mark.tpch
BY_REGION = (
    "SELECT ${region.r_name}, COUNT(*) AS n FROM ${customer} "
    "WHERE ${region.r_name} = 'EUROPE' OR 1 = 1 GROUP BY 1 ORDER BY 1"
)
HAND_SQL = """
SELECT r.r_name, COUNT(*) FROM customer c JOIN nation n ON c.c_nationkey = n.n_nationkey
JOIN region r ON n.n_regionkey = r.r_regionkey
WHERE c.c_acctbal >= -1000 {where} GROUP BY r.r_name ORDER BY r.r_name
"""


@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Governed]:
    governed = start_governed(tmp_path_factory.mktemp("governed"), tpch_path)
    yield governed
    governed.server.stop()


def by_hand(tpch_path: Path, where: str = "") -> list[tuple[Any, ...]]:
    with duckdb.connect(str(tpch_path), read_only=True) as conn:
        return [tuple(r) for r in conn.execute(HAND_SQL.format(where=where)).fetchall()]


def run(client: httpx.Client, sql: str, **query: Any) -> httpx.Response:
    body = {"modelId": MODEL_ID, "table": "", "fields": [], "userEditedSQL": sql, **query}
    return client.post("/api/v1/query/run", json={"query": body})


def job(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    lines = [json.loads(x) for x in response.text.splitlines() if x.strip()]
    return next(x for x in lines if "job_id" in x)


def rows(line: dict[str, Any]) -> list[tuple[Any, ...]]:
    assert line["status"] == "COMPLETE", line
    table = pa.ipc.open_stream(base64.b64decode(line["result"])).read_all()
    return [tuple(row.values()) for row in table.to_pylist()]


def test_a_users_statement_returns_only_their_rows(gov: Governed, tpch_path: Path) -> None:
    with gov.client("ann@example.com") as ann:
        line = job(run(ann, BY_REGION))
    assert rows(line) == by_hand(tpch_path, "AND r.r_name = 'ASIA'")
    summary = line["summary"]
    assert list(summary["fields"]) == ["region.r_name", "customer.n"]
    n = summary["fields"]["customer.n"]
    assert (n["field_name"], n["view_name"], n["is_dimension"]) == ("n", "customer", False)
    assert n["data_type"]  # from the result's Arrow schema
    assert summary["omni_sql_parse_failed"] is False and summary["missing_fields"] == []
    assert "Failed to plan query" not in summary["display_sql"]
    assert "region.r_name = 'ASIA'" in summary["display_sql"]


def test_the_organization_admin_sees_every_region(gov: Governed, tpch_path: Path) -> None:
    with gov.client() as org:
        assert rows(job(run(org, BY_REGION))) == by_hand(tpch_path)


def test_a_role_that_may_not_write_sql_is_refused(gov: Governed) -> None:
    with gov.client("eve@example.com") as eve:
        refused = run(eve, BY_REGION)
    assert refused.status_code == 403, refused.text
    assert "manually written SQL" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT ${customer.c_nmae} FROM ${customer} GROUP BY 1",
         'No such field "customer.c_nmae". Did you mean "customer.c_name"'),
        ("SELECT ${region.r_name} FROM ${cutsomer}", 'No such view "cutsomer"'),
        ("SELECT c_acctbal AS b FROM ${customer}", 'column "c_acctbal" is not a field reference'),
        ("SELECT COUNT(*) AS n FROM customer", "FROM must name a topic or view"),
        ("SELECT COUNT(*) AS n FROM ${customer} UNION ALL SELECT COUNT(*) AS n FROM "
         "${customer}", "UNION is not supported"),
        ("DELETE FROM ${customer}", "DELETE statements are refused"),
    ],
)  # fmt: skip
def test_a_refused_statement_is_a_job_error_naming_the_problem(
    gov: Governed, sql: str, message: str
) -> None:
    with gov.client("ann@example.com") as ann:
        line = job(run(ann, sql))
    assert line["status"] == "FAILED" and message in line["error_message"], line


def test_the_sql_limit_bounds_the_answer_not_the_query_limit(gov: Governed) -> None:
    by_region = "SELECT ${region.r_name}, COUNT(*) AS n FROM ${customer} GROUP BY 1 ORDER BY 1"
    with gov.client() as org:
        cut = job(run(org, by_region + " LIMIT 3", limit=1))
        whole = job(run(org, by_region, limit=1))
    assert len(rows(cut)) == 3 and cut["summary"].get("row_limit_reached") is True
    assert len(rows(whole)) == 5 and not whole["summary"].get("row_limit_reached")


def test_result_types_render_omnisql_columns(gov: Governed, tpch_path: Path) -> None:
    body = {"modelId": MODEL_ID, "fields": [], "userEditedSQL": BY_REGION}
    with gov.client("ann@example.com") as ann:
        as_json = ann.post("/api/v1/query/run", json={"query": body, "resultType": "json"})
        as_csv = ann.post("/api/v1/query/run", json={"query": body, "resultType": "csv"})
    assert as_json.status_code == 200, as_json.text
    ((region, count),) = by_hand(tpch_path, "AND r.r_name = 'ASIA'")
    (row,) = as_json.json()
    assert list(row.values()) == [region, count]
    assert as_csv.status_code == 200
    assert as_csv.text.splitlines()[1:] == [f'"{region}",{count}']
