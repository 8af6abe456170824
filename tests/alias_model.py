"""The TPC-H demo model with ``tests/fixtures/models/aliases`` added: nation joined twice
under ``join_to_view_as`` aliases (the buyer's and the seller's nation), region below one of
them, fields of nation that name their own view, and a topic that joins them all."""

from __future__ import annotations

import yaml

from assay.demo.tpch import tpch_model_dir
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

ALIASES = FIXTURES / "models" / "aliases"


def alias_model_files() -> dict[str, str]:
    files = read_model_files(tpch_model_dir())
    extra = yaml.safe_load((ALIASES / "relationships.yaml").read_text())
    relationships = yaml.safe_load(files["relationships"]) + extra
    files["relationships"] = yaml.safe_dump(relationships, sort_keys=False)
    nation = yaml.safe_load(files["nation.view"])
    for kind, fields in yaml.safe_load((ALIASES / "nation.view.yaml").read_text()).items():
        nation.setdefault(kind, {}).update(fields)
    files["nation.view"] = yaml.safe_dump(nation, sort_keys=False)
    files["trade.topic"] = (ALIASES / "trade.topic.yaml").read_text()
    return files


def alias_model() -> SemanticModel:
    return build_model(alias_model_files(), name="tpch")
