"""Settings: one frozen object, built once from defaults, then a TOML file, then ASSAY_* env.

Nothing else in Assay reads the environment; the CLI builds the settings and passes them down.

The command-line client (``assay query``, ``assay ask``) has settings of its own, apart from
the server's: which server to call and the key to send. They share the ``ASSAY_`` prefix, so
one shell can serve and query; each loader knows the other's names, skips them and still
refuses (with a suggestion) a name that is neither's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, did_you_mean


@dataclass(frozen=True, slots=True)
class Setting:
    """One documented setting: its name is the Settings attribute and the env suffix."""

    name: str
    help: str


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Relative paths are resolved against the working directory."""

    home: Path = Path(".assay")
    duckdb_path: Path | None = None
    models_dir: Path | None = None
    demo_scale: float = 0.1
    default_row_limit: int = 1000
    duckdb_threads: int = 0
    host: str = "127.0.0.1"
    port: int = 8000
    run_wait_seconds: float = 10.0
    wait_seconds: float = 30.0
    rate_limit_per_minute: int = 60
    workers: int = 4
    cache_ttl_seconds: int = 3600
    result_retention_hours: float = 24.0
    ai_result_retention_days: float = 14.0
    public_url: str | None = None
    ai_planner: str = "builtin"
    ai_base_url: str | None = None
    ai_model: str | None = None
    ai_api_key: str | None = None
    #: named database connections (TOML table, or JSON in ASSAY_CONNECTIONS): name -> URL
    connections: Mapping[str, str] = field(default_factory=dict)
    #: models to serve, each {"folder": ..., "connection": <a name in connections>}
    models: tuple[Mapping[str, str], ...] = ()
    #: where jobs, keys, cached results and rate limits live: empty for SQLite in home, or a
    #: postgresql:// URL that several replicas share
    job_store: str = ""
    job_store_schema: str = "assay"
    lease_seconds: float = 30.0
    #: replicas: how long a replica reuses a key's sign-in or a cache entry it read
    shared_store_memory_seconds: float = 2.0
    #: bounds on what one request or one key may ask of the server
    max_body_bytes: int = 4 * 1024 * 1024
    client_timeout_seconds: float = 30.0
    max_waits_per_key: int = 16
    max_jobs_per_key: int = 64
    max_result_bytes: int = 1024 * 1024 * 1024
    #: hosts webhooks may reach besides public addresses (comma-separated names or addresses)
    webhook_allowed_hosts: str = ""
    #: when NDJSON answers are gzipped for clients that accept gzip: remote, always or never
    gzip_answers: str = "remote"
    #: the codec of large results' Arrow buffers (IPC body compression): zstd, lz4 or none
    arrow_compression: str = "zstd"
    #: who may read /metrics (auto, on, off) and the bearer token a scrape must send
    metrics: str = "auto"
    metrics_token: str | None = None
    #: log lines as text for a person, or as JSON (one object a line) for a collector
    log_format: str = "text"
    #: OpenTelemetry traces: the OTLP/HTTP collector's base URL (empty: no traces) and the
    #: service name they carry
    otel_endpoint: str = ""
    otel_service_name: str = "assay"
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def arrow_codec(self) -> str | None:
        """The codec result files are compressed with; None for ``none``."""
        return None if self.arrow_compression == "none" else self.arrow_compression

    @property
    def resolved_duckdb_path(self) -> Path:
        """The DuckDB file: the setting, else the demo database in the home folder."""
        return self.duckdb_path or self.home / "tpch.duckdb"

    @property
    def job_store_path(self) -> Path:
        return self.home / "assay.sqlite"

    @property
    def results_dir(self) -> Path:
        return self.home / "results"

    @property
    def resolved_models_dir(self) -> Path | None:
        """The model folder: the setting, else ``home/models/tpch`` when the demo put it there."""
        if self.models_dir is not None:
            return self.models_dir
        demo = self.home / "models" / "tpch"
        return demo if demo.is_dir() else None


