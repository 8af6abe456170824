"""The ``assay`` command. The only layer that reads argv and env and configures logging."""

from __future__ import annotations

from assay.cli import (  # noqa: F401 (the commands register themselves)
    ask_command,
    init_command,
    model_commands,
    query_command,
    server_commands,
    user_commands,
)
from assay.cli.app import app


def main() -> None:
    app()
