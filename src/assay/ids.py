"""Random ids (UUID version 4) for what every request makes: its request id, its job's id and
result id, its result file's name.

``uuid.uuid4()`` asks the kernel for 16 random bytes each time. A system call lets go of the
interpreter's lock, and on a server whose threads are busy (replicas hand the store's round
trips to threads) taking it back costs far more than the call: sampled under load, the ids
took 4-5 % of the request path. These come from the same kernel randomness (``os.urandom``),
drawn 256 ids at a time. A forked child starts with a buffer of its own, so parent and child
never hand out the same id.
"""

from __future__ import annotations

import os
import threading
import uuid

_IDS_PER_DRAW = 256


class _Draws:
    """Kernel randomness drawn ahead, handed out 16 bytes at a time (under a lock: threads
    make ids too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._drawn = b""
        self._used = 0

    def next16(self) -> bytes:
        with self._lock:
            if self._used >= len(self._drawn):
                self._drawn, self._used = os.urandom(16 * _IDS_PER_DRAW), 0
            raw = self._drawn[self._used : self._used + 16]
            self._used += 16
        return raw

    def forget(self) -> None:
        """In a forked child: a fresh lock too (another thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._drawn, self._used = b"", 0


_draws = _Draws()


def new_uuid() -> uuid.UUID:
    return uuid.UUID(bytes=_draws.next16(), version=4)


def new_id() -> str:
    """A new id in UUID form, as Omni's job ids are."""
    return str(new_uuid())


# A forked child must not hand out the ids its parent drew (and may hand out itself).
os.register_at_fork(after_in_child=_draws.forget)
