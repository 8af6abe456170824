"""The ``assay`` command. The only layer that reads argv and env and configures logging."""

from __future__ import annotations

from rich.text import Text

from assay.cli import (  # noqa: F401 (the commands register themselves)
    ask_command,
    init_command,
    model_commands,
    query_command,
    server_commands,
    store_commands,
    user_commands,
)
from assay.cli.app import app, err
from assay.errors import AssayError


def main() -> None:
    try:
        app()
    except AssayError as exc:
        # One a command did not catch itself (e.g. a damaged job store met while opening it):
        # its message and exit code 1, never a traceback. soft_wrap: paths and commands in
        # the message must stay whole, to be pasted back.
        err.print(Text(f"error: {exc.message}", style="red"), soft_wrap=True)
        raise SystemExit(1) from None