SETTINGS: tuple[Setting, ...] = (
    Setting("home", "Folder for Assay's own files: demo data, model, job store, results."),
    Setting("duckdb_path", "DuckDB database file to query; default: the demo database in home."),
    Setting("models_dir", "Folder of Omni-format model YAML; default: home's demo model."),
    Setting("demo_scale", "TPC-H scale factor for the generated demo data (1 = about 1 GB)."),
    Setting("default_row_limit", "Rows a query returns when it gives no limit (Omni: 1000)."),
    Setting("duckdb_threads", "DuckDB worker threads; 0 lets DuckDB choose."),
    Setting("host", "Address the server listens on."),
    Setting("port", "Port the server listens on."),
    Setting(
        "run_wait_seconds",
        "How long /query/run waits for jobs before handing back ids (0: at once).",
    ),
    Setting("wait_seconds", "How long /query/wait long-polls before answering with what is done."),
    Setting(
        "rate_limit_per_minute", "Requests a key may make per minute (Omni: 60); 0 turns it off."
    ),
    Setting("workers", "Queries run at once per engine; more wait their turn."),
    Setting("cache_ttl_seconds", "How long a query result is reused for the same SQL and model."),
    Setting("result_retention_hours", "How long job results are kept before they are deleted."),
    Setting("ai_result_retention_days", "How long AI job results are kept (Omni: 14 days)."),
    Setting("public_url", "The server's address as users reach it (for omniChatUrl links)."),
    Setting("ai_planner", "Who plans AI answers: builtin (offline), openai or anthropic."),
    Setting("ai_base_url", "The LLM API's address (OpenAI-compatible servers: vLLM, Ollama...)."),
    Setting("ai_model", "The LLM model name, required when ai_planner is not builtin."),
    Setting("ai_api_key", "The LLM API key (prefer ASSAY_AI_API_KEY to a file)."),
    Setting("connections", "Named database connections: name -> URL (duckdb:///path)."),
    Setting("models", "Models to serve: a list of {folder, connection}; default: one model."),
    Setting("job_store", "Job store: empty for SQLite in home, or a postgresql:// URL (replicas)."),
    Setting("job_store_schema", "PostgreSQL schema of the shared job store's tables."),
    Setting("lease_seconds", "Replicas: a job whose replica stops renewing is re-run after this."),
    Setting(
        "shared_store_memory_seconds",
        "Replicas: how long one reuses a key's sign-in or a cache entry it read (the longest a "
        "revocation or a change made on another replica takes to reach it); 0: never.",
    ),
    Setting("max_body_bytes", "Largest request body accepted; larger ones are refused with 413."),
    Setting(
        "client_timeout_seconds",
        "How long a client may take to send a request's headers and body before it is dropped.",
    ),
    Setting("max_waits_per_key", "Long-polls (/query/wait) one key may hold open at once (429)."),
    Setting("max_jobs_per_key", "Queries one key may have queued or running at once (429)."),
    Setting(
        "max_result_bytes", "Largest result one query may write; beyond it the job fails clearly."
    ),
    Setting(
        "webhook_allowed_hosts",
        "Hosts webhooks may reach besides public addresses (comma-separated names or IPs).",
    ),
    Setting(
        "gzip_answers",
        "Gzip query answers for clients that accept it: remote (not on loopback), always, never.",
    ),
    Setting(
        "arrow_compression",
        "Codec of large results' Arrow buffers: zstd, lz4, or none (for a reader without them).",
    ),
    Setting(
        "metrics",
        "Who may read /metrics: auto (anyone on loopback, else metrics_token), on, or off.",
    ),
    Setting("metrics_token", "Bearer token a /metrics scrape must send (prefer the env)."),
    Setting("log_format", "Log lines as text (for a person) or json (one object a line)."),
    Setting(
        "otel_endpoint",
        "OTLP/HTTP collector for OpenTelemetry traces (http://host:4318); empty: no traces. "
        "Needs the otel extra.",
    ),
    Setting("otel_service_name", "The service.name traces carry."),
)

_FIELDS = {f.name: f for f in dataclasses.fields(Settings) if f.name != "extra"}


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the command-line client needs to call a server. Only the environment sets them:
    a server's settings file is not the place for a personal API key."""

    url: str | None = None
    api_key: str | None = None


