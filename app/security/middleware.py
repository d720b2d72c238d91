"""The security middleware stack, in order, and installing it on a FastAPI app.

Outermost first::

    AuditMiddleware            one chained line per request, whatever happens inside
    IdentityMiddleware         caller from the TLS layer (or a trusted proxy's forwarded cert)
    NetworkPolicyMiddleware    403 outside allowed_cidrs
    RequireIdentityMiddleware  401 without an identity
    RateLimitMiddleware        429 past the caller's token bucket
    BodyLimitMiddleware        413 past a body ceiling, 400 for non-UTF-8 or too deep JSON
    … the application (routes declare roles with ``require_role``)
"""

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.security.audit.middleware import AuditMiddleware
from app.security.audit.sink import AuditSink
from app.security.config import SecuritySettings
from app.security.context import denial_reason, record_denial
from app.security.errors import AccessDeniedError, AuthenticationRequiredError
from app.security.identity import IdentityMiddleware, IdentityResolver, RequireIdentityMiddleware
from app.security.limits import DEFAULT_UPLOAD_PATH_PREFIXES, BodyLimitMiddleware, BodyLimits
from app.security.network import NetworkPolicy, NetworkPolicyMiddleware
from app.security.problem import PROBLEM_CONTENT_TYPE, TITLES
from app.security.ratelimit import RateLimiter, RateLimitMiddleware


def install_security(
    app: FastAPI,
    settings: SecuritySettings,
    audit_sink: AuditSink,
    *,
    insecure_dev: bool = False,
    dev_identity: str = "dev",
    anonymous_paths: frozenset[str] = frozenset(),
    upload_path_prefixes: tuple[str, ...] = DEFAULT_UPLOAD_PATH_PREFIXES,
) -> None:
    """Add the security middlewares (see the module docstring) and their error handlers.

    Call it once, after every other ``add_middleware``: the stack must be outermost so that
    refused requests are audited and nothing runs before the network policy.
    ``anonymous_paths`` (exact paths, e.g. ``{"/healthz"}``) are served without an identity
    where the transport allows it; over mTLS every connection has one anyway.
    ``upload_path_prefixes`` name the routes that take raw uploads (the large body ceiling).
    """
    resolver = IdentityResolver(settings, insecure_dev=insecure_dev, dev_identity=dev_identity)
    limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    # add_middleware wraps: the last one added is the outermost.
    limits = BodyLimits.from_settings(settings, upload_path_prefixes)
    app.add_middleware(BodyLimitMiddleware, limits=limits)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(RequireIdentityMiddleware, anonymous_paths=anonymous_paths)
    app.add_middleware(NetworkPolicyMiddleware, policy=NetworkPolicy.from_settings(settings))
    app.add_middleware(IdentityMiddleware, resolver=resolver)
    app.add_middleware(AuditMiddleware, sink=audit_sink)
    app.add_exception_handler(AccessDeniedError, _security_problem)
    app.add_exception_handler(AuthenticationRequiredError, _security_problem)


async def _security_problem(request: Request, error: Exception) -> JSONResponse:
    status = 401 if isinstance(error, AuthenticationRequiredError) else 403
    if denial_reason(request.scope) is None:
        record_denial(request.scope, str(error))
    return JSONResponse(
        {"type": "about:blank", "title": TITLES[status], "status": status, "detail": str(error)},
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE.decode(),
    )
