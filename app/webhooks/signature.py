"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A message carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature: v1,<base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))>``, where the
key is the base64 part of a ``whsec_…`` secret. ``webhook-signature`` may list several
space-separated signatures (during secret rotation); one valid ``v1`` entry is enough.
The SDK carries its own copy of ``verify`` (it depends on httpx only); keep them in step.
"""

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta

from app.webhooks.errors import WebhookSecretError, WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format marker, not a secret)
DEFAULT_TOLERANCE = timedelta(minutes=5)
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
_MIN_KEY_BYTES = 24


def generate_secret() -> str:
    """A new random ``whsec_`` secret (32 key bytes)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_<base64>`` secret."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookSecretError("webhook secret must be 'whsec_' followed by base64") from exc
    if len(key) < _MIN_KEY_BYTES:
        raise WebhookSecretError(f"webhook secret key must be at least {_MIN_KEY_BYTES} bytes")
    return key


def sign(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one message."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    message_id: str, body: bytes, secret: str, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``, stamped now unless told otherwise."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: sign(message_id, stamp, body, secret),
    }


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    tolerance: timedelta = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Raise ``WebhookVerificationError`` unless ``body`` and ``headers`` are genuine and fresh.

    The timestamp must be within ``tolerance`` of ``now`` in either direction (replays of
    old messages fail), and the comparison is constant-time.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = lowered[ID_HEADER]
        raw_timestamp = lowered[TIMESTAMP_HEADER]
        raw_signatures = lowered[SIGNATURE_HEADER]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance.total_seconds():
        raise WebhookVerificationError("webhook-timestamp is outside the allowed tolerance")
    expected = sign(message_id, timestamp, body, secret).encode()
    for candidate in raw_signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise WebhookVerificationError("no webhook-signature matches the body")
