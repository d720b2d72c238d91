"""Random ids (version 4 UUIDs) drawn from a per-thread buffer of OS randomness.

``uuid.uuid4()`` asks the OS for 16 bytes on every call, and CPython gives up the GIL
around that system call; on the event loop's thread, with storage and database threads
busy, each give-up could cost the loop the GIL for up to the switch interval. Reading
4 KiB at a time draws from the same source (so the ids are as unguessable) with one
system call per 256 ids.
"""

import os
import threading
import uuid

_BUFFER_BYTES = 4096
_UUID_BYTES = 16


class _RandomBuffer(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.offset = 0


_buffer = _RandomBuffer()


def _refill_in_child() -> None:
    # A forked child would otherwise hand out the very ids its parent is about to.
    _buffer.data, _buffer.offset = b"", 0


os.register_at_fork(after_in_child=_refill_in_child)


def random_uuid() -> uuid.UUID:
    """A new random (version 4) UUID; each buffered byte is used once."""
    buffer = _buffer
    if buffer.offset + _UUID_BYTES > len(buffer.data):
        buffer.data, buffer.offset = os.urandom(_BUFFER_BYTES), 0
    start = buffer.offset
    buffer.offset = start + _UUID_BYTES
    return uuid.UUID(bytes=buffer.data[start : start + _UUID_BYTES], version=4)
