"""How uvicorn serves the app: HTTPS with client certificates, or plain HTTP on loopback for dev.

uvicorn (0.54) does not put the TLS session into the ASGI scope, so the HTTP protocol is
subclassed to add the ASGI TLS extension (``scope["extensions"]["tls"]``) from the
connection's verified peer certificate. That extension, set by the server and not by any
header, is where ``IdentityMiddleware`` reads who the caller is.
"""

import asyncio
import ipaddress
import logging
import ssl
from typing import Any

import uvicorn
from cryptography import x509
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.security.config import SecuritySettings
from app.security.errors import TlsConfigurationError
from app.security.tls import build_server_context

logger = logging.getLogger(__name__)

TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
INSECURE_DEV_WARNING = (
    "INSECURE DEV MODE: plain HTTP without client certificates on %s:%d. Every caller is "
    "the dev identity. Never use this outside a developer's machine."
)


def tls_extension(ssl_object: ssl.SSLObject) -> dict[str, Any]:
    """The ASGI TLS extension for a connection whose handshake has completed."""
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name: str | None = None
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    version = ssl_object.version()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": TLS_VERSIONS.get(version) if version else None,
        "cipher_suite": None,
    }


class _WithTlsExtension:
    """Adds one connection's TLS extension to the scope of each request on it."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            extensions = dict(scope.get("extensions") or {})
            extensions["tls"] = dict(self.tls)
            scope["extensions"] = extensions
        await self.app(scope, receive, send)


class MutualTlsHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus the peer certificate in the scope."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.app = _WithTlsExtension(self.app, tls_extension(ssl_object))


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def uvicorn_options(
    security: SecuritySettings, host: str, port: int, insecure_dev: bool = False
) -> dict[str, Any]:
    """uvicorn keyword arguments: mTLS only, or plain HTTP on loopback with ``insecure_dev``.

    Pure data apart from loading the TLS files (so a bad certificate fails here, before
    serving). uvicorn's proxy-header rewriting and access log are off: the network policy
    reads ``X-Forwarded-For`` itself (trusted proxies only), and an access log would record
    query strings, which may hold signed upload tokens.
    """
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "proxy_headers": False,
        "access_log": False,
        "server_header": False,
        "ws": "none",
    }
    if insecure_dev:
        if not is_loopback_host(host):
            raise TlsConfigurationError(
                f"--insecure-dev serves plain HTTP and binds loopback only; {host} is not "
                "loopback (use 127.0.0.1 or ::1)"
            )
        return {**options, "http": "httptools"}
    if not security.tls_configured:
        raise TlsConfigurationError(
            "the service serves HTTPS with client certificates only: set security.tls_cert, "
            "tls_key and tls_ca (`enclave certs init DIR` makes a dev PKI), or pass "
            "--insecure-dev for plain HTTP on loopback"
        )
    context = build_server_context(security)
    return {
        **options,
        "http": MutualTlsHttpProtocol,
        "ssl_context_factory": lambda _config, _default: context,
    }


def server_config(
    app: ASGIApp,
    security: SecuritySettings,
    host: str,
    port: int,
    insecure_dev: bool = False,
    **uvicorn_extra: Any,
) -> uvicorn.Config:
    """A uvicorn ``Config`` for ``app`` with ``uvicorn_options`` (and ``uvicorn_extra``)."""
    options = uvicorn_options(security, host, port, insecure_dev)
    if insecure_dev:
        logger.warning(INSECURE_DEV_WARNING, host, port)
    return uvicorn.Config(app, **{"lifespan": "on", **options, **uvicorn_extra})
