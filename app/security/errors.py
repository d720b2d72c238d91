"""Errors of the security layer.

::

    SecurityError                 a security component refused or failed, on purpose
    ├── TlsConfigurationError     the server's certificate, key, CA or CRL cannot be used
    ├── PkiError                  a dev PKI operation cannot be done (missing CA, bad name…)
    ├── ForwardedCertificateError a trusted proxy's forwarded certificate is unusable
    ├── AuditError                the audit log cannot be opened or written
    ├── AccessDeniedError         the caller lacks the role an action needs (403)
    └── AuthenticationRequiredError  no identity on a request that needs one (401)

The middlewares answer request-time refusals (401, 403, 429) as problem documents
themselves; the role dependency raises the last two above, which the exception handlers
installed by ``app.security.install`` render the same way.
"""


class SecurityError(Exception):
    """Base of the security layer's errors."""


class TlsConfigurationError(SecurityError):
    pass


class PkiError(SecurityError):
    pass


class ForwardedCertificateError(SecurityError):
    pass


class AuditError(SecurityError):
    pass


class AccessDeniedError(SecurityError):
    """The caller is authenticated but lacks the role the action needs (403)."""


class AuthenticationRequiredError(SecurityError):
    """No identity reached a handler that needs one (401); the middleware normally answers first."""
