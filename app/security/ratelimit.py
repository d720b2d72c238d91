"""Per-identity rate limit: a token bucket per caller; an empty bucket answers 429."""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.context import record_denial, request_identity
from app.security.identity import AuthMethod
from app.security.problem import send_problem

MAX_TRACKED_CALLERS = 10_000  # least recently seen callers are forgotten beyond this


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second sustained, ``burst`` at once, per caller name."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def acquire(self, caller: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds until a token is due."""
        now = self.clock()
        bucket = self._buckets.pop(caller, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[caller] = bucket
        if len(self._buckets) > MAX_TRACKED_CALLERS:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate


class RateLimitMiddleware:
    """Answers 429 with ``Retry-After`` once a caller's bucket is empty."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        identity = request_identity(scope)
        # In insecure dev mode every caller is the one dev identity: a per-identity limit
        # would be a global one, which is not what the setting means.
        if (
            scope["type"] != "http"
            or identity is None
            or identity.authenticated_by is AuthMethod.INSECURE_DEV
            or self.limiter.rate <= 0
        ):
            await self.app(scope, receive, send)
            return
        wait = self.limiter.acquire(identity.name)
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        record_denial(scope, "rate limit exceeded")
        retry_after = max(1, math.ceil(wait))
        await send_problem(
            send,
            429,
            f"rate limit exceeded for {identity.name}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )
