"""The server's log lines: text for a person at a terminal, or JSON (one object a line) for a
log collector, chosen by ``log_format`` / ``assay serve --log-format``.

Records carry their structured fields in ``extra={"fields": {...}}`` (the request and job
lines do: ``observe`` and ``jobs.runner``); JSON puts them at the top level of the object,
text appends them as ``key=value``.

No line carries a secret, whatever a message was given: an API key (``assay_org_...``,
``assay_pat_...``), a bearer token, or the password in a connection URL is masked in the
message, the fields and the traceback alike. Code never logs them knowingly; this is the
net under a mistake (a driver's error that quotes its URL, say)."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from assay.errors import ConfigError

FORMATS = ("text", "json")
_SECRETS = (
    # the password of scheme://user:password@host
    (re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@]+@"), r"\g<keep>***@"),
    (re.compile(r"\bassay_(?P<kind>org|pat)_[A-Za-z0-9_-]+"), r"assay_\g<kind>_***"),
    (re.compile(r"(?i)\b(?P<keep>bearer\s+)[^\s\"',]+"), r"\g<keep>***"),
)


def scrub(text: str) -> str:
    lowered = text.lower()
    if "://" not in text and "assay_" not in text and "bearer" not in lowered:
        return text  # nothing shaped like a secret: skip the patterns (most lines)
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update((k, _scrubbed(v)) for k, v in fields.items() if k not in line)
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            shown = " ".join(f"{k}={v}" for k, v in fields.items()
                             if v is not None and k != "event")  # fmt: skip
            text = f"{text} [{shown}]" if shown else text
        return scrub(text)


def configure_logging(log_format: str) -> None:
    """Send Assay's (and uvicorn's) log lines to stderr in the chosen format. (Written where
    they are logged: a writer thread of their own made requests slower, not faster, by taking
    the interpreter's lock in the middle of them.)"""
    chosen = log_format.strip().lower()
    if chosen not in FORMATS:
        raise ConfigError(f"log_format must be text or json, not {log_format!r}")
    # No line shows the caller's file, thread or process: the records need not look them up
    # (the logging HOWTO's "Optimization"), a third of a line's cost on a request's path.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
