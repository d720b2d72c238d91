"""Who is calling: an ``Identity`` built from the TLS layer, and the middlewares that set it.

The identity comes from the verified client certificate that the server put in the ASGI
TLS extension. The one exception: when the socket peer is a configured trusted proxy that
terminated mTLS, the certificate it forwards in ``forwarded_cert_header`` is used (and
verified again). A header from any other peer is never read.
"""

import functools
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send

from app.security.config import SecuritySettings
from app.security.context import IDENTITY_KEY, record_denial, request_identity, request_state
from app.security.errors import ForwardedCertificateError, TlsConfigurationError
from app.security.forwarded import ForwardedCertificateVerifier, forwarded_certificate_pem
from app.security.network import NetworkPolicy, scope_client_address
from app.security.problem import send_problem
from app.security.revocation import RevocationList
from app.security.roles import Role, RoleMapping, expand_roles
from app.security.tls import CertificateSubject, describe_certificate


class AuthMethod(StrEnum):
    MTLS = "mtls"  # a client certificate verified in this server's handshake
    FORWARDED_MTLS = "forwarded_mtls"  # verified by a trusted proxy, re-verified here
    INSECURE_DEV = "insecure_dev"  # plain HTTP on loopback, the configured dev identity


@dataclass(frozen=True)
class Identity:
    """The authenticated caller of one request."""

    name: str
    roles: frozenset[Role]
    source: str
    authenticated_by: AuthMethod
    organizational_units: tuple[str, ...] = ()
    certificate_fingerprint: str | None = None

    def has_role(self, role: Role) -> bool:
        return role in self.roles


class IdentityResolver:
    """Builds the ``Identity`` of a request from its scope, or says why it cannot."""

    def __init__(
        self,
        settings: SecuritySettings,
        *,
        insecure_dev: bool = False,
        dev_identity: str = "dev",
    ) -> None:
        self.settings = settings
        self.policy = NetworkPolicy.from_settings(settings)
        self.roles = RoleMapping(settings.roles_by_identity, settings.roles_by_ou)
        self.insecure_dev = insecure_dev
        self.dev_identity = dev_identity
        self.forwarded_header = settings.forwarded_cert_header.encode("latin-1")
        authorities = _load_authorities(settings)
        self.revocations = (
            RevocationList(settings.tls_crl, authorities) if settings.tls_crl is not None else None
        )
        self.forwarded: ForwardedCertificateVerifier | None = None
        if settings.trusted_proxies and authorities:
            self.forwarded = ForwardedCertificateVerifier(authorities, self.revocations)

    def resolve(self, scope: Scope) -> Identity | str:
        """The caller's identity, or the reason (for the audit line) why there is none."""
        address = scope_client_address(self.policy, scope)
        source = str(address) if address else "unknown"
        client = scope.get("client")
        if client and self.policy.is_trusted_proxy(client[0]):
            forwarded = [v for k, v in scope.get("headers", []) if k == self.forwarded_header]
            if forwarded:
                return self._from_forwarded(forwarded[-1].decode("latin-1"), source)
        tls = (scope.get("extensions") or {}).get("tls")
        chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
        if chain:
            return self._from_direct_certificate(chain[0], source)
        if self.insecure_dev:
            roles = self.roles.roles_for(self.dev_identity) or expand_roles({Role.SUBMITTER})
            return Identity(self.dev_identity, roles, source, AuthMethod.INSECURE_DEV)
        return "no verified client certificate on the connection"

    def _from_direct_certificate(self, pem: str, source: str) -> Identity | str:
        """The handshake verified ``pem``; the CRL may have changed since start-up, though."""
        certificate, subject = _parse_client_certificate(pem)
        if self.revocations is not None:
            try:
                if self.revocations.is_revoked(certificate):
                    return "the client certificate has been revoked"
            except TlsConfigurationError as error:
                return str(error)
        return self._from_certificate(subject, source, AuthMethod.MTLS)

    def _from_forwarded(self, value: str, source: str) -> Identity | str:
        if self.forwarded is None:
            return "trusted proxies are configured without a CA bundle to verify forwarded certs"
        try:
            pem = forwarded_certificate_pem(value)
            certificate = self.forwarded.verify(pem)
        except (ForwardedCertificateError, TlsConfigurationError) as error:
            return str(error)
        return self._from_certificate(
            describe_certificate(certificate), source, AuthMethod.FORWARDED_MTLS
        )

    def _from_certificate(
        self, subject: CertificateSubject, source: str, method: AuthMethod
    ) -> Identity | str:
        name = subject.name(self.settings.identity_field)
        if name is None:
            return "the client certificate names no subject CN, SAN URI or DNS name"
        return Identity(
            name=name,
            roles=self.roles.roles_for(name, subject.organizational_units),
            source=source,
            authenticated_by=method,
            organizational_units=subject.organizational_units,
            certificate_fingerprint=subject.fingerprint_sha256,
        )


@functools.lru_cache(maxsize=1024)
def _parse_client_certificate(pem: str) -> tuple[x509.Certificate, CertificateSubject]:
    """Parsed once per certificate, not per request: a keep-alive connection sends the same
    one with every request. Revocation is still checked per request, by the caller."""
    certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
    return certificate, describe_certificate(certificate)


def _load_authorities(settings: SecuritySettings) -> list[x509.Certificate]:
    if settings.tls_ca is None:
        return []
    try:
        return x509.load_pem_x509_certificates(settings.tls_ca.read_bytes())
    except (OSError, ValueError) as error:
        raise TlsConfigurationError(
            f"cannot read the client CA bundle {settings.tls_ca}: {error}"
        ) from error


class IdentityMiddleware:
    """Records the caller's identity on the request (never refuses: see ``RequireIdentity…``)."""

    def __init__(self, app: ASGIApp, resolver: IdentityResolver) -> None:
        self.app = app
        self.resolver = resolver

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            resolved = self.resolver.resolve(scope)
            if isinstance(resolved, Identity):
                request_state(scope)[IDENTITY_KEY] = resolved
            else:
                record_denial(scope, resolved)
        await self.app(scope, receive, send)


class RequireIdentityMiddleware:
    """Answers 401 to any request without an identity, except on ``anonymous_paths``.

    The exemption is by exact path and meant for liveness probes (``/healthz``), which say
    nothing about jobs; the network policy and the audit log still apply to them.
    """

    def __init__(self, app: ASGIApp, anonymous_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.anonymous_paths = anonymous_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] not in ("http", "websocket")
            or request_identity(scope) is not None
            or (scope["type"] == "http" and scope.get("path") in self.anonymous_paths)
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send_problem(send, 401, "a verified client certificate is required")
