"""Local files: inputs read in chunks, downloads that appear whole or not at all."""

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1024 * 1024


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """Write to a temporary file beside ``path``, moved into place only when the block ends
    without an error: an interrupted download never leaves a half-written file.

    The file gets the permissions any new file would (the umask decides), like ``curl -o``.
    """
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        with temporary.open("xb") as file:
            yield file
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


async def read_chunks_async(path: Path) -> AsyncIterator[bytes]:
    """``read_chunks`` for the async client: each read runs in a thread, off the loop."""
    file = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(file.close)
