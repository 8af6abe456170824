"""Who is using the chat page: a server-side session a browser signs in to with an API key,
and the CSRF checks on every form it posts.

The cookie holds a random session id, never the key: a stolen cookie is worth at most one
session, ends at sign-out, at expiry or when the key is revoked, and the store holds only the
id's hash. Every request reads the session with its key and user, so a revoked key or a
deactivated user is refused at once, as with a bearer header.

CSRF: SameSite=Strict already keeps other sites' forms from carrying the cookie; each POST
must also carry the session's token (derived from the session id, so nothing more is stored)
and, when the browser says where it comes from, an Origin of this server.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import Response

from assay.errors import AssayError
from assay.jobs.chat_sessions import ChatSession
from assay.jobs.model import ApiKey
from assay.server.auth import Principal, act_as, signed_in
from assay.server.observe import note
from assay.server.state import ServerState

COOKIE = "assay_session"
#: the cookie of earlier versions, which held the key itself: cleared at sign-in and sign-out
OLD_COOKIE = "assay_key"
SESSION_SECONDS = 8 * 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"


class SignInNeeded(AssayError):
    """No session, or one that ended: the page offers the sign-in form instead."""

    code = "sign_in"
    status = 401


class CsrfRefused(AssayError):
    code = "csrf"
    status = 403


@dataclass(frozen=True)
class ChatUser:
    """The person behind a chat request: who they act as, and the token their forms carry
    (empty for an API client with a bearer header, which no other site can make a browser
    send)."""

    principal: Principal
    csrf: str
    session_hash: str | None = None

    @property
    def key(self) -> ApiKey:
        return self.principal.key


def hash_session(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_for(session_id: str) -> str:
    """The session's CSRF token: only the holder of the session id can compute it, and the
    server recomputes it instead of storing it."""
    return hmac.new(session_id.encode(), b"assay chat csrf", hashlib.sha256).hexdigest()


def open_session(state: ServerState, key: ApiKey, now: float | None = None) -> str:
    """A new session for a key just checked; its id, for the cookie (the store keeps only its
    hash)."""
    session_id = secrets.token_urlsafe(32)
    at = time.time() if now is None else now
    session = ChatSession(hash_session(session_id), key.id, key.user_id, at, at + SESSION_SECONDS)
    state.store.users.open_chat_session(session)
    return session_id


def end_session(state: ServerState, request: Request) -> None:
    session_id = request.cookies.get(COOKIE)
    if session_id:
        state.store.users.end_chat_session(hash_session(session_id))


def current_user(request: Request) -> ChatUser:
    """The signed-in person, checked against the store now; ``SignInNeeded`` when there is no
    live session (expired, signed out, key revoked, user deactivated)."""
    state: ServerState = request.app.state.assay
    header = request.headers.get("authorization")
    session_id = request.cookies.get(COOKIE)
    if header is not None:  # an API client
        key, own = signed_in(state.store, header)
        state.limiter.check(key.id)
        return ChatUser(act_as(state.store, key, None, own), "")
    if not session_id:
        raise SignInNeeded("Sign in with an API key to open your conversations.")
    digest = hash_session(session_id)
    found = state.store.users.chat_session(digest, time.time())
    if found is None:
        raise SignInNeeded("Your session has ended; sign in again to continue.")
    _, key, own = found
    if key.revoked_at is not None:
        raise SignInNeeded("The key this session signed in with was revoked; sign in again.")
    note(request, key_id=key.id, user_id=key.user_id)
    state.limiter.check(key.id)
    try:
        principal = act_as(state.store, key, None, own)
    except AssayError as exc:  # the user was deactivated: the session ends with them
        raise SignInNeeded(f"{exc} Sign in with another key.") from None
    return ChatUser(principal, csrf_for(session_id), digest)


def check_post(request: Request, user: ChatUser, form_token: str | None) -> None:
    """Refuse a POST another site may have made the browser send: a foreign Origin, or no
    (or a wrong) session token. API clients with a bearer header send no cookie: exempt."""
    if not user.csrf:
        return
    check_origin(request)
    token = request.headers.get(CSRF_HEADER) or form_token or ""
    if not hmac.compare_digest(token.encode(), user.csrf.encode()):
        raise CsrfRefused("Refused: the form's security token is missing or out of date; "
                          "reload the page and try again.")  # fmt: skip


def check_origin(request: Request) -> None:
    """Refuse a form another site sent (sign-in too: no one may sign a browser in to their
    own session from elsewhere)."""
    origin = request.headers.get("origin")
    if origin is not None and not _same_origin(request, origin):
        raise CsrfRefused(f"Refused: this form was sent from {origin}, not from this server.")


def _same_origin(request: Request, origin: str) -> bool:
    state: ServerState = request.app.state.assay
    allowed = {f"{request.url.scheme}://{request.headers.get('host', '')}"}
    if state.settings.public_url:
        parts = urlsplit(state.settings.public_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}")
    return origin.rstrip("/") in allowed


def set_session_cookie(state: ServerState, response: Response, session_id: str) -> None:
    secure = (state.settings.public_url or "").startswith("https://")
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="strict", secure=secure,
                        path="/chat", max_age=SESSION_SECONDS)  # fmt: skip
    response.delete_cookie(OLD_COOKIE, path="/chat")


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/chat", httponly=True, samesite="strict")
    response.delete_cookie(OLD_COOKIE, path="/chat")
