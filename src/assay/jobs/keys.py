"""API keys: organization keys and personal access tokens, each belonging to a user.

Tokens are random, shown once when created (``assay keys create``) and stored only as a
SHA-256 hash: a 256-bit random token needs no slow hash, and lookups stay O(1).

An organization key belongs to the organization's admin user (made on first use) and acts
with their rights; a personal token belongs to its user and acts as them only. Deleting a
user revokes their keys.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

from assay.jobs.model import ApiKey, KeyKind
from assay.jobs.store import JobStore
from assay.jobs.users import (
    ADMIN_USER_NAME,
    DirectoryError,
    User,
    UserExists,
    is_email,
    new_user,
)

PREFIXES: dict[str, str] = {"org": "assay_org_", "pat": "assay_pat_"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_id_for(email: str) -> str:
    """A user's stable membership id, derived from their email: the id a user made from an
    email on the command line gets, the same as their keys had before users were stored."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"assay:user:{email.strip().lower()}"))


def create_key(
    store: JobStore, kind: KeyKind, *, user: User, label: str | None = None
) -> tuple[ApiKey, str]:
    """A new key for ``user`` and its token (the only time the token exists outside the
    caller). An organization key acts with organization-admin rights, so only an admin may
    hold one."""
    if kind == "org" and not user.org_admin:
        raise DirectoryError(f"An organization key belongs to an organization admin; "
                             f"{user.user_name} is not one")  # fmt: skip
    if not user.active:
        raise DirectoryError(f"User {user.user_name} is deactivated: they cannot have a key")
    token = PREFIXES[kind] + secrets.token_urlsafe(32)
    key = ApiKey(
        id=str(uuid.uuid4()),
        kind=kind,
        token_hash=hash_token(token),
        created_at=time.time(),
        prefix=token[: len(PREFIXES[kind]) + 4],
        user_id=user.id,
        user_email=user.user_name,
        label=label,
    )
    store.add_key(key)
    return key, token


def fresh_user_id(store: JobStore, email: str) -> str:
    """The id for a new user made from an email: ``user_id_for(email)``, unless a user (since
    renamed) already has it; then a random one."""
    derived = user_id_for(email)
    return derived if store.users.user(derived) is None else str(uuid.uuid4())


def org_admin(store: JobStore) -> User:
    """The organization's admin user, whom organization keys belong to: the oldest org-admin
    user, else a new one named ``ADMIN_USER_NAME`` (made once, however often this is asked)."""
    directory = store.users
    for _ in range(3):
        _, users = directory.users()
        admin = next((u for u in users if u.org_admin and u.active), None)
        if admin is not None:
            return admin
        named = directory.user_named(ADMIN_USER_NAME)
        if named is not None:
            raise DirectoryError(
                f"There is no active organization admin, and {ADMIN_USER_NAME} is a user who "
                f"is not one (or is deactivated): make a user an admin (assay users create "
                f"EMAIL --admin) and try again"
            )
        admin = new_user(ADMIN_USER_NAME, "Organization admin", time.time(),
                         user_id=user_id_for(ADMIN_USER_NAME), org_admin=True)  # fmt: skip
        try:
            directory.add_user(admin)
        except UserExists:
            continue  # another process made it first: read it back
        return admin
    raise DirectoryError("Could not find or make the organization's admin user")


def user_for_email(store: JobStore, email: str, *, display_name: str | None = None) -> User:
    """The user with this email (any case), made when there is none: not an admin, with the
    id ``user_id_for(email)``, so it matches the keys made for that email before."""
    if not is_email(email):
        raise DirectoryError(f"{email!r} is not an email address")
    directory = store.users
    found = directory.user_named(email)
    if found is not None:
        return found
    user = new_user(email, display_name, time.time(), user_id=fresh_user_id(store, email))
    try:
        directory.add_user(user)
    except UserExists:
        found = directory.user_named(email)
        if found is None:
            raise
        return found
    return user
