"""Authorisation: routes declare the role they need; callers without it get 403.

``require_role(Role.SUBMITTER)`` is a dependency that returns the caller only if it holds
that role (or one implying it). ``require_role_by_method`` declares a whole router at once:
reads (GET, HEAD) need one role, everything else another. Both take the dependency that
yields the caller (``caller=``), so an app that wraps identity in its own dependency keeps
one source of truth. Whether a caller may touch a given job (its own, or any for an
auditor) is the job service's check, made with ``Identity.has_role``.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.security.context import record_denial, request_identity
from app.security.errors import AccessDeniedError, AuthenticationRequiredError
from app.security.identity import Identity
from app.security.roles import Role

READ_METHODS = frozenset({"GET", "HEAD"})
CallerDependency = Callable[..., Awaitable[Identity]]
"""An ``async def`` dependency: FastAPI runs a plain ``def`` one in a worker thread."""


async def current_identity(request: Request) -> Identity:
    """The caller of this request (set by ``IdentityMiddleware`` from the TLS layer)."""
    identity = request_identity(request.scope)
    if identity is None:
        raise AuthenticationRequiredError("a verified client certificate is required")
    return identity


CurrentIdentity = Annotated[Identity, Depends(current_identity)]


def _admit(request: Request, identity: Identity, roles: tuple[Role, ...]) -> Identity:
    if any(identity.has_role(role) for role in roles):
        return identity
    needed = " or ".join(role.value for role in roles)
    record_denial(request.scope, f"{identity.name} lacks role {needed}")
    raise AccessDeniedError(f"this action needs the {needed} role")


def require_role(*roles: Role, caller: CallerDependency = current_identity) -> CallerDependency:
    """A dependency admitting callers that hold any of ``roles``; returns the caller."""
    if not roles:
        raise ValueError("require_role needs at least one role")

    async def caller_with_role(
        request: Request, identity: Annotated[Identity, Depends(caller)]
    ) -> Identity:
        return _admit(request, identity, roles)

    return caller_with_role


def require_role_by_method(
    read: Role, write: Role, caller: CallerDependency = current_identity
) -> CallerDependency:
    """A router-wide dependency: GET/HEAD need ``read``, other methods need ``write``."""

    async def caller_with_role(
        request: Request, identity: Annotated[Identity, Depends(caller)]
    ) -> Identity:
        needed = read if request.method in READ_METHODS else write
        return _admit(request, identity, (needed,))

    return caller_with_role
