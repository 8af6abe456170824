"""Settings: defaults, then file, then ASSAY_* environment; bad input named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.config import (
    CLIENT_SETTINGS,
    SETTINGS,
    ClientSettings,
    Settings,
    load_client_settings,
    load_settings,
)
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


# ---------------------------------------------------------------------- the client's settings


def test_client_names_are_not_server_settings() -> None:
    """ASSAY_URL and ASSAY_API_KEY belong to `assay query` and `assay ask`: a server (or any
    command) started from the same shell accepts them and takes nothing from them."""
    env = {"ASSAY_URL": "http://10.0.0.5:9000", "ASSAY_API_KEY": "k1", "ASSAY_PORT": "8123"}
    s = load_settings(environ=env)
    assert s == Settings(port=8123)
    client = load_client_settings(env)
    assert (client.url, client.api_key) == ("http://10.0.0.5:9000", "k1")


def test_client_settings_default_to_unset() -> None:
    assert load_client_settings({"ASSAY_API_KEY": ""}) == ClientSettings()


@pytest.mark.parametrize(
    ("typo", "meant"), [("ASSAY_APIKEY", "ASSAY_API_KEY"), ("ASSAY_URI", "ASSAY_URL")]
)
def test_a_mistyped_client_name_is_refused_with_a_suggestion(typo: str, meant: str) -> None:
    for load in (lambda env: load_settings(environ=env), load_client_settings):
        with pytest.raises(ConfigError, match=f'Unknown setting {typo}. Did you mean "{meant}"'):
            load({typo: "x"})


def test_a_client_url_without_a_scheme_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"ASSAY_URL must be .* not 'localhost:8000'"):
        load_client_settings({"ASSAY_URL": "localhost:8000"})


def test_client_settings_are_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for setting in CLIENT_SETTINGS:
        assert f"`ASSAY_{setting.name.upper()}`" in readme, setting.name


def test_a_setting_of_a_few_words_takes_one_of_them(tmp_path: Path) -> None:
    assert load_settings(environ={"ASSAY_GZIP_ANSWERS": "Never "}).gzip_answers == "never"
    cfg = tmp_path / "assay.toml"
    cfg.write_text('gzip_answers = "always"\n')
    assert load_settings(file=cfg, environ={}).gzip_answers == "always"
    with pytest.raises(ConfigError, match="must be one of remote, always, never, not 'allways'"):
        load_settings(environ={"ASSAY_GZIP_ANSWERS": "allways"})
