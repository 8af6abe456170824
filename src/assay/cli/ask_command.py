"""``assay ask``: a question in, a markdown answer out, through a running server's AI jobs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from assay.cli.app import app, err, out, server_and_key, settings_of, unreachable


@app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in plain words.")],
    model: Annotated[str, typer.Option(help="Model name or id.")] = "tpch",
    conversation: Annotated[
        str | None, typer.Option(help="Conversation id, to follow up on an earlier answer.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="Server URL (default: ASSAY_URL or the configured host and port)."),
    ] = None,
    key: Annotated[str | None, typer.Option(help="API key (default: ASSAY_API_KEY).")] = None,
    show_queries: Annotated[
        bool, typer.Option("--queries", help="Also print the semantic queries it ran.")
    ] = False,
) -> None:
    """Ask a question; shows progress, then prints the answer."""
    base, token = server_and_key(settings_of(ctx), url, key)
    import httpx

    from assay.client import AIClient, QueryFailed
    from assay.semantic.model import model_id_for

    model_id = model if len(model) == 36 and model.count("-") == 4 else model_id_for(model)
    try:
        with AIClient(base, token) as client, out.status("Thinking ...", spinner="dots") as spin:
            status, result = client.ask(
                question, model_id, conversation,
                on_progress=lambda message: spin.update(f"{message} ..."),
            )  # fmt: skip
    except QueryFailed as exc:
        err.print(Text(str(exc), style="red"))
        raise typer.Exit(1) from exc
    except httpx.TransportError as exc:
        raise unreachable(base, exc) from exc
    if show_queries:
        import json

        for action in result.get("actions", []):
            if action.get("type") == "generate_query":
                out.print(Text(json.dumps(action["result"]["query"], indent=2), style="dim"))
    from rich.markdown import Markdown  # 30 ms to import: only once there is an answer

    out.print(Markdown(result.get("message") or ""))
    err.print(Text(f"conversation: {status['conversationId']}  (--conversation to follow up)",
                   style="dim"))  # fmt: skip
