"""Request and job ids: version 4 UUIDs, never repeated, not even by a forked child."""

from __future__ import annotations

import os
import uuid

from assay.ids import new_id, new_uuid


def test_ids_are_version_4_uuids_and_never_repeat() -> None:
    ids = [new_id() for _ in range(5000)]  # many draws of the buffer
    assert len(set(ids)) == len(ids)
    for text in ids[:300]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)


def test_a_forked_child_does_not_hand_out_its_parents_ids() -> None:
    new_uuid()  # the parent has ids drawn and not yet handed out
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, "".join(new_uuid().hex for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = "".join(new_uuid().hex for _ in range(8))
    assert len(child) == len(parent) == 256
    assert {child[i : i + 32] for i in range(0, 256, 32)}.isdisjoint(
        parent[i : i + 32] for i in range(0, 256, 32)
    )
