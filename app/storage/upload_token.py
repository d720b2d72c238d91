"""Signed upload grants for the local backend's ``PUT /uploads/{token}`` endpoint.

A token is ``<base64url(json claims)>.<base64url(HMAC-SHA256(secret, claims))>``: it names
exactly one key, a byte limit and an expiry, so the service can accept an
upload without a database row and without trusting anything else the client sends.
"""

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import NamedTuple

from app.storage.errors import InvalidUploadTokenError, UploadTokenExpiredError
from app.storage.keys import validate_key

MIN_SECRET_BYTES = 32
_MAX_TOKEN_LENGTH = 2048


class UploadGrant(NamedTuple):
    """What a verified token allows: unpacks as ``key, max_bytes``."""

    key: str
    max_bytes: int


class UploadTokenSigner:
    """Issues and verifies upload tokens with one HMAC secret."""

    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"upload token secret must be at least {MIN_SECRET_BYTES} bytes")
        self._secret = secret
        self._clock = clock

    def issue(self, key: str, max_bytes: int, expires_in_s: float) -> str:
        """A token allowing one upload of at most ``max_bytes`` to ``key``."""
        validate_key(key)
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        claims = {
            "k": key,
            "m": max_bytes,
            "e": int(self._clock() + expires_in_s),
        }
        body = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{_b64encode(self._mac(body))}"

    def verify(self, token: str) -> UploadGrant:
        """The grant inside ``token``; raises if it is forged, malformed or expired."""
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 1:
            raise InvalidUploadTokenError("malformed upload token")
        body, signature = token.split(".")
        try:
            given = _b64decode(signature)
        except (binascii.Error, ValueError) as exc:
            raise InvalidUploadTokenError("malformed upload token") from exc
        if not hmac.compare_digest(given, self._mac(body)):
            raise InvalidUploadTokenError("upload token signature does not match")
        try:
            claims = json.loads(_b64decode(body))
            key, max_bytes, expiry = str(claims["k"]), int(claims["m"]), int(claims["e"])
        except (binascii.Error, ValueError, KeyError, TypeError) as exc:
            raise InvalidUploadTokenError("malformed upload token claims") from exc
        if self._clock() >= expiry:
            raise UploadTokenExpiredError("upload token has expired")
        return UploadGrant(validate_key(key), max_bytes)

    def _mac(self, body: str) -> bytes:
        message = b"enclave-upload-v1." + body.encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
