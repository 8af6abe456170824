"""Settings: defaults, then file, then ASSAY_* environment; bad input named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.config import SETTINGS, Settings, load_settings
from assay.errors import ConfigError


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    assert s.default_row_limit == 1000
    assert s.resolved_duckdb_path == Path(".assay") / "tpch.duckdb"
    assert (s.run_wait_seconds, s.wait_seconds, s.rate_limit_per_minute) == (10.0, 30.0, 60)


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "assay.toml"
    cfg.write_text('demo_scale = 1.0\ndefault_row_limit = 50\nhome = "/srv/assay"\n')
    s = load_settings(file=cfg, environ={"ASSAY_DEFAULT_ROW_LIMIT": "75"}, duckdb_threads=2)
    assert (s.demo_scale, s.default_row_limit, s.duckdb_threads) == (1.0, 75, 2)
    assert s.home == Path("/srv/assay")


def test_config_file_from_env(tmp_path: Path) -> None:
    cfg = tmp_path / "assay.toml"
    cfg.write_text("demo_scale = 0.5\n")
    assert load_settings(environ={"ASSAY_CONFIG": str(cfg)}).demo_scale == 0.5


def test_unknown_setting_in_file_suggests(tmp_path: Path) -> None:
    cfg = tmp_path / "assay.toml"
    cfg.write_text("default_row_limt = 5\n")
    with pytest.raises(ConfigError, match='Did you mean "default_row_limit"'):
        load_settings(file=cfg, environ={})


def test_bad_value_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"'default_row_limit'.*'lots'"):
        load_settings(environ={"ASSAY_DEFAULT_ROW_LIMIT": "lots"})


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read settings file"):
        load_settings(file=tmp_path / "missing.toml", environ={})


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in readme, setting.name
        assert f"`ASSAY_{setting.name.upper()}`" in readme, setting.name
