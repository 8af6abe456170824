"""The chat page in a real headless Chromium (Debian's, driven by Playwright): sign in, ask on
the page, read the answer and check its numbers against SQL, ask a follow-up, cancel a slow
question, page through rows, another user's 404, sign out, an expired session; screenshots at
390 px (light and dark) and 1280 px that a person can look at, none overflowing sideways."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from assay.engines.duckdb import DuckDBEngine
from tests.server.conftest import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no chromium on this machine (scripts/test installs Debian's when run as root)",
)
REVENUE_BY_REGION_SQL = """
SELECT r.r_name, sum(l.l_extendedprice * (1 - l.l_discount))
FROM lineitem l
JOIN orders o ON l.l_orderkey = o.o_orderkey
JOIN customer c ON o.o_custkey = c.c_custkey
JOIN nation n ON c.c_nationkey = n.n_nationkey
JOIN region r ON n.n_regionkey = r.r_regionkey
GROUP BY 1 ORDER BY 1
"""
ANSWER = "article.turn:not([data-poll])"
WAIT_MS = 60_000


def _number(text: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", text))


def _ask(page: Any, prompt: str) -> None:
    """Type a question and ask with the keyboard (Ctrl+Enter), as a person would."""
    page.fill("#prompt", prompt)
    page.focus("#prompt")
    with page.expect_navigation():  # the question is a form POST, then back to the page
        page.keyboard.press("Control+Enter")


def _no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than the window"


def _shoot(page: Any, folder: Path, name: str) -> None:
    shot = folder / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    keep = os.environ.get("ASSAY_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / name)


def test_a_person_chats_on_the_page(
    server: Server, org_key: str, tpch_engine: DuckDBEngine, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "CI must have chromium: scripts/test installs it"
    expected = tpch_engine.execute(REVENUE_BY_REGION_SQL)
    want = dict(zip(expected.column(0).to_pylist(), expected.column(1).to_pylist(), strict=True))
    stranger_key = server.key("--user", "browser.stranger@example.com")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            # sign in, then ask on the page
            page.goto(f"{server.url}/chat")
            page.fill("#key", org_key)
            page.keyboard.press("Enter")
            page.wait_for_selector("h1:has-text('Conversations')")
            _ask(page, "What is total revenue by region?")
            assert re.search(r"/chat/[0-9a-f-]{36}", page.url), page.content()
            conversation_url = page.url.split("#")[0]
            page.wait_for_selector(f"{ANSWER} .answer", timeout=WAIT_MS)

            # the numbers on the page are the database's
            first = page.locator("article.turn").nth(0)
            shown: dict[str, float] = {}
            for row in first.locator(".rows tbody tr").all():
                cells = row.locator("td").all_inner_texts()
                shown[cells[0]] = _number(cells[-1])
            assert set(shown) == set(want)
            for region, revenue in want.items():
                assert shown[region] == pytest.approx(float(revenue), rel=1e-9, abs=0.01)
            chart = first.locator("img.chart")
            assert chart.evaluate("img => img.decode().then(() => img.naturalWidth)") > 100
            first.locator("summary", has_text="Semantic query").click()
            assert "lineitem.revenue" in first.locator("pre").inner_text()
            assert first.locator("a", has_text="Download CSV").is_visible()
            assert first.locator(".assumptions").is_visible()

            # a follow-up builds on it
            _ask(page, "only for 1995")
            page.locator(f"{ANSWER} .answer").nth(1).wait_for(timeout=WAIT_MS)
            second = page.locator("article.turn").nth(1)
            assert "only for 1995" in second.locator("h2").inner_text()
            assert "1995" in (second.locator("pre").text_content() or "")
            _no_sideways_scroll(page)
            _shoot(page, tmp_path, "chat-1280.png")

            # a slow question (in the same conversation: another topic) shows its progress
            # and is cancelled from the page
            _ask(page, "How many slow are there?")
            page.wait_for_selector("[data-poll] .progress-message", timeout=WAIT_MS)
            assert page.locator("form.ask button[type=submit]").is_disabled()
            page.locator("[data-poll] button", has_text="Cancel").click()
            page.wait_for_selector("text=This question was cancelled", timeout=WAIT_MS)
            assert page.locator("form.ask button[type=submit]").is_enabled()

            # phone width, light and dark: nothing runs off the side
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(conversation_url)
            page.wait_for_selector(f"{ANSWER} .answer")
            _no_sideways_scroll(page)
            _shoot(page, tmp_path, "chat-390.png")
            page.emulate_media(color_scheme="dark")
            page.goto(conversation_url, wait_until="networkidle")  # the dark charts too
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            assert background != "rgb(246, 247, 249)"  # the dark palette, not the light one
            drawn = page.locator("img.chart").first.evaluate("img => img.currentSrc")
            assert drawn.endswith("theme=dark")
            _shoot(page, tmp_path, "chat-390-dark.png")
            page.emulate_media(color_scheme="light")
            page.set_viewport_size({"width": 1280, "height": 900})

            # the conversation is listed; someone else cannot open it
            page.goto(f"{server.url}/chat")
            listed = page.locator("ul.conversations a").all_inner_texts()
            assert listed[0] == "What is total revenue by region?"  # the newest first
            other = browser.new_page()
            other.goto(f"{server.url}/chat")
            other.fill("#key", stranger_key)
            other.click("button[type=submit]")
            other.wait_for_selector("h1:has-text('Conversations')")
            response = other.goto(conversation_url)
            assert response is not None and response.status == 404
            assert "Conversation not found" in other.content()
            other.close()

            # an expired session goes back to sign-in, remembering the conversation
            page.goto(conversation_url)
            cookie = next(c for c in page.context.cookies() if c["name"] == "assay_session")
            digest = hashlib.sha256(cookie["value"].encode()).hexdigest()
            with sqlite3.connect(server.home / "assay.sqlite", timeout=10) as db:
                db.execute("UPDATE chat_sessions SET expires_at = 0 WHERE id_hash = ?", (digest,))
            page.reload()
            assert page.locator("#key").is_visible()
            page.fill("#key", org_key)
            page.click("button[type=submit]")
            page.wait_for_selector(f"{ANSWER} .answer")
            assert page.url.split("#")[0] == conversation_url

            # sign out: the page is closed to the old cookie
            page.locator("button", has_text="Sign out").click()
            page.wait_for_selector("text=You are signed out")
            page.goto(conversation_url)
            assert page.locator("#key").is_visible()
            assert not [e for e in errors if "Content Security Policy" in e]
        finally:
            browser.close()
