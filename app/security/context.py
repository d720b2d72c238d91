"""What the security layer records on a request's scope, for handlers and the audit line.

Values live in ``scope["state"]`` (Starlette's ``request.state``), which the server creates
per request; only the security middlewares write them.
"""

from typing import TYPE_CHECKING, Any

from starlette.types import Scope

if TYPE_CHECKING:
    from app.security.identity import Identity

SOURCE_KEY = "enclave_source_address"
IDENTITY_KEY = "enclave_identity"
REQUEST_ID_KEY = "request_id"
DENIAL_KEY = "enclave_denial"


def request_state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def source_address(scope: Scope) -> str | None:
    value = request_state(scope).get(SOURCE_KEY)
    return value if isinstance(value, str) else None


def request_identity(scope: Scope) -> "Identity | None":
    from app.security.identity import Identity

    value = request_state(scope).get(IDENTITY_KEY)
    return value if isinstance(value, Identity) else None


def record_denial(scope: Scope, reason: str) -> None:
    """Note why the security layer refused the request (goes to the audit line, not the client)."""
    request_state(scope)[DENIAL_KEY] = reason


REFUSED_KEY = "enclave_refused"


def record_refusal(scope: Scope, reason: str) -> None:
    """Note that the security layer answered the request itself with a refusal (a 413 for a
    body over its limit, say): audited as ``denied`` whatever the status."""
    record_denial(scope, reason)
    request_state(scope)[REFUSED_KEY] = True


def refused_by_security(scope: Scope) -> bool:
    return request_state(scope).get(REFUSED_KEY) is True


def denial_reason(scope: Scope) -> str | None:
    value = request_state(scope).get(DENIAL_KEY)
    return value if isinstance(value, str) else None


JOB_ID_KEY = "enclave_job_id"


def record_job_id(scope: Scope, job_id: object) -> None:
    """Name the job a request acted on, for the audit line (e.g. the id ``POST /jobs`` made)."""
    request_state(scope)[JOB_ID_KEY] = str(job_id)


def recorded_job_id(scope: Scope) -> str | None:
    value = request_state(scope).get(JOB_ID_KEY)
    return value if isinstance(value, str) else None
