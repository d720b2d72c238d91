"""One audit line per HTTP request, allowed or denied, written before the response starts.

The line is written when the application starts its response (the status is known then),
so no response leaves without its audit line: if the line cannot be written the caller
gets 503 instead. The route is the matched template (``/jobs/{job_id}``), never the raw
path or query string, which may carry tokens.
"""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.ids import random_uuid
from app.logs import REQUEST_ID
from app.security.audit.sink import AuditSink
from app.security.context import (
    REQUEST_ID_KEY,
    denial_reason,
    recorded_job_id,
    refused_by_security,
    request_identity,
    request_state,
    source_address,
)
from app.security.errors import AuditError
from app.security.problem import send_problem

logger = logging.getLogger(__name__)

DENIED_STATUSES = frozenset({401, 403, 429})
REQUEST_ID_HEADER = b"x-request-id"


def outcome_of(status: int, refused: bool = False) -> str:
    """``denied`` for 401/403/429 and for any refusal the security layer made (a body
    over its limit, say), ``error`` for 5xx, else ``allowed`` (a route's own 4xx included)."""
    if status >= 500:
        return "error"
    if status in DENIED_STATUSES or refused:
        return "denied"
    return "allowed"


def route_template(scope: Scope) -> str | None:
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


def audit_fields(scope: Scope, status: int, now: datetime) -> dict[str, Any]:
    """The audit record of a request that ended with ``status`` (chain fields come later)."""
    identity = request_identity(scope)
    client = scope.get("client")
    job_id = recorded_job_id(scope)
    if job_id is None:
        path_job = (scope.get("path_params") or {}).get("job_id")
        job_id = str(path_job) if path_job is not None else None
    outcome = outcome_of(status, refused=refused_by_security(scope))
    return {
        "time": now.isoformat(timespec="microseconds"),
        "request_id": request_state(scope).get(REQUEST_ID_KEY),
        "identity": identity.name if identity else None,
        "auth": identity.authenticated_by.value if identity else None,
        "source": source_address(scope) or (client[0] if client else None),
        "method": scope.get("method"),
        "route": route_template(scope),
        "job_id": job_id,
        "outcome": outcome,
        "status": status,
        "reason": denial_reason(scope) if outcome == "denied" else None,
    }


class AuditMiddleware:
    """Outermost security middleware: sees every request, including refused ones."""

    def __init__(
        self,
        app: ASGIApp,
        sink: AuditSink,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app = app
        self.sink = sink
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._lifespan_send(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = request_state(scope)
        request_id = state.setdefault(REQUEST_ID_KEY, random_uuid().hex)
        REQUEST_ID.set(request_id)  # log lines of this request carry its id
        recorded = False
        replaced = False

        async def audited_send(message: Message) -> None:
            nonlocal recorded, replaced
            if replaced:
                return  # the app's response was swapped for 503; drop the rest of it
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                try:
                    await self.sink.write(audit_fields(scope, message["status"], self.clock()))
                except AuditError as error:
                    logger.error("audit line not written, answering 503: %s", error)
                    replaced = True
                    await send_problem(send, 503, "the audit log is unavailable; retry later")
                    return
                headers = [*message.get("headers", []), (REQUEST_ID_HEADER, request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, audited_send)
        except Exception:
            if not recorded:
                try:
                    await self.sink.write(audit_fields(scope, 500, self.clock()))
                except AuditError as error:
                    logger.error("audit line of a failed request not written: %s", error)
            raise

    def _lifespan_send(self, send: Send) -> Send:
        """Open the sink before start-up completes, close it before shutdown completes."""

        async def lifespan_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    await self.sink.open()
                except AuditError as error:
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
            elif message["type"] == "lifespan.shutdown.complete":
                await self.sink.close()
            await send(message)

        return lifespan_send
