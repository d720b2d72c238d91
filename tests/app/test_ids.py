"""Random ids: proper version 4 UUIDs, never repeated, not shared with a forked child."""

import os
import uuid

from app.ids import random_uuid


def test_ids_are_version_4_uuids_and_never_repeat() -> None:
    ids = [random_uuid() for _ in range(5_000)]  # many refills of the buffer
    assert len(set(ids)) == len(ids)
    assert {(each.version, each.variant) for each in ids} == {(4, uuid.RFC_4122)}


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    random_uuid()  # the buffer holds unused bytes now
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(reader)
        os.write(writer, random_uuid().bytes)
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        childs = uuid.UUID(bytes=pipe.read())
    os.waitpid(child, 0)
    assert childs != random_uuid()
