"""Bearer tokens (looked up by their hash, see ``jobs.keys``), the user a request acts as
(``userId`` rules), and a per-key rate limit."""

from __future__ import annotations

import hmac
import math
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from assay.counters import RATE_LIMITED, Counters
from assay.jobs.keys import hash_token
from assay.jobs.model import ApiKey
from assay.jobs.store import JobStore
from assay.jobs.users import AttributeDef, Profile, User, all_definitions, viewer_for
from assay.semantic.viewer import Viewer
from assay.server.errors import ApiError


@dataclass(frozen=True)
class Principal:
    """Who is calling, and as whom: the key, and the user its requests act as (the key's own
    user, or the one an organization key names with ``userId``), with what that user may see
    on each model. Every governed decision downstream reads ``viewer(model_id)``."""

    key: ApiKey
    user: User
    definitions: tuple[AttributeDef, ...] = ()
    roles: Mapping[str, str] = field(default_factory=dict)
    # each model's viewer, made once per request (a run asks for it to compile, then again
    # to show the job): a principal lives for one request, so it never goes stale
    _viewers: dict[str, Viewer] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def org_key(self) -> bool:
        return self.key.kind == "org"

    def viewer(self, model_id: str) -> Viewer:
        seen = self._viewers.get(model_id)
        if seen is None:
            seen = viewer_for(self.user, self.definitions, self.roles.get(model_id))
            self._viewers[model_id] = seen
        return seen

    def owns(self, user_id: str | None) -> bool:
        """Whether a job or answer made for ``user_id`` is this caller's to read: their own,
        or any, for an organization key."""
        return self.org_key or (user_id is not None and user_id == self.user.id)


def authenticate(store: JobStore, header: str | None) -> ApiKey:
    """The key behind an ``Authorization`` header; 401 when missing, malformed or unknown."""
    return signed_in(store, header)[0]


def signed_in(store: JobStore, header: str | None) -> tuple[ApiKey, Profile | None]:
    """The key behind an ``Authorization`` header and its user's profile, read together (one
    round trip on a shared store); 401 when the header is missing, malformed or unknown."""
    if not header:
        raise ApiError(401, "Unauthorized: Missing or invalid API key",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Bad authorization header, must be formatted as Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    digest = hash_token(token.strip())
    found = store.users.sign_in(digest)
    # Looked up by a hash, so the lookup's timing tells nothing of the token; the stored hash
    # is still compared in constant time, so no code path compares a secret byte by byte.
    if found is None or not hmac.compare_digest(found[0].token_hash, digest):
        raise ApiError(401, "Unauthorized: Missing or invalid API key",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    if found[0].revoked_at is not None:
        raise ApiError(401, "Unauthorized: Missing or invalid API key",
                       headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return found


def act_as(
    store: JobStore, key: ApiKey, user_id: str | None, own: Profile | None = None
) -> Principal:
    """The key acting as its own user, or (``userId``) as another: an organization key may act
    for any user of the directory, a personal token only for its own. ``own``: the key's
    user's profile, when the caller has just read it with the key."""
    directory = store.users
    if user_id is not None:
        try:
            user_id = str(uuid.UUID(user_id))
        except ValueError:
            raise ApiError(400, "userId: Invalid uuid") from None
        if key.kind == "pat" and user_id != key.user_id:
            raise ApiError(403, "User-scoped API keys can only be used to act on behalf of the "
                           "authenticated user.")  # fmt: skip
    if own is None or own.user.id != key.user_id:
        own = directory.profile(key.user_id) if key.user_id else None
    if own is None or not own.user.active:
        raise ApiError(403, "User no longer has the required permissions to use this API key")
    profile = own
    if user_id is not None and user_id != own.user.id:
        other = directory.profile(user_id)
        if other is None or not other.user.active:
            raise ApiError(404, f"User with id {user_id} does not exist")
        profile = other
    definitions = tuple(all_definitions(profile.definitions))
    return Principal(key, profile.user, definitions, profile.roles)


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, in bursts of up to as many.
    Counts live in this process (one server), or, for replicas, in the shared store: ``shared``
    spends a token there and answers 0 or the seconds to wait."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        shared: Callable[[str, int], float] | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.per_minute = per_minute
        self.counters = counters or Counters()
        self.clock = clock
        self.shared = shared
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str) -> None:
        if self.per_minute <= 0:
            return
        if self.shared is not None:
            wait = self.shared(key_id, self.per_minute)
            if wait > 0:
                raise self._limited(math.ceil(wait))
            return
        rate = self.per_minute / 60.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key_id] = (tokens, now)
                raise self._limited(max(1, math.ceil((1.0 - tokens) / rate)))
            self._buckets[key_id] = (tokens - 1.0, now)

    def _limited(self, retry: int) -> ApiError:
        self.counters.add(RATE_LIMITED)
        return ApiError(
            429,
            f"Too Many Requests: the limit is {self.per_minute} requests a minute per API key; "
            f"retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
