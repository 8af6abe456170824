"""The assay command, run in process through typer's runner on the real demo database."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from assay.cli.app import DEMO_QUERY, app
from assay.cli.main import main  # noqa: F401 (registers the commands)
from tests.conftest import FIXTURES

runner = CliRunner()


def test_validate_accepts_the_demo_model() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "ok model tpch" in result.output


def test_validate_lists_every_issue_and_fails() -> None:
    folder = FIXTURES / "models" / "invalid" / "several_errors_in_several_files"
    result = runner.invoke(app, ["validate", str(folder)])
    assert result.exit_code == 1
    assert result.output.count("error:") >= 3


def test_compile_prints_sql_for_a_dialect() -> None:
    query = json.dumps(
        {
            "join_paths_from_topic_name": "orders",
            "fields": ["orders.o_orderdate[month]", "orders.count"],
        }
    )
    result = runner.invoke(app, ["compile", query, "--dialect", "postgres"])
    assert result.exit_code == 0, result.output
    assert "DATE_TRUNC('MONTH', orders.o_orderdate)" in result.output
    assert '"orders.o_orderdate[month]"' in result.output


def test_compile_reports_a_plan_error_with_suggestion() -> None:
    result = runner.invoke(
        app, ["compile", '{"join_paths_from_topic_name": "orders", "fields": ["orders.cont"]}']
    )
    assert result.exit_code == 1
    assert 'Did you mean "orders.count"' in result.output


def test_compile_reads_a_query_file_and_run_body(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(
        json.dumps({"query": {"join_paths_from_topic_name": "orders", "fields": ["orders.count"]}})
    )
    result = runner.invoke(app, ["compile", f"@{path}"])
    assert result.exit_code == 0, result.output
    assert "COUNT(*)" in result.output


def test_query_runs_on_the_demo_database(tpch_path: Path) -> None:
    query = json.dumps(
        {
            "join_paths_from_topic_name": "customer",
            "fields": ["customer.c_mktsegment", "customer.count"],
            "sorts": [{"column_name": "customer.c_mktsegment"}],
        }
    )
    result = runner.invoke(app, ["query", query, "--local", "--database", str(tpch_path)])
    assert result.exit_code == 0, result.output
    assert "AUTOMOBILE" in result.output and "customer.c_mktsegment" in result.output


def test_demo_query_prints_bracketed_field_names(tpch_path: Path) -> None:
    """Field names like orders.o_orderdate[year] must survive the terminal renderer."""
    result = runner.invoke(
        app, ["query", json.dumps(DEMO_QUERY), "--local", "--database", str(tpch_path)]
    )
    assert result.exit_code == 0, result.output
    assert "orders.o_orderdate[year]" in result.output


def test_bad_json_is_a_usage_error() -> None:
    result = runner.invoke(app, ["compile", "{not json"])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_unknown_setting_in_env_is_refused() -> None:
    result = runner.invoke(app, ["validate"], env={"ASSAY_DEMO_SCAEL": "1"})
    assert result.exit_code == 2
    assert "ASSAY_DEMO_SCALE" in result.output


def test_validate_against_the_database_reports_missing_columns(
    tmp_path: Path, tpch_path: Path
) -> None:
    from assay.demo.tpch import tpch_model_dir

    folder = tmp_path / "model"
    folder.mkdir()
    for source in tpch_model_dir().iterdir():
        (folder / source.name).write_text(source.read_text())
    view = folder / "orders.view.yaml"
    view.write_text(view.read_text().replace("  o_clerk:", "  o_clerk:\n    sql: o_clerc", 1))
    result = runner.invoke(app, ["validate", str(folder), "--database", str(tpch_path)])
    assert result.exit_code == 0, result.output  # a warning does not refuse the model
    assert "warning" in result.output and "'o_clerc' does not exist" in result.output


def test_init_writes_a_model_that_answers_queries(tmp_path: Path) -> None:
    """From a database to an answered query: init, then query the generated model."""
    import duckdb

    db = tmp_path / "shop.duckdb"
    with duckdb.connect(str(db)) as conn:
        conn.execute(
            "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR);"
            "CREATE TABLE orders (id INTEGER PRIMARY KEY,"
            " customer_id INTEGER REFERENCES customers(id), amount DECIMAL(10,2), placed DATE);"
            "INSERT INTO customers VALUES (1, 'ann'), (2, 'bob');"
            "INSERT INTO orders VALUES (10, 1, 5.00, DATE '2024-01-02'),"
            " (11, 1, 7.00, DATE '2024-02-03'), (12, 2, 1.50, DATE '2024-02-04');"
        )
    folder = tmp_path / "shop"
    made = runner.invoke(app, ["init", "--connection", f"duckdb:///{db}", "--out", str(folder)])
    assert made.exit_code == 0, made.output
    assert "1 relationships" in made.output.replace("\n", " ")
    query = {
        "join_paths_from_topic_name": "orders",
        "fields": ["customers.name", "orders.sum_amount"],
        "sorts": [{"column_name": "customers.name"}],
    }
    result = runner.invoke(
        app,
        [
            "query",
            json.dumps(query),
            "--local",
            "--model",
            str(folder),
            "--database",
            str(db),
            "--format",
            "csv",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == ['"ann",12.00', '"bob",1.50']  # DECIMAL(38,2) sums
    again = runner.invoke(app, ["init", "--connection", str(db), "--out", str(folder)])
    assert again.exit_code == 1 and "--overwrite" in again.output
