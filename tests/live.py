"""Live services (PostgreSQL, MariaDB, Spark): skipped with a visible reason on a developer's
machine that lacks them; under CI (``CI=true``) they must be there, so a missing one fails."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
MARIADB_URL = os.environ.get("TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """The name of a schema of its own on the test PostgreSQL, dropped (whatever it holds)
    afterwards; skipped, or failed under CI, when there is no server."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=5):
            pass
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL at {POSTGRES_URL}: {exc}")
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
