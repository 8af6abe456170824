"""The chat pages over HTTP against a real server: sessions (cookie flags, hashed at rest,
sign-out, revocation, expiry), CSRF refusals, injection shown as text, one question at a time
per conversation, another user's conversation, rows and downloads. The browser test with a
real Chromium is test_chat_browser.py."""

from __future__ import annotations

import hashlib
import itertools
import re
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest

from assay.jobs.keys import hash_token
from tests.server.conftest import MODEL_ID, Server
from tests.server.test_ai_jobs import TERMINAL, submit, wait_state


def _store(server: Server) -> sqlite3.Connection:
    return sqlite3.connect(server.home / "assay.sqlite", timeout=10)


@contextmanager
def sign_in(server: Server, key: str, target: str = "/chat") -> Iterator[httpx.Client]:
    """A cookie-keeping client signed in with ``key`` (as a browser would be)."""
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        answer = browser.post("/chat/login", data={"key": key, "next": target})
        assert answer.status_code == 303, answer.text
        yield browser


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert found is not None, "the page carries its CSRF token"
    return found.group(1)


def ask(browser: httpx.Client, prompt: str, conversation: str | None = None,
        **extra: str) -> httpx.Response:  # fmt: skip
    token = csrf_of(browser.get("/chat").text)
    form = {"csrf": token, "model": MODEL_ID, "topic": "", "prompt": prompt, **extra}
    if conversation:
        form["conversation"] = conversation
    return browser.post("/chat/ask", data=form)


def asked(answer: httpx.Response) -> tuple[str, str]:
    """(conversation id, job id) from the redirect after asking."""
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/chat/([0-9a-f-]{36})#turn-([0-9a-f-]{36})", answer.headers["location"])
    assert found is not None, answer.headers["location"]
    return found.group(1), found.group(2)


@pytest.fixture
def browser(server: Server, org_key: str) -> Iterator[httpx.Client]:
    with sign_in(server, org_key) as client:
        yield client


def test_sign_in_opens_a_session_stored_only_as_a_hash(server: Server, org_key: str) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        first = anonymous.get("/chat")
        assert first.status_code == 401 and 'name="key"' in first.text
        wrong = anonymous.post("/chat/login", data={"key": "nope", "next": "/chat"})
        assert wrong.status_code == 401 and "Enter a valid API key" in wrong.text
        signed = anonymous.post("/chat/login", data={"key": org_key, "next": "/chat"})
    assert signed.status_code == 303 and signed.headers["location"] == "/chat"
    cookie = signed.headers["set-cookie"]
    session_id = re.search(r"assay_session=([^;]+)", cookie)
    assert session_id is not None
    flags = cookie.lower()
    assert "httponly" in flags and "samesite=strict" in flags and "path=/chat" in flags
    assert "max-age=" in flags and org_key not in cookie
    raw = session_id.group(1)
    with _store(server) as db:
        hashes = {row[0] for row in db.execute("SELECT id_hash FROM chat_sessions")}
    assert hashlib.sha256(raw.encode()).hexdigest() in hashes
    store_bytes = b"".join(p.read_bytes() for p in server.home.glob("assay.sqlite*"))
    assert raw.encode() not in store_bytes  # neither in the file nor in its write-ahead log


