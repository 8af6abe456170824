"""Webhooks cannot aim the server at itself or its private network: a real `assay serve`
without an allow-list refuses every such address when the job is submitted, and sends
nothing there; with one, a listed receiver gets its event, at the address checked when the
job was submitted, and a redirect is not followed."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay.ai.webhooks import deliver
from assay.outbound import OutboundRefused, check_destination
from tests.server.conftest import MODEL_ID, Server, make_home


class Receiver:
    """An HTTP server on a loopback address that records what it is sent; ``redirect`` makes
    it answer 302 to that location instead."""

    def __init__(self, host: str = "127.0.0.1", redirect: str | None = None) -> None:
        self.received: list[bytes] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.received.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(302 if redirect else 200)
                if redirect:
                    self.send_header("Location", redirect)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = HTTPServer((host, 0), Handler)
        self.port = self.httpd.server_port
        self.url = f"http://{host}:{self.port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def closed(tmp_path_factory: pytest.TempPathFactory, tpch_path: Path) -> Iterator[Server]:
    """A server with the default: webhooks reach public addresses only."""
    server = Server(make_home(tmp_path_factory.mktemp("outbound")), tpch_path).start()
    yield server
    server.stop()


def ask(server: Server, key: str, url: str) -> httpx.Response:
    return httpx.post(f"{server.url}/api/v1/ai/jobs", timeout=30,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"prompt": "total revenue", "modelId": MODEL_ID, "webhookUrl": url,
                            "webhookSigningSecret": "s"})  # fmt: skip


@pytest.mark.parametrize(
    ("address", "rule"),
    [("127.0.0.1:{port}", "a loopback address"), ("localhost:{port}", "a loopback address"),
     ("[::1]:{port}", "a loopback address"), ("[::ffff:127.0.0.1]:{port}", "a loopback address"),
     ("10.0.0.7", "a private address"), ("192.168.1.1", "a private address"),
     ("169.254.169.254", "a link-local address"), ("224.0.0.1", "a multicast address"),
     ("0.0.0.0:{port}", "an unspecified address"),
     ("no-such-host.invalid", "cannot be resolved")],
)  # fmt: skip
def test_private_destinations_are_refused_and_nothing_is_sent(
    closed: Server, receiver: Receiver, address: str, rule: str
) -> None:
    key = closed.key()
    url = f"http://{address.format(port=receiver.port)}/hook"
    response = ask(closed, key, url)
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith("Bad Request: webhookUrl:") and rule in detail
    if rule != "cannot be resolved":
        assert "webhook_allowed_hosts" in detail
    time.sleep(0.3)
    assert receiver.received == [], "no request left the server"
    assert httpx.get(f"{closed.url}/health").status_code == 200


def test_credentials_in_a_webhook_url_are_refused(closed: Server) -> None:
    response = ask(closed, closed.key(), "https://user:pw@example.com/hook")
    assert response.status_code == 400 and "credentials" in response.json()["detail"]


def test_a_listed_receiver_gets_its_event_and_a_redirect_is_not_followed(
    server: Server, org_key: str
) -> None:
    """The session server lists 127.0.0.1 (its tests' receivers listen there)."""
    target = Receiver()
    bouncer = Receiver(redirect=target.url)
    try:
        response = ask(server, org_key, bouncer.url)
        assert response.status_code == 201, response.text
        deadline = time.monotonic() + 30
        while not bouncer.received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert len(bouncer.received) == 1, "delivered once; a 3xx is not retried"
        assert target.received == [], "the redirect was not followed"
    finally:
        target.close()
        bouncer.close()


def test_delivery_connects_to_the_address_checked_not_to_what_the_name_resolves_to_now() -> None:
    """DNS rebinding: the URL's host (localhost) resolves to 127.0.0.1, where nothing listens
    on this port; the address checked at submission (127.0.0.2) is where the event goes."""
    pinned = Receiver("127.0.0.2")
    try:
        url = f"http://localhost:{pinned.port}/hook"
        ok = asyncio.run(deliver(url, "s", {"event": "x"}, now=time.time(), address="127.0.0.2",
                                 delays=()))  # fmt: skip
        assert ok and len(pinned.received) == 1
        unpinned = asyncio.run(deliver(url, "s", {"event": "x"}, now=time.time(),
                                       allowed=frozenset({"localhost"}), delays=()))  # fmt: skip
        assert not unpinned, "resolved now, localhost is 127.0.0.1: nobody listens there"
        assert len(pinned.received) == 1
    finally:
        pinned.close()


def test_a_job_from_before_the_checks_is_checked_when_it_is_delivered(receiver: Receiver) -> None:
    sent = asyncio.run(deliver(receiver.url, "s", {"event": "x"}, now=time.time(), delays=()))
    assert not sent and receiver.received == []
    with pytest.raises(OutboundRefused, match="loopback"):
        check_destination(receiver.url, frozenset())
    assert check_destination(receiver.url, frozenset({"127.0.0.1"})).address == "127.0.0.1"
