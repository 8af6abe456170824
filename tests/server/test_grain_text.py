"""Date grains as text where people read them: ``resultType`` csv, json and xlsx, and the
table `assay query` prints, on the demo model through a real server. The NDJSON answer's
Arrow result keeps typed dates: Omni's clients decode them."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
import subprocess
import zipfile
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.ipc

from assay.engines import DuckDBEngine
from tests.server.conftest import ASSAY, MODEL_ID, Server

RUN = "/api/v1/query/run"
GRAINS = ["year", "quarter", "month", "week", "date"]
FIELDS = [f"orders.o_orderdate[{g}]" for g in GRAINS]
# 8 March 1995 was a Wednesday: its (ISO) week began on Monday the 6th.
WANT = ["1995", "1995-Q1", "1995-03", "1995-03-06", "1995-03-08"]
ONE_DAY: dict[str, Any] = {
    "modelId": MODEL_ID,
    "join_paths_from_topic_name": "orders",
    "fields": [*FIELDS, "orders.count"],
    "filters": {"orders.o_orderdate": {"type": "date", "kind": "BETWEEN",
                                       "left_side": "1995-03-08", "right_side": "1995-03-09"}},
}  # fmt: skip


def test_csv_shows_each_grain_as_text(api: httpx.Client, tpch_engine: DuckDBEngine) -> None:
    response = api.post(RUN, json={"query": ONE_DAY, "resultType": "csv"})
    assert response.status_code == 200, response.text
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    assert header == [*FIELDS, "orders.count"]
    count = tpch_engine.execute("SELECT count(*) FROM orders WHERE o_orderdate = '1995-03-08'")
    assert rows == [[*WANT, str(count.column(0)[0].as_py())]]


def test_json_shows_each_grain_as_text(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": ONE_DAY, "resultType": "json"})
    assert response.status_code == 200, response.text
    (row,) = response.json()
    labels = ["Order Date Year", "Order Date Quarter", "Order Date Month", "Order Date Week",
              "Order Date Date"]  # fmt: skip
    assert [row[label] for label in labels] == WANT


def test_formatted_csv_shows_grains_and_formats(api: httpx.Client) -> None:
    query = {**ONE_DAY, "fields": ["orders.o_orderdate[month]", "orders.sum_totalprice"]}
    response = api.post(RUN, json={"query": query, "resultType": "csv", "formatResults": True})
    assert response.status_code == 200, response.text
    _, row = list(csv.reader(io.StringIO(response.text)))
    assert row[0] == "1995-03"
    assert re.fullmatch(r"\$[\d,]+\.\d\d", row[1]), row


def test_xlsx_holds_grains_as_text(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": ONE_DAY, "resultType": "xlsx"})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as book:
        strings = book.read("xl/sharedStrings.xml").decode()
    texts = re.findall(r"<t[^>]*>([^<]*)</t>", strings)
    assert all(want in texts for want in WANT), texts


def test_the_arrow_result_keeps_typed_dates(api: httpx.Client) -> None:
    response = api.post(RUN, json={"query": ONE_DAY})
    line = next(json.loads(t) for t in response.text.splitlines() if '"result"' in t)
    table = pa.ipc.open_stream(io.BytesIO(base64.b64decode(line["result"]))).read_all()
    year = table.column("orders.o_orderdate[year]")
    assert pa.types.is_timestamp(year.type) or pa.types.is_date(year.type), year.type
    first = year[0].as_py()
    assert (first.year, first.month, first.day) == (1995, 1, 1)
    assert isinstance(first, dt.date)


def test_assay_query_prints_grains_as_text(server: Server, org_key: str) -> None:
    """The terminal table and --format csv, from the real command against the real server,
    its address and key given the way the README says: ASSAY_URL and ASSAY_API_KEY."""
    env = {**server._env(), "ASSAY_URL": server.url, "ASSAY_API_KEY": org_key,
           "COLUMNS": "250"}  # fmt: skip
    shown = subprocess.run([ASSAY, "query", json.dumps(ONE_DAY)], env=env, capture_output=True,
                           text=True, timeout=120, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    cells = [c.strip() for c in shown.stdout.splitlines()[-2].strip("│ ").split("│")]
    assert cells[:5] == WANT, shown.stdout
    assert "00:00:00" not in shown.stdout
    as_csv = subprocess.run([ASSAY, "query", json.dumps(ONE_DAY), "--format", "csv"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert as_csv.returncode == 0, as_csv.stderr
    _, row = list(csv.reader(io.StringIO(as_csv.stdout)))
    assert row[:5] == WANT
