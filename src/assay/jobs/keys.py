"""API keys: organization keys and personal access tokens.

Tokens are random, shown once when created (``assay keys create``) and stored only as a
SHA-256 hash: a 256-bit random token needs no slow hash, and lookups stay O(1).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid

from assay.jobs.model import ApiKey, KeyKind
from assay.jobs.store import JobStore

PREFIXES: dict[str, str] = {"org": "assay_org_", "pat": "assay_pat_"}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_id_for(email: str) -> str:
    """A user's stable membership id, derived from their email."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"assay:user:{email.strip().lower()}"))


def create_key(
    store: JobStore, kind: KeyKind, *, email: str | None = None, label: str | None = None
) -> tuple[ApiKey, str]:
    """A new key and its token (the only time the token exists outside the caller)."""
    if kind == "pat" and not email:
        raise ValueError("a personal access token belongs to a user: give their email")
    token = PREFIXES[kind] + secrets.token_urlsafe(32)
    key = ApiKey(
        id=str(uuid.uuid4()),
        kind=kind,
        token_hash=hash_token(token),
        created_at=time.time(),
        prefix=token[: len(PREFIXES[kind]) + 4],
        user_id=user_id_for(email) if email else None,
        user_email=email,
        label=label,
    )
    store.add_key(key)
    return key, token
