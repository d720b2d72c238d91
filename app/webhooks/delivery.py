"""Deliver one signed webhook event, with retries, to a vetted and pinned address.

Every attempt re-checks the URL (so a DNS change between attempts is vetted again) and
connects to the address that check returned, not to whatever DNS says a moment later: the
request URL carries the IP, while the ``Host`` header and the TLS SNI/certificate check use
the original name (httpcore's ``sni_hostname`` extension). Redirects are never followed,
since a redirect could point anywhere. Retried: connection errors, timeouts, 408, 429 and
5xx; any other status is final. All attempts share one ``webhook-id`` so receivers can
de-duplicate; each is freshly timestamped and signed.
"""

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from app.webhooks.destination import WebhookDestination, WebhookPolicy
from app.webhooks.errors import WebhookResolutionError, WebhookURLError
from app.webhooks.signature import signature_headers

DEFAULT_BACKOFF_S: tuple[float, ...] = (1, 2, 4, 8, 16)
MAX_RETRY_AFTER_S = 60.0
USER_AGENT = "enclave-webhooks/1"
_RETRIED_STATUSES = frozenset({408, 429})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryResult:
    """How a delivery ended; ``error`` says why when ``delivered`` is false."""

    delivered: bool
    attempts: int
    message_id: str
    status_code: int | None = None
    error: str | None = None


async def deliver(
    url: str,
    event: Mapping[str, Any],
    secret: str,
    *,
    client: httpx.AsyncClient,
    policy: WebhookPolicy,
    attempts: int = 5,
    backoff_s: Sequence[float] = DEFAULT_BACKOFF_S,
    message_id: str | None = None,
    timeout_s: float = 10.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> DeliveryResult:
    """POST ``event`` as JSON to ``url`` until it is accepted (2xx) or attempts run out.

    Never raises for delivery failures: the result says what happened. A URL that breaks
    the policy fails at once without a request being sent.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    message_id = message_id or f"msg_{uuid.uuid4().hex}"
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    status: int | None = None
    error = "not attempted"
    for attempt in range(1, attempts + 1):
        retry_after: float | None = None
        try:
            destination = await asyncio.to_thread(policy.check, url)
            status, retry_after = await _post(
                client,
                destination,
                body=body,
                secret=secret,
                message_id=message_id,
                timeout_s=timeout_s,
            )
        except WebhookResolutionError as exc:
            status, error = None, str(exc)
        except WebhookURLError as exc:
            return DeliveryResult(False, attempt, message_id, None, str(exc))
        except httpx.TimeoutException:
            status, error = None, "the receiver timed out"
        except httpx.TransportError as exc:
            status, error = None, f"connection failed ({type(exc).__name__})"
        else:
            if 200 <= status < 300:
                return DeliveryResult(True, attempt, message_id, status)
            error = f"the receiver answered HTTP {status}"
            if not _retryable(status):
                return DeliveryResult(False, attempt, message_id, status, error)
        logger.warning(
            "webhook attempt %d/%d to %s failed: %s", attempt, attempts, _host_of(url), error
        )
        if attempt < attempts:
            delay = backoff_s[min(attempt - 1, len(backoff_s) - 1)] if backoff_s else 0.0
            await sleep(max(delay, retry_after or 0.0))
    return DeliveryResult(False, attempts, message_id, status, error)


async def _post(
    client: httpx.AsyncClient,
    destination: WebhookDestination,
    *,
    body: bytes,
    secret: str,
    message_id: str,
    timeout_s: float,
) -> tuple[int, float | None]:
    """One pinned POST; returns the status and any Retry-After (seconds) to honour."""
    address = destination.addresses[0]
    pinned = httpx.URL(destination.url).copy_with(host=str(address), port=destination.port)
    headers = {
        "Host": destination.host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signature_headers(message_id, body, secret),
    }
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    request = client.build_request(
        "POST", pinned, content=body, headers=headers, extensions=extensions, timeout=timeout_s
    )
    # The response body is not read: a receiver only needs to give a status.
    response = await client.send(request, stream=True, follow_redirects=False)
    await response.aclose()
    return response.status_code, _retry_after(response)


def _retryable(status: int) -> bool:
    return status in _RETRIED_STATUSES or status >= 500


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    if not value.isdigit():
        return None
    return min(float(value), MAX_RETRY_AFTER_S)


def _host_of(url: str) -> str:
    """Only the host goes to logs: paths and queries may carry the receiver's tokens."""
    try:
        return httpx.URL(url).host or "?"
    except httpx.InvalidURL:
        return "?"
