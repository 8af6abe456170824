"""The user directory (``jobs.users.Directory``) in SQL, written once for both job stores.

The statements are plain SQL that SQLite and PostgreSQL both run (``?`` marks; PostgreSQL's
adapter turns them into ``%s``). The stores differ only in how a transaction is had: SQLite's
``BEGIN IMMEDIATE`` on the store's one connection, PostgreSQL's pool with an advisory lock
that serialises directory writes across replicas. Every write checks what it writes against
the definitions read in the same transaction, so a value that stopped fitting between a
route's check and the write is still refused, and a definition change sees every user value.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Protocol

from assay.errors import did_you_mean
from assay.jobs.chat_sessions import (
    ChatSession,
    end_session,
    find_session,
    open_session,
    session_statements,
)
from assay.jobs.keys import user_id_for
from assay.jobs.model import ApiKey
from assay.jobs.rows import (
    DEFINITION_COLUMNS,
    KEY_COLUMNS,
    USER_COLUMNS,
    definition_from_row,
    definition_values,
    dump_attributes,
    key_from_row,
    placeholders,
    user_from_row,
    user_name_key,
    user_values,
)
from assay.jobs.users import (
    ADMIN_USER_NAME,
    AttributeConflict,
    AttributeDef,
    AttributeExists,
    DirectoryError,
    InvalidAttributeValue,
    Profile,
    User,
    UserExists,
    UserNotFound,
    attribute_values,
    checked_attributes,
    checked_definition,
)
from assay.semantic.viewer import ROLES

# Types both databases accept (SQLite maps them to its affinities; BOOLEAN reads back 0/1).
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    org_admin BOOLEAN NOT NULL DEFAULT FALSE,
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS users_created ON users (created_at);
CREATE TABLE IF NOT EXISTS attribute_definitions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    type TEXT NOT NULL,
    multiple_values BOOLEAN NOT NULL DEFAULT FALSE,
    default_value TEXT,
    description TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS model_roles (
    user_id TEXT NOT NULL,
    model_id TEXT NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, model_id)
);
CREATE INDEX IF NOT EXISTS api_keys_user ON api_keys (user_id);
"""


class Sql(Protocol):
    """One open transaction: run a statement, get its rows or its row count."""

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]: ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> int: ...


def schema_statements() -> Iterator[str]:
    for statement in SCHEMA.split(";"):
        if statement.strip():
            yield statement
    yield from session_statements()  # the chat page's sessions: they hang off the keys


