"""AI conversations over HTTP against a real `assay serve` (contract section 5.9): omni-app-mcp's
own conversation tools reading conversations that real AI jobs made, pages that follow each
other, rename and delete, and one user's personal token attacking another's conversation.

Each test works with users of its own (personal tokens from `assay keys create --user`), so
what they list is exactly what they made on the shared session server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.server.conftest import MODEL_ID, Server
from tests.server.test_omni_clients import RecordingTransport

pytestmark = pytest.mark.tpch

REVENUE = "What is total revenue by region?"
FOLLOW_UP = "only for ASIA"
SLOW = "How many slow are there?"  # runs on the `slow` view until cancelled
TERMINAL = {"COMPLETE", "FAILED", "CANCELLED"}
CONVERSATIONS = "/api/v1/ai/conversations"


@dataclass
class Person:
    token: str
    id: str
    http: httpx.Client


@pytest.fixture
def people(server: Server) -> Iterator[Callable[[str], Person]]:
    """Makes users of this test's own, each with a personal token and a client for it."""
    made: list[Person] = []

    def person(name: str) -> Person:
        token = server.key("--user", f"{name}-{uuid.uuid4().hex[:8]}@conversations.example")
        http = httpx.Client(base_url=server.url, timeout=60,
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        user_id = http.get("/api/v1/whoami").json()["user"]["id"]
        made.append(Person(token, user_id, http))
        return made[-1]

    yield person
    for p in made:
        p.http.close()


def ask(http: httpx.Client, prompt: str, conversation: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"modelId": MODEL_ID, "prompt": prompt}
    if conversation:
        body["conversationId"] = conversation
    created = http.post("/api/v1/ai/jobs", json=body)
    assert created.status_code == 201, created.text
    result: dict[str, Any] = created.json()
    return result


def wait_state(http: httpx.Client, job_id: str, states: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        doc = http.get(f"/api/v1/ai/jobs/{job_id}").json()
        if doc["state"] in states:
            return doc
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {doc}")


def answered(http: httpx.Client, prompt: str, conversation: str | None = None) -> dict[str, Any]:
    created = ask(http, prompt, conversation)
    assert wait_state(http, created["jobId"], TERMINAL)["state"] == "COMPLETE"
    return created


@pytest.fixture
def mcp_as(server: Server, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], RecordingTransport]:
    """omni-app-mcp's AI tools pointed at the server with a given token."""
    from omni_mcp.client import OmniClient
    from omni_mcp.config import Settings
    from omni_mcp.tools import ai

    def point(token: str) -> RecordingTransport:
        monkeypatch.setenv("OMNI_BASE_URL", server.url)
        monkeypatch.setenv("OMNI_API_KEY", token)
        transport = RecordingTransport()
        client = OmniClient(Settings(), transport=transport)
        monkeypatch.setattr(ai, "get_client", lambda: client)
        return transport

    return point


def list_tool(fmt: str = "markdown", **params: Any) -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.ai import ListAiConversationsInput, omni_list_ai_conversations

    inputs = ListAiConversationsInput(response_format=ResponseFormat(fmt), **params)
    text: str = asyncio.run(omni_list_ai_conversations(inputs))
    return text


def read_tool(conversation_id: str, fmt: str = "markdown") -> str:
    from omni_mcp.formatters import ResponseFormat
    from omni_mcp.tools.ai import GetAiConversationInput, omni_get_ai_conversation

    inputs = GetAiConversationInput(conversation_id=conversation_id,
                                    response_format=ResponseFormat(fmt))  # fmt: skip
    text: str = asyncio.run(omni_get_ai_conversation(inputs))
    return text


def test_omni_app_mcp_lists_and_reads_conversations_real_jobs_made(
    people: Callable[[str], Person], mcp_as: Callable[[str], RecordingTransport]
) -> None:
    ann = people("ann")
    first = answered(ann.http, REVENUE)
    follow = answered(ann.http, FOLLOW_UP, first["conversationId"])
    later = answered(ann.http, "What is total revenue?")
    transport = mcp_as(ann.token)

    listing = list_tool()
    assert listing.startswith("# AI conversations\n\nShowing **2** of **2** record(s).\nEnd of")
    entries = re.findall(r"- \*\*(.+?)\*\* \(`([^`]+)`\) — updated (\S+)\n  - Last prompt: (.+)",
                         listing)  # fmt: skip
    assert [(name, cid, last) for name, cid, _, last in entries] == [
        ("What is total revenue?", later["conversationId"], "What is total revenue?"),
        (REVENUE, first["conversationId"], FOLLOW_UP),
    ]
    request, response = transport.exchanges[-1]
    assert (request.url.path, request.url.params["pageSize"]) == (CONVERSATIONS, "50")
    assert response.json()["records"] == response.json()["data"]  # the newer SDK reads records

    transcript = read_tool(first["conversationId"])
    assert transcript.startswith(f"# Conversation `{first['conversationId']}`\n")
    assert f"- User: `{ann.id}`" in transcript and "- Messages: **4**" in transcript
    turns = re.findall(r"### (user|assistant) — (\S+)\n\n(?:- Job id: `([^`]+)`\n)?", transcript)
    assert [(role, job) for role, _, job in turns] == [
        ("user", ""), ("assistant", first["jobId"]), ("user", ""), ("assistant", follow["jobId"]),
    ]  # fmt: skip
    assert transcript.count(f"- Chat: {first['omniChatUrl']}") == 2
    assert f"\n{REVENUE}\n" in transcript and f"\n{FOLLOW_UP}\n" in transcript

    raw = json.loads(read_tool(first["conversationId"], "json"))
    answers = [m for m in raw["messages"] if m["role"] == "assistant"]
    result = ann.http.get(f"/api/v1/ai/jobs/{follow['jobId']}/result").json()
    assert answers[1]["content"] == answers[1]["text"] == result["message"]
    assert "ASIA" in answers[1]["content"] and answers[1]["state"] == "COMPLETE"
    assert raw["name"] == REVENUE and raw["lastUserPrompt"] == FOLLOW_UP


def test_pages_follow_each_other_newest_first(
    people: Callable[[str], Person], mcp_as: Callable[[str], RecordingTransport]
) -> None:
    bob = people("bob")
    created = [ask(bob.http, f"What is total revenue? ({i})") for i in range(5)]
    for job in created:  # they run together: their last activity orders the list
        wait_state(bob.http, job["jobId"], TERMINAL)
    made = [job["conversationId"] for job in created]
    everything = bob.http.get(CONVERSATIONS, params={"pageSize": 100}).json()
    expected = [r["id"] for r in everything["records"]]
    assert sorted(expected) == sorted(made)
    stamps = [r["updatedAt"] for r in everything["records"]]
    assert stamps == sorted(stamps, reverse=True)

    seen: list[str] = []
    cursor: str | None = None
    for page_number in range(3):
        params: dict[str, Any] = {"pageSize": 2, **({"cursor": cursor} if cursor else {})}
        page = bob.http.get(CONVERSATIONS, params=params).json()
        info = page["pageInfo"]
        assert (info["pageSize"], info["totalRecords"]) == (2, 5)
        assert info["hasNextPage"] == (page_number < 2) == (info["nextCursor"] is not None)
        seen.extend(r["id"] for r in page["data"])
        cursor = info["nextCursor"]
    assert seen == expected

    # omni-app-mcp pages the same way, passing the cursor back.
    mcp_as(bob.token)
    first = json.loads(list_tool("json", page_size=3))
    assert [i["id"] for i in first["items"]] == expected[:3] and first["hasNextPage"]
    rest = json.loads(list_tool("json", page_size=3, cursor=first["nextCursor"]))
    assert [i["id"] for i in rest["items"]] == expected[3:] and not rest["hasNextPage"]


def test_another_users_conversation_is_not_found_for_read_rename_and_delete(
    people: Callable[[str], Person], api: httpx.Client
) -> None:
    ann, bob = people("ann"), people("bob")
    mine = answered(ann.http, REVENUE)["conversationId"]
    nowhere = str(uuid.uuid4())
    for target in (mine, nowhere):  # B cannot tell A's conversation from none at all
        url = f"{CONVERSATIONS}/{target}"
        for response in (bob.http.get(url), bob.http.patch(url, json={"name": "taken"}),
                         bob.http.delete(url)):  # fmt: skip
            assert response.status_code == 404, response.text
            assert response.json()["detail"] == "Conversation not found"
    assert bob.http.get(CONVERSATIONS).json()["data"] == []
    intact = ann.http.get(f"{CONVERSATIONS}/{mine}").json()
    assert intact["name"] == REVENUE and len(intact["messages"]) == 2
    job_id = intact["messages"][1]["jobId"]
    assert ann.http.get(f"/api/v1/ai/jobs/{job_id}").status_code == 200

    # userId: an organization key may list anyone's; a personal token may not even name its own.
    for user in (ann.id, bob.id):
        refused = bob.http.get(CONVERSATIONS, params={"userId": user})
        assert refused.status_code == 403
        assert refused.json()["detail"] == "User-scoped tokens cannot filter by userId"
    listed = api.get(CONVERSATIONS, params={"userId": ann.id}).json()["data"]
    assert [r["id"] for r in listed] == [mine] and listed[0]["userId"] == ann.id
    assert api.get(f"{CONVERSATIONS}/{mine}").json()["userId"] == ann.id
    stranger = str(uuid.uuid4())
    missing = api.get(CONVERSATIONS, params={"userId": stranger})
    assert (missing.status_code, missing.json()["detail"]) == (
        404, f"User with id {stranger} does not exist",
    )  # fmt: skip
    assert api.get(CONVERSATIONS, params={"userId": "ann"}).status_code == 400


def test_rename_and_what_a_bad_name_gets(people: Callable[[str], Person]) -> None:
    ann = people("ann")
    mine = answered(ann.http, REVENUE)["conversationId"]
    url = f"{CONVERSATIONS}/{mine}"
    renamed = ann.http.patch(url, json={"name": "  Regional revenue "})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["id"], renamed.json()["name"]) == (mine, "Regional revenue")
    assert ann.http.get(url).json()["name"] == "Regional revenue"
    assert ann.http.get(CONVERSATIONS).json()["data"][0]["name"] == "Regional revenue"

    refusals = {
        "": "Bad Request: name: Too small: expected string to have >=1 characters",
        "   ": "Bad Request: name: Too small: expected string to have >=1 characters",
        "x" * 257: "Bad Request: name: Too big: expected string to have <=256 characters "
        "(it has 257)",
        None: "Bad Request: name: Invalid input: expected string, received null",
        7: "Bad Request: name: Invalid input: expected string, received number",
    }
    for name, message in refusals.items():
        refused = ann.http.patch(url, json={"name": name})
        assert (refused.status_code, refused.json()["detail"]) == (400, message)
    for body in ({}, {"name": "ok", "userId": ann.id}):
        assert ann.http.patch(url, json=body).status_code == 400
    assert ann.http.patch(url, content=b"{not json").status_code == 400
    assert ann.http.get(url).json()["name"] == "Regional revenue"  # none of it stuck
    assert ann.http.patch(url, json={"name": "y" * 256}).json()["name"] == "y" * 256

    for method in ("GET", "PATCH", "DELETE"):
        bad = ann.http.request(method, f"{CONVERSATIONS}/not-a-conversation",
                               json={"name": "n"} if method == "PATCH" else None)  # fmt: skip
        assert (bad.status_code, bad.json()["detail"]) == (400, "Invalid conversation ID")


