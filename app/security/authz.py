"""Authorisation: every route declares the role it needs with ``require_role``.

``CurrentIdentity`` gives a handler the caller; ``require_role(Role.SUBMITTER)`` gives it the
caller only if it holds that role (or one implying it), else the request ends with 403.
Whether a caller may touch a given job (its own, or any for an auditor) is the job
service's check, made with ``Identity.has_role``.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from app.security.context import record_denial, request_identity
from app.security.errors import AccessDeniedError, AuthenticationRequiredError
from app.security.identity import Identity
from app.security.roles import Role


def current_identity(request: Request) -> Identity:
    """The caller of this request (set by ``IdentityMiddleware`` from the TLS layer)."""
    identity = request_identity(request.scope)
    if identity is None:
        raise AuthenticationRequiredError("a verified client certificate is required")
    return identity


CurrentIdentity = Annotated[Identity, Depends(current_identity)]


def require_role(*roles: Role) -> Callable[[Request, Identity], Identity]:
    """A dependency admitting callers that hold any of ``roles``; returns the caller."""
    if not roles:
        raise ValueError("require_role needs at least one role")
    needed = " or ".join(role.value for role in roles)

    def caller_with_role(request: Request, identity: CurrentIdentity) -> Identity:
        if any(identity.has_role(role) for role in roles):
            return identity
        record_denial(request.scope, f"{identity.name} lacks role {needed}")
        raise AccessDeniedError(f"this action needs the {needed} role")

    return caller_with_role
