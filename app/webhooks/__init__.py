"""Outgoing webhooks: Standard Webhooks signatures, a URL policy against SSRF, delivery.

``signature`` signs and verifies, ``destination`` decides which URLs (and addresses) may be
called, ``delivery`` sends one event with retries. The job service calls ``deliver``.
"""

from app.webhooks.delivery import DeliveryResult, deliver
from app.webhooks.destination import WebhookDestination, WebhookPolicy, check_webhook_url
from app.webhooks.errors import (
    WebhookError,
    WebhookResolutionError,
    WebhookSecretError,
    WebhookURLError,
    WebhookVerificationError,
)
from app.webhooks.signature import generate_secret, sign, signature_headers, verify

__all__ = [
    "DeliveryResult",
    "WebhookDestination",
    "WebhookError",
    "WebhookPolicy",
    "WebhookResolutionError",
    "WebhookSecretError",
    "WebhookURLError",
    "WebhookVerificationError",
    "check_webhook_url",
    "deliver",
    "generate_secret",
    "sign",
    "signature_headers",
    "verify",
]