def cursor_of(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


SOME_ID = "0b8f4f8e-2a51-4c2e-9d3c-6f1b1c2d3e4f"  # fixed: xdist workers collect the same ids


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", cursor_of({"offset": 2}), cursor_of([1, 2]),
     '{"updatedAt": NaN}', cursor_of({"updatedAt": "soon", "id": SOME_ID}),
     cursor_of({"updatedAt": 1.0, "id": "x"})],
)  # fmt: skip
def test_a_bad_cursor_is_omnis_invalid_cursor(api: httpx.Client, cursor: str) -> None:
    response = api.get(CONVERSATIONS, params={"cursor": cursor})
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["success"], body["detail"]) == ("Invalid cursor", False,
                                                                "Invalid cursor")  # fmt: skip


def test_bad_page_sizes_and_parameters(api: httpx.Client) -> None:
    for size in ("0", "101", "ten"):
        response = api.get(CONVERSATIONS, params={"pageSize": size})
        assert response.status_code == 400
        assert response.json()["detail"] == "pageSize: expected a number from 1 to 100"
    unknown = api.get(CONVERSATIONS, params={"page": "2"})
    assert unknown.json()["detail"] == "Unrecognized key(s) in object: 'page'"


def test_delete_takes_the_jobs_and_their_answers(
    people: Callable[[str], Person], mcp_as: Callable[[str], RecordingTransport]
) -> None:
    ann = people("ann")
    first = answered(ann.http, REVENUE)
    follow = answered(ann.http, FOLLOW_UP, first["conversationId"])
    kept = answered(ann.http, "What is total revenue?")
    url = f"{CONVERSATIONS}/{first['conversationId']}"
    deleted = ann.http.delete(url)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"success": True, "id": first["conversationId"], "deletedJobs": 2}
    for job in (first, follow):
        for path in ("", "/result"):
            gone = ann.http.get(f"/api/v1/ai/jobs/{job['jobId']}{path}")
            assert (gone.status_code, gone.json()["detail"]) == (404, "Job not found")
    assert ann.http.get(url).status_code == 404
    assert ann.http.delete(url).status_code == 404
    assert [r["id"] for r in ann.http.get(CONVERSATIONS).json()["data"]] == [kept["conversationId"]]
    assert ann.http.get(f"/api/v1/ai/jobs/{kept['jobId']}").status_code == 200
    mcp_as(ann.token)
    assert read_tool(first["conversationId"]) == (
        "Error (404): Not found – Conversation not found. "
        "Double-check the id (and that it belongs to this instance)."
    )


