"""Imports go one way: semantic (pure) <- engines, results <- jobs <- ai <- server <- cli.
``outbound`` (where a user's URL may send the server) sits at the bottom beside ``errors``, and
so does ``counters`` (what every layer counts, for /metrics), and ``ids`` (the random ids
requests make)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"
ORDER = [
    "errors",
    "outbound",
    "counters",
    "ids",
    "client",
    "config",
    "semantic",
    "engines",
    "results",
    "demo",
    "jobs",
    "ai",
    "server",
    "cli",
]
# A layer may import from layers before it in ORDER, never after. The client comes right after
# errors: it may use nothing of the server side.
EXCEPTIONS = {("config", "errors")}


def _layer(module_path: Path) -> str:
    rel = module_path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("assay."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("assay."))
    return found


MODULES = sorted(p for p in SRC.rglob("*.py") if _layer(p) in ORDER)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(SRC)) for p in MODULES])
def test_imports_point_down_the_layers(path: Path) -> None:
    layer = _layer(path)
    for target in _imports(path):
        assert target in ORDER, f"{path}: unknown layer {target}"
        if target == layer or (layer, target) in EXCEPTIONS:
            continue
        assert ORDER.index(target) < ORDER.index(layer), f"{layer} must not import {target}"


def test_semantic_layer_does_no_io_beyond_files() -> None:
    banned = {"duckdb", "httpx", "fastapi", "uvicorn", "socket", "subprocess"}
    for path in (SRC / "semantic").rglob("*.py"):
        text = path.read_text()
        for name in banned:
            assert f"import {name}" not in text, f"{path} imports {name}"
