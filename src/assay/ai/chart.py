"""An answer's chart, drawn by Vega-Lite: SVG for the chat page, PNG for ``/ai/jobs/{id}/vis``.

vl-convert carries Vega-Lite, Vega and a JavaScript engine in its wheel, so nothing is
fetched: charts render offline. Its engine starts on first use (about 0.6 s of CPU and 70 MB,
bench/README.md), so ``warm_up_soon`` starts it in a background thread when a server is first
asked a question, before anyone waits for a chart. Rendering blocks: call these from a thread
(``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import pyarrow as pa
import vl_convert

from assay.ai.chart_spec import Fields, Spec, Theme, chart_spec

#: The Vega-Lite version of every spec, pinned so an upgrade of vl-convert (which bundles
#: several) cannot change a chart unnoticed.
VEGA_LITE: Final = "5.21"

logger = logging.getLogger(__name__)
_warming = threading.Lock()
_warm = threading.Event()  # set once the engine has started (or failed to)
_asked = threading.Event()  # set once a warm-up thread is on its way


def render_svg(spec: Spec) -> str:
    return str(vl_convert.vegalite_to_svg(spec, vl_version=VEGA_LITE))


def render_png(spec: Spec, scale: float = 1.0) -> bytes:
    """Rasterised from the SVG: the same drawing, and cheaper than a second Vega run."""
    return bytes(vl_convert.svg_to_png(render_svg(spec), scale=scale))


def chart_svg(table: pa.Table, fields: Fields, theme: Theme = "light") -> str | None:
    """The chart of a result as an SVG document, or None when there is nothing to draw.
    ``fields`` is the result's ``summary.fields`` (keyed by column name) or the compiler's
    fields in column order; ``theme`` is ``"light"`` or ``"dark"``."""
    spec = chart_spec(table, fields, theme)
    return None if spec is None else render_svg(spec)


def chart_png(
    table: pa.Table, fields: Fields, theme: Theme = "light", scale: float = 1.0
) -> bytes | None:
    """The chart of a result as a PNG, or None when there is nothing to draw."""
    spec = chart_spec(table, fields, theme)
    return None if spec is None else render_png(spec, scale)


def warm_up() -> None:
    """Start vl-convert's engine (the first chart's cost), once."""
    with _warming:
        if _warm.is_set():
            return
        try:
            render_svg({"data": {"values": [{"v": 1}]}, "mark": "bar",
                        "encoding": {"x": {"field": "v", "type": "quantitative"}}})  # fmt: skip
        except Exception:  # the first real chart will say what is wrong, where it is asked for
            logger.exception("the chart renderer did not start")
        _warm.set()


def warm_up_soon() -> None:
    """``warm_up`` in a background thread, so neither a request nor shutdown waits for it."""
    if not _asked.is_set():
        _asked.set()
        threading.Thread(target=warm_up, name="chart-warm-up", daemon=True).start()
