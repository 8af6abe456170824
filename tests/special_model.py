"""The TPC-H demo model with the special dimensions of
``tests/fixtures/models/special_dimensions`` merged into its views."""

from __future__ import annotations

import yaml

from assay.demo.tpch import tpch_model_dir
from assay.semantic.loader import build_model, read_model_files
from assay.semantic.model import SemanticModel
from tests.conftest import FIXTURES

SPECIAL = FIXTURES / "models" / "special_dimensions"


def special_model() -> SemanticModel:
    files = read_model_files(tpch_model_dir())
    for path in sorted(SPECIAL.glob("*.view.yaml")):
        name = path.name.removesuffix(".yaml")
        view = yaml.safe_load(files[name])
        view["dimensions"].update(yaml.safe_load(path.read_text())["dimensions"])
        files[name] = yaml.safe_dump(view, sort_keys=False)
    return build_model(files, name="tpch")
