"""What the user-directory API tests share: names no other test uses (the session server is
shared, so every user and attribute a test makes is its own), and the CLI run on a server's
home, as an operator would run it beside the server."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.server.conftest import ASSAY, Server

ATTRIBUTES = "urn:omni:params:1.0:UserAttribute"
SCIM = "/api/scim/v2/Users"


def unique(prefix: str) -> str:
    """A lower-case name no other test (or earlier run on this server) uses."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def email(prefix: str = "u") -> str:
    return f"{unique(prefix)}@example.com"


def assay(server: Server, *args: str) -> str:
    """Run the assay command on the server's home; its standard output."""
    done = subprocess.run([ASSAY, *args], env=server._env(), capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def attribute(api: httpx.Client, prefix: str, **fields: Any) -> Iterator[str]:
    """A custom attribute for the length of a test, deleted afterwards."""
    name = unique(prefix)
    created = api.post("/api/v1/user-attributes", json={"name": name, **fields})
    assert created.status_code == 201, created.text
    try:
        yield name
    finally:
        api.delete(f"/api/v1/user-attributes/{name}")


def scim_user(api: httpx.Client, user_name: str, **fields: Any) -> dict[str, Any]:
    created = api.post(SCIM, json={"userName": user_name, **fields})
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