class SqlDirectory:
    """``Directory`` over what a store gives: ``_read`` for one statement, ``_snapshot`` for
    several that must agree, ``_write`` for a change made whole or not at all."""

    def _read(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _snapshot(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Sql]:
        raise NotImplementedError

    # ------------------------------------------------------------------ users

    def add_user(self, user: User) -> None:
        with self._write() as sql:
            user = _fitted(sql, user)
            key = user_name_key(user.user_name)
            taken = sql.rows("SELECT user_name FROM users WHERE user_name_key = ? OR id = ?",
                             (key, user.id))  # fmt: skip
            for (found,) in taken:
                if user_name_key(found) == key:
                    raise UserExists(f"A user with userName {found!r} already exists")
            if taken:
                raise UserExists(f"A user with id {user.id} already exists ({taken[0][0]})")
            sql.run(f"INSERT INTO users ({USER_COLUMNS}) VALUES "
                    f"({placeholders(USER_COLUMNS, '?')})", user_values(user))  # fmt: skip

    def user(self, user_id: str) -> User | None:
        with self._read() as sql:
            rows = sql.rows(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
        return user_from_row(rows[0]) if rows else None

    def profile(self, user_id: str) -> Profile | None:
        with self._snapshot() as sql:
            return _profile(sql, user_id)

    def sign_in(self, token_hash: str) -> tuple[ApiKey, Profile | None] | None:
        with self._snapshot() as sql:
            rows = sql.rows(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = ?",
                            (token_hash,))  # fmt: skip
            if not rows:
                return None
            key = key_from_row(rows[0])
            return key, _profile(sql, key.user_id) if key.user_id else None

    def open_chat_session(self, session: ChatSession) -> None:
        with self._write() as sql:
            open_session(sql, session)

    def chat_session(
        self, id_hash: str, now: float
    ) -> tuple[ChatSession, ApiKey, Profile | None] | None:
        with self._snapshot() as sql:
            found = find_session(sql, id_hash, now)
            if found is None:
                return None
            session, key = found
            return session, key, _profile(sql, key.user_id) if key.user_id else None

    def end_chat_session(self, id_hash: str) -> bool:
        with self._write() as sql:
            return end_session(sql, id_hash)

    def user_named(self, user_name: str) -> User | None:
        with self._read() as sql:
            rows = sql.rows(f"SELECT {USER_COLUMNS} FROM users WHERE user_name_key = ?",
                            (user_name_key(user_name),))  # fmt: skip
        return user_from_row(rows[0]) if rows else None

    def users(
        self, *, user_name: str | None = None, start: int = 0, count: int | None = None
    ) -> tuple[int, list[User]]:
        where, params = ("", ()) if user_name is None else (
            "WHERE user_name_key = ?", (user_name_key(user_name),))  # fmt: skip
        start = max(0, start)
        with self._snapshot() as sql:
            total = int(sql.rows(f"SELECT count(*) FROM users {where}", params)[0][0])
            query = f"SELECT {USER_COLUMNS} FROM users {where} ORDER BY created_at, id"
            if count is None:
                rows = sql.rows(query, params)[start:]
            else:
                rows = sql.rows(f"{query} LIMIT ? OFFSET ?", (*params, max(0, count), start))
        return total, [user_from_row(r) for r in rows]

    def replace_user(self, user: User) -> bool:
        with self._write() as sql:
            if not sql.rows("SELECT 1 FROM users WHERE id = ?", (user.id,)):
                return False
            user = _fitted(sql, user)
            other = sql.rows("SELECT user_name FROM users WHERE user_name_key = ? AND id <> ?",
                             (user_name_key(user.user_name), user.id))  # fmt: skip
            if other:
                raise UserExists(f"A user with userName {other[0][0]!r} already exists")
            values = user_values(user)
            sql.run("UPDATE users SET user_name = ?, user_name_key = ?, display_name = ?, "
                    "active = ?, org_admin = ?, attributes = ?, created_at = ?, updated_at = ? "
                    "WHERE id = ?", (*values[1:], user.id))  # fmt: skip
        return True

    def delete_user(self, user_id: str, at: float) -> bool:
        with self._write() as sql:
            if not sql.run("DELETE FROM users WHERE id = ?", (user_id,)):
                return False
            sql.run("DELETE FROM model_roles WHERE user_id = ?", (user_id,))
            sql.run("UPDATE api_keys SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                    (at, user_id))  # fmt: skip
        return True

    # ------------------------------------------------------------------ attribute definitions

    def attribute_definitions(self) -> list[AttributeDef]:
        with self._read() as sql:
            return _definitions(sql)

    def add_attribute(self, definition: AttributeDef) -> None:
        definition = checked_definition(definition)
        definition = replace(definition, id=definition.id or str(uuid.uuid4()),
                             created_at=definition.created_at or time.time())  # fmt: skip
        with self._write() as sql:
            if sql.rows("SELECT 1 FROM attribute_definitions WHERE name = ?", (definition.name,)):
                raise AttributeExists(f"A user attribute named {definition.name!r} already exists")
            sql.run(f"INSERT INTO attribute_definitions ({DEFINITION_COLUMNS}) VALUES "
                    f"({placeholders(DEFINITION_COLUMNS, '?')})",
                    definition_values(definition))  # fmt: skip

    def replace_attribute(self, definition: AttributeDef) -> bool:
        """Everything but the name (and id, creation time) changes; when the type or the
        multiple_values flag does, every stored value is checked against the new definition
        (and rewritten in its normal form), else ``AttributeConflict`` names a user whose
        value would not fit and nothing changes."""
        definition = checked_definition(definition)
        with self._write() as sql:
            rows = sql.rows(f"SELECT {DEFINITION_COLUMNS} FROM attribute_definitions "
                            "WHERE name = ?", (definition.name,))  # fmt: skip
            if not rows:
                return False
            old = definition_from_row(rows[0])
            definition = replace(definition, id=old.id, created_at=old.created_at)
            if (old.type, old.multiple_values) != (definition.type, definition.multiple_values):
                _refit_values(sql, definition)
            values = definition_values(definition)
            sql.run("UPDATE attribute_definitions SET label = ?, type = ?, multiple_values = ?, "
                    "default_value = ?, description = ? WHERE name = ?",
                    (*values[2:7], definition.name))  # fmt: skip
        return True

    def delete_attribute(self, name: str) -> bool:
        with self._write() as sql:
            if not sql.run("DELETE FROM attribute_definitions WHERE name = ?", (name,)):
                return False
            now = time.time()
            for user_id, text in sql.rows("SELECT id, attributes FROM users"):
                attributes = json.loads(text)
                if attributes.pop(name, None) is not None:
                    sql.run("UPDATE users SET attributes = ?, updated_at = ? WHERE id = ?",
                            (dump_attributes(attributes), now, user_id))  # fmt: skip
        return True

    # ------------------------------------------------------------------ model roles

    def model_roles(self, user_id: str) -> dict[str, str]:
        with self._read() as sql:
            rows = sql.rows("SELECT model_id, role FROM model_roles WHERE user_id = ?", (user_id,))
        return {model_id: role for model_id, role in rows}

    def set_model_role(self, user_id: str, model_id: str, role: str) -> None:
        if role not in ROLES:
            hint = did_you_mean(role, ROLES)
            raise DirectoryError(f"Invalid role {role!r}: expected one of "
                                 f"{', '.join(ROLES)}.{hint}")  # fmt: skip
        with self._write() as sql:
            if not sql.rows("SELECT 1 FROM users WHERE id = ?", (user_id,)):
                raise UserNotFound(f"User with id {user_id} does not exist")
            sql.run("INSERT INTO model_roles (user_id, model_id, role) VALUES (?, ?, ?) "
                    "ON CONFLICT (user_id, model_id) DO UPDATE SET role = excluded.role",
                    (user_id, model_id, role))  # fmt: skip


def _profile(sql: Sql, user_id: str) -> Profile | None:
    rows = sql.rows(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,))
    if not rows:
        return None
    roles = sql.rows("SELECT model_id, role FROM model_roles WHERE user_id = ?", (user_id,))
    return Profile(user_from_row(rows[0]), tuple(_definitions(sql)), {m: r for m, r in roles})


def _definitions(sql: Sql) -> list[AttributeDef]:
    rows = sql.rows(f"SELECT {DEFINITION_COLUMNS} FROM attribute_definitions ORDER BY name")
    return [definition_from_row(r) for r in rows]


def _fitted(sql: Sql, user: User) -> User:
    """The user with their values checked against the definitions as they are now, in normal
    form, empty ones dropped; ``InvalidAttributeValue`` when one does not fit."""
    checked = checked_attributes({n: list(v) for n, v in user.attributes.items()},
                                 _definitions(sql))  # fmt: skip
    name = user.user_name.strip()
    return replace(user, user_name=name,
                   attributes={n: v for n, v in checked.items() if v})  # fmt: skip


def _refit_values(sql: Sql, definition: AttributeDef) -> None:
    now = time.time()
    for row in sql.rows(f"SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"):
        user = user_from_row(row)
        values = user.attributes.get(definition.name)
        if values is None:
            continue
        try:
            fitted = attribute_values(definition, list(values))
        except InvalidAttributeValue as exc:
            raise AttributeConflict(
                f"User attribute {definition.name!r} cannot change to "
                f"{_shape(definition)}: the value of user {user.user_name} "
                f"({', '.join(values)}) would not fit: {exc.message}"
            ) from None
        if fitted != values:
            attributes = {**user.attributes, definition.name: fitted or ()}
            sql.run("UPDATE users SET attributes = ?, updated_at = ? WHERE id = ?",
                    (dump_attributes(attributes), now, user.id))  # fmt: skip


def _shape(definition: AttributeDef) -> str:
    many = "multiple values" if definition.multiple_values else "a single value"
    return f"type {definition.type} with {many}"


# ---------------------------------------------------------------------- upgrade


def adopt_keys(sql: Sql, at: float) -> int:
    """Give every live key a user (keys made before the directory existed had none): a personal
    token the user its ``user_id`` names (made from its email when there is no such user), an
    organization key the organization's admin. Run in the transaction that opens the store;
    doing it twice changes nothing. Returns how many keys changed hands or got a user."""
    # Revoked keys are left alone: a deleted user's keys must not bring them back.
    orphans = sql.rows("SELECT id, kind, user_id, user_email, created_at FROM api_keys "
                       "WHERE revoked_at IS NULL AND (user_id IS NULL OR user_id NOT IN "
                       "(SELECT id FROM users)) ORDER BY created_at, id")  # fmt: skip
    changed = 0
    for key_id, kind, user_id, email, created in orphans:
        if kind == "pat" and email:
            owner = _user_for_key(sql, user_id or user_id_for(email), email, created)
        elif kind == "pat":
            # A personal token with neither a user nor an email acts for no one: retire it.
            sql.run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (at, key_id))  # fmt: skip
            continue
        else:
            owner = admin_user_id(sql, at)
        if owner != user_id:
            sql.run("UPDATE api_keys SET user_id = ? WHERE id = ?", (owner, key_id))
            changed += 1
    return changed


def _user_for_key(sql: Sql, user_id: str, email: str, created: float) -> str:
    """The id of the user a personal token belongs to: the user with its id, else the one
    with its email (any case), else a new one with its id and email."""
    for query, param in (("id = ?", user_id), ("user_name_key = ?", user_name_key(email))):
        found = sql.rows(f"SELECT id FROM users WHERE {query}", (param,))
        if found:
            return str(found[0][0])
    name = email.strip()
    user = User(id=user_id, user_name=name, display_name=name.split("@")[0],
                created_at=created, updated_at=created)  # fmt: skip
    sql.run(f"INSERT INTO users ({USER_COLUMNS}) VALUES ({placeholders(USER_COLUMNS, '?')})",
            user_values(user))  # fmt: skip
    return user_id


def admin_user_id(sql: Sql, at: float) -> str:
    """The organization's admin: the oldest active org-admin user, else a new one named
    ``ADMIN_USER_NAME`` (``admin-<n>@localhost`` when a non-admin took that name)."""
    found = sql.rows("SELECT id FROM users WHERE org_admin = ? AND active = ? "
                     "ORDER BY created_at, id LIMIT 1", (True, True))  # fmt: skip
    if found:
        return str(found[0][0])
    name = ADMIN_USER_NAME
    while sql.rows("SELECT 1 FROM users WHERE user_name_key = ?", (user_name_key(name),)):
        name = f"admin-{uuid.uuid4().hex[:6]}@localhost"
    user = User(id=user_id_for(name), user_name=name, display_name="Organization admin",
                created_at=at, updated_at=at, org_admin=True)  # fmt: skip
    sql.run(f"INSERT INTO users ({USER_COLUMNS}) VALUES ({placeholders(USER_COLUMNS, '?')})",
            user_values(user))  # fmt: skip
    return user.id