def test_deleting_a_conversation_cancels_its_running_job_first(
    people: Callable[[str], Person], server: Server
) -> None:
    ann = people("ann")
    running = ask(ann.http, SLOW)
    wait_state(ann.http, running["jobId"], {"EXECUTING"})
    read = ann.http.get(f"{CONVERSATIONS}/{running['conversationId']}").json()
    assert read["messages"][1]["state"] == "EXECUTING" and read["messages"][1]["content"] == ""
    deleted = ann.http.delete(f"{CONVERSATIONS}/{running['conversationId']}")
    assert deleted.status_code == 200, deleted.text
    assert ann.http.get(f"/api/v1/ai/jobs/{running['jobId']}").status_code == 404
    log = server.home / f"serve-{server.port}.log"
    deadline = time.monotonic() + 10
    while f"AI job {running['jobId']} CANCELLED" not in log.read_text():
        assert time.monotonic() < deadline, "the running job was never cancelled"
        time.sleep(0.1)
    # The conversation's id is free: asking in it starts a new conversation of one job.
    again = answered(ann.http, "What is total revenue?", running["conversationId"])
    fresh = ann.http.get(f"{CONVERSATIONS}/{again['conversationId']}").json()
    assert [m["jobId"] for m in fresh["messages"]] == [None, again["jobId"]]
