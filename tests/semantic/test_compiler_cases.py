"""Data-driven compiler cases: each file in tests/fixtures/compiler/ is one case (see its
README). Every case that compiles is also rendered for every dialect and parsed back."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml

from assay import errors
from assay.demo.tpch import tpch_model_dir
from assay.semantic.compiler import DIALECTS, compile_query
from assay.semantic.loader import load_model
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

CASES = sorted((FIXTURES / "compiler").glob("*.yaml"))
COMPILING = [c for c in CASES if "error" not in yaml.safe_load(c.read_text())["expect"]]


@cache
def model_named(name: str) -> SemanticModel:
    return load_model(tpch_model_dir() if name == "tpch" else FIXTURES / name)


def _one_line(sql: str) -> str:
    return " ".join(sql.split())


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_compiler_case(case: Path) -> None:
    spec: dict[str, Any] = yaml.safe_load(case.read_text())
    model = model_named(spec["model"])
    expect: dict[str, Any] = spec["expect"]
    if "error" in expect:
        want = expect["error"]
        with pytest.raises(getattr(errors, want["class"])) as raised:
            compile_query(model, spec["query"])
        if "error_type" in want:
            assert raised.value.error_type == want["error_type"]
        for text in want.get("message_contains", []):
            assert text in raised.value.message
        return
    compiled = compile_query(model, spec["query"])
    sql = compiled.sql
    if "sql" in expect:
        assert sql == _one_line(expect["sql"])
    for text in expect.get("sql_contains", []):
        assert text in sql, f"{text!r} not in {sql}"
    for text in expect.get("sql_excludes", []):
        assert text not in sql, f"{text!r} in {sql}"
    checks = {
        "joined_views": list(compiled.joined_views),
        "deduplicated_views": list(compiled.deduplicated_views),
        "missing_fields": list(compiled.missing_fields),
        "columns": compiled.columns,
    }
    for key, got in checks.items():
        if key in expect:
            assert got == expect[key], key
    if "limit" in expect:
        assert compiled.limit == expect["limit"]
    metas = {f.fully_qualified_name: f.to_dict() for f in compiled.fields}
    for name, wanted in expect.get("fields", {}).items():
        assert {k: metas[name].get(k) for k in wanted} == wanted, name


@pytest.mark.parametrize("case", COMPILING, ids=[c.stem for c in COMPILING])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_case_renders_valid_sql_for_every_dialect(case: Path, dialect: str) -> None:
    spec: dict[str, Any] = yaml.safe_load(case.read_text())
    compiled = compile_query(model_named(spec["model"]), spec["query"], dialect=dialect)
    assert compiled.dialect == dialect
    parsed = sqlglot.parse_one(compiled.sql, read=dialect)
    assert parsed is not None
    assert len(list(parsed.find_all(sqlglot.exp.Select))) >= 1
