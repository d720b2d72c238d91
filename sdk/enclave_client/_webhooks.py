"""Verifying the service's webhooks (Standard Webhooks, https://www.standardwebhooks.com).

Each delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature: v1,<base64(HMAC-SHA256(key, f"{id}.{timestamp}.{body}"))>``, where
the key is the base64 part of the ``whsec_…`` secret. The header may list several
space-separated signatures (while a secret is rotated); one valid ``v1`` entry is enough.
The service signs with ``app.webhooks.signature``; this is the same algorithm, kept here so
the client depends on httpx only.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from enclave_client._errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format marker, not a secret)
DEFAULT_TOLERANCE_S = 300.0


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: float | timedelta = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> Any:
    """Check a webhook and return its JSON payload; raise ``WebhookVerificationError`` if
    it is not signed with ``secret`` or its timestamp is more than ``tolerance`` seconds
    from ``now`` (either way: replayed old messages fail).

    Pass the body exactly as received (bytes), before any JSON parsing.
    """
    raw = body.encode() if isinstance(body, str) else body
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        message_id = lowered["webhook-id"]
        raw_timestamp = lowered["webhook-timestamp"]
        signatures = lowered["webhook-signature"]
    except KeyError as exc:
        raise WebhookVerificationError(f"missing header {exc.args[0]}") from None
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not an integer") from None
    allowed = tolerance.total_seconds() if isinstance(tolerance, timedelta) else tolerance
    current = time.time() if now is None else now
    if abs(current - timestamp) > allowed:
        raise WebhookVerificationError("webhook-timestamp is outside the allowed tolerance")
    expected = _signature(message_id, timestamp, raw, secret).encode()
    if not any(
        candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected)
        for candidate in signatures.split()
    ):
        raise WebhookVerificationError("no webhook-signature matches the body")
    try:
        return json.loads(raw)
    except ValueError:
        raise WebhookVerificationError("the signed body is not JSON") from None


def _signature(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError(
            "webhook secret must be 'whsec_' followed by base64"
        ) from None
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")
