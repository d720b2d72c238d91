"""Checking media before accepting work: the same limits and decoders a run uses.

The service calls these when a job is submitted, so a truncated JPEG, a disguised zip or
a 50000×50000 PNG header is refused with a precise error there and then, instead of
becoming a job that fails later.
"""

import re
import tempfile
from pathlib import Path

from pipeline.errors import UnsupportedMediaError
from pipeline.media import MediaKind, check_image_header, decode_image_bytes, sniff_bytes_kind
from pipeline.options import Limits
from pipeline.video import probe_video

HEAD_BYTES = 1 << 20
"""How much of a large upload ``inspect_media_head`` reads: magic bytes and image headers."""


def inspect_media_bytes(
    data: bytes, limits: Limits, name: str, *, expect: MediaKind | None = None
) -> MediaKind:
    """Check a whole file held in memory: images are decoded, videos probed."""
    kind = _sniff(data, name, expect)
    if kind is MediaKind.IMAGE:
        decode_image_bytes(data, limits, name)
    else:
        with tempfile.TemporaryDirectory(prefix="enclave-inspect-") as directory:
            # the caller's name only for messages: reduced to a plain file name first
            path = Path(directory) / (
                re.sub(r"[^A-Za-z0-9._-]", "_", name)[-64:].lstrip(".") or "video"
            )
            path.write_bytes(data)
            probe_video(path, limits)
    return kind


def inspect_media_head(
    head: bytes, limits: Limits, name: str, *, expect: MediaKind | None = None
) -> MediaKind:
    """Check the first bytes of a large file: its kind and, for an image, its pixel count."""
    kind = _sniff(head, name, expect)
    if kind is MediaKind.IMAGE:
        check_image_header(head, limits, name)
    return kind


def _sniff(data: bytes, name: str, expect: MediaKind | None) -> MediaKind:
    kind = sniff_bytes_kind(data, name)
    if expect is not None and kind is not expect:
        raise UnsupportedMediaError(
            f"{name} is a {kind.value}; expected "
            + ("an image (JPEG, PNG, WebP)" if expect is MediaKind.IMAGE else "a video")
        )
    return kind
