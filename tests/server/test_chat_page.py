"""The chat page behind omniChatUrl, over HTTP against a real server (the browser test with a
real Chromium is in test_chat_browser.py)."""

from __future__ import annotations

import httpx

from tests.server.conftest import Server
from tests.server.test_ai_jobs import TERMINAL, submit, wait_state


def test_a_browser_signs_in_and_sees_the_conversation(server: Server, api: httpx.Client,
                                                      org_key: str) -> None:  # fmt: skip
    created = submit(api, "What is total revenue by region? <script>alert(1)</script>")
    wait_state(api, created["jobId"], TERMINAL)
    path = httpx.URL(created["omniChatUrl"]).path
    with httpx.Client(base_url=server.url) as browser:
        anonymous = browser.get(path)
        assert anonymous.status_code == 401 and 'name="key"' in anonymous.text
        wrong = browser.post("/chat/login", data={"key": "nope", "next": path})
        assert wrong.status_code == 401 and "Enter a valid API key" in wrong.text
        signed_in = browser.post("/chat/login", data={"key": org_key, "next": path})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == path
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        page = browser.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "<th>Region</th>" in html and "<td>ASIA</td>" in html
    assert 'src="data:image/png;base64,' in html
    assert "lineitem.revenue" in html  # the semantic query, under its details
    assert "http" not in html.split("<body>")[1].replace(created["omniChatUrl"], "")  # offline


def test_a_key_header_works_and_unknown_conversations_are_404(server: Server, api: httpx.Client,
                                                             org_key: str) -> None:  # fmt: skip
    unknown = api.get("/chat/00000000-0000-0000-0000-000000000001")
    assert unknown.status_code == 404 and "Conversation not found" in unknown.text


def test_login_only_redirects_to_chat_pages(server: Server, org_key: str) -> None:
    with httpx.Client(base_url=server.url) as browser:
        response = browser.post("/chat/login", data={"key": org_key, "next": "//evil.example/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
