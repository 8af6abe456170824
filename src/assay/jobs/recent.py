"""A replica's short memory of what it read from the shared store.

On PostgreSQL every read is a network round trip, made on the request's path: a cached
query read the caller's key and profile, then the cache entry, then inserted its job, three
round trips where one (the insert) is needed. A replica may reuse what it read for a few
seconds (``shared_store_memory_seconds``): that is the longest a change made on another
replica (a key revoked, a user's attributes or role changed, a result refreshed) takes to
reach this one. Changes made through this replica are seen at once: its writes forget or
replace what it remembered. Only what was found is remembered, so a key created anywhere
works at once and unknown tokens cannot fill the memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
#: entries kept at most; past it the memory starts afresh (a burst of distinct keys is rare)
MAX_ENTRIES = 10_000


class Recent(Generic[K, V]):
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._entries: dict[K, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        if self.seconds <= 0:
            return None
        with self._lock:
            found = self._entries.get(key)
        if found is None or found[0] <= self.clock():
            return None
        return found[1]

    def put(self, key: K, value: V) -> None:
        if self.seconds <= 0:
            return
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self.clock() + self.seconds, value)

    def forget(self, key: K | None = None) -> None:
        """Forget one entry, or (no key) everything."""
        with self._lock:
            if key is None:
                self._entries.clear()
            else:
                self._entries.pop(key, None)
