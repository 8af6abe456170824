"""The TPC-H demo model with fixture fields merged into its views: the special dimensions of
``tests/fixtures/models/special_dimensions``, the ``*_distinct_on`` measures of
``tests/fixtures/models/distinct_on`` and the ``level_of_detail`` measures of
``tests/fixtures/models/level_of_detail`` (its dimensions: ``level_of_detail_dimensions``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from assay.demo.tpch import tpch_model_dir
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

SPECIAL = FIXTURES / "models" / "special_dimensions"
DISTINCT_ON = FIXTURES / "models" / "distinct_on"
LEVEL_OF_DETAIL = FIXTURES / "models" / "level_of_detail"
LOD_DIMENSIONS = FIXTURES / "models" / "level_of_detail_dimensions"


def merged_model(folder: Path) -> SemanticModel:
    """The demo model with each ``<view>.view.yaml`` of ``folder``'s dimensions and measures
    added to the demo view of the same name."""
    files = read_model_files(tpch_model_dir())
    for path in sorted(folder.glob("*.view.yaml")):
        name = path.name.removesuffix(".yaml")
        view = yaml.safe_load(files[name])
        extra = yaml.safe_load(path.read_text())
        for kind in ("dimensions", "measures"):
            view.setdefault(kind, {}).update(extra.get(kind) or {})
        files[name] = yaml.safe_dump(view, sort_keys=False)
    return build_model(files, name="tpch")


def special_model() -> SemanticModel:
    return merged_model(SPECIAL)


def distinct_on_model() -> SemanticModel:
    return merged_model(DISTINCT_ON)


def lod_model() -> SemanticModel:
    return merged_model(LEVEL_OF_DETAIL)


def lod_dimension_model() -> SemanticModel:
    return merged_model(LOD_DIMENSIONS)
