"""The chat page in a real headless Chromium (Debian's, driven by Playwright): sign in with a
key, see the conversation, and keep a screenshot a person can look at."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import Server
from tests.server.test_ai_jobs import TERMINAL, submit, wait_state

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="no chromium on this machine (scripts/test installs Debian's when run as root)",
)


def test_a_person_signs_in_and_reads_the_answer(
    server: Server, api: httpx.Client, org_key: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "CI must have chromium: scripts/test installs it"
    first = submit(api, "What is total revenue by region?")
    wait_state(api, first["jobId"], TERMINAL)
    follow = submit(api, "only for 1995", conversationId=first["conversationId"])
    wait_state(api, follow["jobId"], TERMINAL)
    url = f"{server.url}{httpx.URL(first['omniChatUrl']).path}"

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url)
            assert page.locator("input[name=key]").is_visible()
            page.fill("input[name=key]", org_key)
            page.click("button[type=submit]")
            page.wait_for_selector(".turn")
            assert page.url == url
            turns = page.locator(".turn")
            assert turns.count() == 2
            assert "What is total revenue by region?" in turns.nth(0).inner_text()
            assert "only for 1995" in turns.nth(1).inner_text()
            assert page.locator("td", has_text="MIDDLE EAST").count() >= 1
            chart = page.locator("img[alt='Chart of the result']").first
            width = chart.evaluate("img => img.naturalWidth")
            assert width > 100  # the PNG decoded: a real picture, not a broken image
            page.locator("summary", has_text="Semantic query").first.click()
            assert "lineitem.revenue" in page.locator("pre").first.inner_text()
            shot = tmp_path / "chat.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
            keep = os.environ.get("ASSAY_SCREENSHOT_DIR")
            if keep:
                shutil.copy(shot, Path(keep) / "chat.png")
        finally:
            browser.close()
