"""Errors of the webhook layer.

::

    WebhookError                      anything about a webhook that fails on purpose
    ├── WebhookURLError               the URL breaks the policy (scheme, allowlist, address)
    │   └── WebhookResolutionError    the host did not resolve (may succeed later)
    ├── WebhookSecretError            a secret not in ``whsec_<base64>`` form
    └── WebhookVerificationError      a received webhook whose signature or time is wrong
"""


class WebhookError(Exception):
    """Base of every webhook failure."""


class WebhookURLError(WebhookError, ValueError):
    """A webhook URL the policy refuses; the message says which rule and why."""


class WebhookResolutionError(WebhookURLError):
    """The webhook host did not resolve; unlike other URL errors, retrying may help."""


class WebhookSecretError(WebhookError, ValueError):
    """A webhook secret that is not ``whsec_`` followed by base64 key bytes."""


class WebhookVerificationError(WebhookError):
    """A webhook whose headers, timestamp or signature do not verify."""