CLIENT_SETTINGS: tuple[Setting, ...] = (
    Setting("url", "The server `assay query` and `assay ask` call (http:// or https://)."),
    Setting("api_key", "The API key `assay query` and `assay ask` send."),
)
_CLIENT_ENV = {f"ASSAY_{s.name.upper()}": s.name for s in CLIENT_SETTINGS}
_SERVER_ENV = {f"ASSAY_{name.upper()}" for name in _FIELDS} | {"ASSAY_CONFIG"}


def _refuse_unknown_env(env: Mapping[str, str]) -> None:
    """A mistyped ``ASSAY_*`` name must not pass silently: it would leave a default in force."""
    for key in env:
        if key.startswith("ASSAY_") and key not in _SERVER_ENV and key not in _CLIENT_ENV:
            known = sorted(_SERVER_ENV | _CLIENT_ENV.keys())
            raise ConfigError(f"Unknown setting {key}.{did_you_mean(key, known)}")


def load_client_settings(environ: Mapping[str, str] | None = None) -> ClientSettings:
    """The client's settings from ``ASSAY_URL`` and ``ASSAY_API_KEY`` (empty means unset)."""
    env = os.environ if environ is None else environ
    _refuse_unknown_env(env)
    values = {name: env.get(key) or None for key, name in _CLIENT_ENV.items()}
    url = values["url"]
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"ASSAY_URL must be the server's http:// or https:// address, not {url!r}; "
            f"for example http://127.0.0.1:8000"
        )
    return ClientSettings(**values)


def _coerce(name: str, raw: Any) -> Any:
    """Turn a file or env value into the field's type, naming the setting when it fails."""
    kind = str(_FIELDS[name].type)
    if name in ("connections", "models"):
        return _structured(name, raw)
    if name in CHOICES:
        return _chosen(name, raw)
    try:
        if raw is None or (isinstance(raw, str) and raw == "" and "None" in kind):
            return None
        if "Path" in kind:
            return Path(str(raw)).expanduser()
        if kind == "float":
            return float(raw)
        if kind == "str":
            return str(raw)
        if kind == "int":
            return int(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Setting {name!r} has an invalid value {raw!r}: {exc}") from exc
    return raw


#: settings that take one of a few words
CHOICES: dict[str, tuple[str, ...]] = {
    "gzip_answers": ("remote", "always", "never"),
    "arrow_compression": ("zstd", "lz4", "none"),
}


def _chosen(name: str, raw: Any) -> str:
    word = str(raw).strip().lower()
    if word not in CHOICES[name]:
        choices = ", ".join(CHOICES[name])
        raise ConfigError(f"Setting {name!r} must be one of {choices}, not {raw!r}."
                          f"{did_you_mean(word, CHOICES[name])}")  # fmt: skip
    return word


def _structured(name: str, raw: Any) -> Any:
    """``connections`` and ``models`` come as TOML tables, or as JSON text from the env."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"Setting {name!r} must be JSON in the environment: {exc}") from exc
    if name == "connections":
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise ConfigError("Setting 'connections' must map names to URLs")
        return dict(raw)
    if not isinstance(raw, list) or not all(
        isinstance(m, dict)
        and isinstance(m.get("folder"), str)
        and isinstance(m.get("connection"), str)
        for m in raw
    ):
        raise ConfigError("Setting 'models' must be a list of {folder, connection}")
    return tuple(dict(m) for m in raw)


def load_settings(
    *, file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the settings: defaults, then ``file`` (TOML), then ``ASSAY_*`` env, then overrides."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = file or (Path(env["ASSAY_CONFIG"]) if env.get("ASSAY_CONFIG") else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read settings file {path}: {exc}") from exc
        for key, raw in data.items():
            if key not in _FIELDS:
                raise ConfigError(f"Unknown setting {key!r} in {path}.{did_you_mean(key, _FIELDS)}")
            values[key] = _coerce(key, raw)
    _refuse_unknown_env(env)
    for key, raw in env.items():
        if key in _SERVER_ENV and key != "ASSAY_CONFIG":  # the client's names are not ours
            name = key.removeprefix("ASSAY_").lower()
            values[name] = _coerce(name, raw)
    for key, raw in overrides.items():
        if raw is not None:
            values[key] = _coerce(key, raw)
    return Settings(**values)