def test_sign_out_ends_the_session(server: Server, org_key: str) -> None:
    with sign_in(server, org_key) as browser:
        page = browser.get("/chat")
        assert page.status_code == 200 and "Sign out" in page.text
        cookie = browser.cookies["assay_session"]
        refused = browser.post("/chat/logout", data={"csrf": "0" * 64})
        assert refused.status_code == 403  # sign-out is a POST like any other: CSRF-checked
        out = browser.post("/chat/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 200 and "You are signed out" in out.text
    with httpx.Client(base_url=server.url, cookies={"assay_session": cookie}) as replay:
        again = replay.get("/chat")
    assert again.status_code == 401 and 'name="key"' in again.text


def test_revoking_the_key_ends_its_sessions_at_once(server: Server) -> None:
    key = server.key("--org")
    with sign_in(server, key) as browser:
        assert browser.get("/chat").status_code == 200
        with _store(server) as db:
            db.execute("UPDATE api_keys SET revoked_at = ? WHERE token_hash = ?",
                       (time.time(), hash_token(key)))  # fmt: skip
        after = browser.get("/chat")
    assert after.status_code == 401 and "revoked" in after.text


def test_an_expired_session_goes_back_to_sign_in_remembering_the_conversation(
    server: Server, org_key: str, api: httpx.Client
) -> None:
    created = submit(api, "What is total revenue?")
    wait_state(api, created["jobId"], TERMINAL)
    path = f"/chat/{created['conversationId']}"
    with sign_in(server, org_key, path) as browser:
        assert browser.get(path).status_code == 200
        digest = hashlib.sha256(browser.cookies["assay_session"].encode()).hexdigest()
        with _store(server) as db:
            db.execute("UPDATE chat_sessions SET expires_at = 0 WHERE id_hash = ?", (digest,))
        expired = browser.get(path)
        assert expired.status_code == 401 and "session has ended" in expired.text
        assert f'name="next" value="{path}"' in expired.text
        back = browser.post("/chat/login", data={"key": org_key, "next": path})
    assert back.status_code == 303 and back.headers["location"] == path


def test_every_post_needs_the_session_token_and_this_origin(browser: httpx.Client) -> None:
    form = {"model": MODEL_ID, "topic": "", "prompt": "What is total revenue?"}
    missing = browser.post("/chat/ask", data=form)
    assert missing.status_code == 403 and "security token" in missing.text
    wrong = browser.post("/chat/ask", data={**form, "csrf": "f" * 64})
    assert wrong.status_code == 403
    token = csrf_of(browser.get("/chat").text)
    foreign = browser.post("/chat/ask", data={**form, "csrf": token},
                           headers={"Origin": "https://evil.example"})  # fmt: skip
    assert foreign.status_code == 403 and "evil.example" in foreign.text
    own = browser.post("/chat/ask", data={**form, "csrf": token},
                       headers={"Origin": str(browser.base_url).rstrip("/")})  # fmt: skip
    assert own.status_code == 303


def test_injection_in_prompts_and_answers_is_shown_as_text(
    browser: httpx.Client, api: httpx.Client
) -> None:
    prompt = ('What is total revenue by region? <script>alert(1)</script> '
              '<img src=x onerror=alert(2)> [click](javascript:alert(3)) **bold**')  # fmt: skip
    conversation, job = asked(ask(browser, prompt))
    wait_state(api, job, TERMINAL)
    html = browser.get(f"/chat/{conversation}").text
    body = html.split("<body>", 1)[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<script>alert" not in body and "<img src=x" not in body
    assert 'href="javascript:' not in body
    assert body.count("<script") == 0  # the page's one script is in the head, from 'self'
    assert 'src="/chat/static/chat.js' in html and "http" not in body  # offline: nothing remote


def test_a_second_question_while_one_runs_is_409_and_cancel_frees_it(
    browser: httpx.Client, api: httpx.Client
) -> None:
    conversation, slow = asked(ask(browser, "How many slow are there?"))
    wait_state(api, slow, {"EXECUTING"})
    busy = ask(browser, "What is total revenue?", conversation)
    assert busy.status_code == 409 and "An active job already exists" in busy.text
    page = browser.get(f"/chat/{conversation}").text
    assert f'data-poll="/chat/{conversation}/turns/{slow}"' in page and ">Cancel<" in page
    polled = browser.get(f"/chat/{conversation}/turns/{slow}", headers={"X-Fragment": "1"})
    assert polled.headers["x-assay-state"] in {"QUEUED", "EXECUTING"}
    cancel = browser.post(f"/chat/{conversation}/turns/{slow}/cancel",
                          data={"csrf": csrf_of(page)})  # fmt: skip
    assert cancel.status_code == 303
    assert api.get(f"/api/v1/ai/jobs/{slow}").json()["state"] == "CANCELLED"
    assert "This question was cancelled" in browser.get(f"/chat/{conversation}").text
    _, follow = asked(ask(browser, "What is total revenue?", conversation))
    assert wait_state(api, follow, TERMINAL)["state"] == "COMPLETE"


def test_another_users_conversation_is_404_everywhere(
    server: Server, browser: httpx.Client, api: httpx.Client
) -> None:
    conversation, job = asked(ask(browser, "What is total revenue by region?"))
    wait_state(api, job, TERMINAL)
    other = server.key("--user", "someone.else@example.com")
    base = f"/chat/{conversation}"
    with sign_in(server, other) as stranger:
        for path in (
            base,
            f"{base}/turns/{job}/queries/0/rows",
            f"{base}/turns/{job}/queries/0.csv",
            f"{base}/turns/{job}/queries/0/chart",
        ):
            assert stranger.get(path).status_code == 404, path
        assert conversation not in stranger.get("/chat").text
        token = csrf_of(stranger.get("/chat").text)
        form = {"csrf": token, "model": MODEL_ID, "prompt": "only for 1995"}
        follow = stranger.post("/chat/ask", data={**form, "conversation": conversation})
        assert follow.status_code == 404
        cancel = stranger.post(f"{base}/turns/{job}/cancel", data={"csrf": token})
        assert cancel.status_code == 404


def test_rows_page_and_download_as_csv_and_xlsx(browser: httpx.Client, api: httpx.Client) -> None:
    conversation, job = asked(ask(browser, "What is total revenue by customer?"))
    assert wait_state(api, job, TERMINAL)["state"] == "COMPLETE"
    html = browser.get(f"/chat/{conversation}").text
    at = f"/chat/{conversation}/turns/{job}/queries/0"
    assert f'href="{at}.csv"' in html and f'href="{at}.xlsx"' in html
    assert f'href="{at}/rows?page=2"' in html and "Run it again" in html
    second = browser.get(f"{at}/rows?page=2", headers={"X-Fragment": "1"})
    assert second.status_code == 200 and "Rows 26–50 of" in second.text
    assert second.text.count("<tr>") == 26  # the header and 25 rows
    csv_file = browser.get(f"{at}.csv")
    assert csv_file.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_file.headers["content-disposition"]
    lines = csv_file.text.strip().splitlines()
    total = int(re.search(r"Rows 26–50 of ([\d,]+)", second.text).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert len(lines) == total + 1
    xlsx = browser.get(f"{at}.xlsx")
    assert xlsx.status_code == 200 and xlsx.content.startswith(b"PK")
    # the chart is a request of its own (the page never waits for a drawing), light or dark
    assert f'src="{at}/chart?theme=light"' in html and f'srcset="{at}/chart?theme=dark"' in html
    light, dark = browser.get(f"{at}/chart?theme=light"), browser.get(f"{at}/chart?theme=dark")
    assert light.status_code == 200 and light.headers["content-type"] == "image/svg+xml"
    assert light.text.lstrip().startswith("<svg") and light.text != dark.text
    assert "default-src 'none'" in light.headers["content-security-policy"]
    assert browser.get(f"/chat/{conversation}/turns/{job}/queries/7/chart").status_code == 404


def test_a_refusal_offers_the_topics_sample_questions(
    browser: httpx.Client, api: httpx.Client
) -> None:
    conversation, job = asked(ask(browser, "What is the weather on Mars tomorrow?"))
    assert wait_state(api, job, TERMINAL)["state"] == "COMPLETE"
    html = browser.get(f"/chat/{conversation}").text
    assert 'class="answer refused"' in html and "Questions this model can answer" in html
    assert html.count('name="prompt" value=') >= 1


def test_pages_carry_a_strict_content_security_policy(browser: httpx.Client) -> None:
    page = browser.get("/chat")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    script = browser.get("/chat/static/chat.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    assert browser.get("/chat/static/nope.js").status_code == 404


def test_api_clients_may_read_with_a_bearer_header(api: httpx.Client) -> None:
    unknown = api.get("/chat/00000000-0000-0000-0000-000000000001")
    assert unknown.status_code == 404 and "Conversation not found" in unknown.text


def test_login_only_redirects_to_chat_pages_and_only_from_here(
    server: Server, org_key: str
) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.post("/chat/login", data={"key": org_key, "next": "//evil.example/"})
        foreign = client.post("/chat/login", data={"key": org_key, "next": "/chat"},
                              headers={"Origin": "https://evil.example"})  # fmt: skip
    assert response.status_code == 303 and response.headers["location"] == "/chat"
    assert foreign.status_code == 403 and "set-cookie" not in foreign.headers


def test_fifty_rapid_questions_in_one_conversation_are_never_interleaved(
    server: Server, browser: httpx.Client, api: httpx.Client
) -> None:
    conversation, first = asked(ask(browser, "What is total revenue?"))
    wait_state(api, first, TERMINAL)
    token = csrf_of(browser.get("/chat").text)
    form = {"csrf": token, "model": MODEL_ID, "conversation": conversation,
            "prompt": "What is total revenue by region?"}  # fmt: skip
    cookies = dict(browser.cookies)

    def one(_: int) -> int:
        with httpx.Client(base_url=server.url, cookies=cookies, timeout=60) as client:
            return client.post("/chat/ask", data=form).status_code

    with ThreadPoolExecutor(max_workers=25) as pool:
        statuses = list(pool.map(one, range(50)))
    assert set(statuses) <= {303, 409} and statuses.count(303) >= 1
    assert statuses.count(409) >= 1  # some were refused, not all run at once
    jobs = api.get(f"/api/v1/ai/conversations/{conversation}").json()["messages"]
    ids = [m["jobId"] for m in jobs if m.get("role") == "assistant"]
    assert len(ids) == 1 + statuses.count(303)
    for job_id in ids:
        wait_state(api, job_id, TERMINAL)
    timeline = sorted(
        (api.get(f"/api/v1/ai/jobs/{i}").json() for i in ids), key=lambda d: d["createdAt"]
    )
    for before, after in itertools.pairwise(timeline):
        assert before["completedAt"] <= after["createdAt"]  # one question at a time
