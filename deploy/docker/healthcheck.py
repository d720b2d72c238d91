"""Container health check: GET /healthz over mutual TLS on loopback; exit 0 when it answers 200.

The server accepts only clients with a certificate, so the check presents one (a client
certificate issued for health checks, mounted with the server's files). It verifies the
server's chain against the CA it is given; the host name is checked only when
ENCLAVE_HEALTHCHECK_SERVER_NAME names one, because the probe dials 127.0.0.1 while the
server certificate names the service's DNS name. Standard library only: it runs in the
image's Python without importing the service.

Environment (defaults match the image's /run/secrets/enclave mount):
  ENCLAVE_HEALTHCHECK_URL          https://127.0.0.1:443/healthz
  ENCLAVE_HEALTHCHECK_CA           /run/secrets/enclave/server-ca.pem
  ENCLAVE_HEALTHCHECK_CERT         /run/secrets/enclave/healthcheck.pem
  ENCLAVE_HEALTHCHECK_KEY          /run/secrets/enclave/healthcheck.key
  ENCLAVE_HEALTHCHECK_SERVER_NAME  (unset: chain checked, host name not)
  ENCLAVE_HEALTHCHECK_TIMEOUT      3 (seconds)
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from collections.abc import Mapping
from urllib.parse import urlsplit

SECRETS = "/run/secrets/enclave"
DEFAULTS = {
    "ENCLAVE_HEALTHCHECK_URL": "https://127.0.0.1:443/healthz",
    "ENCLAVE_HEALTHCHECK_CA": f"{SECRETS}/server-ca.pem",
    "ENCLAVE_HEALTHCHECK_CERT": f"{SECRETS}/healthcheck.pem",
    "ENCLAVE_HEALTHCHECK_KEY": f"{SECRETS}/healthcheck.key",
    "ENCLAVE_HEALTHCHECK_TIMEOUT": "3",
}


class HealthCheckError(Exception):
    """The service is not healthy, or the probe could not ask it; the message says which."""


def _setting(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name) or DEFAULTS[name]


def build_context(environ: Mapping[str, str]) -> ssl.SSLContext:
    """A TLS >= 1.2 client context that trusts the server CA and presents the probe's cert."""
    context = ssl.create_default_context(cafile=_setting(environ, "ENCLAVE_HEALTHCHECK_CA"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = bool(environ.get("ENCLAVE_HEALTHCHECK_SERVER_NAME"))
    context.load_cert_chain(
        _setting(environ, "ENCLAVE_HEALTHCHECK_CERT"), _setting(environ, "ENCLAVE_HEALTHCHECK_KEY")
    )
    return context


def probe(environ: Mapping[str, str]) -> int:
    """Return the HTTP status of GET on the health URL; raise HealthCheckError if none came."""
    url = urlsplit(_setting(environ, "ENCLAVE_HEALTHCHECK_URL"))
    if url.scheme != "https" or not url.hostname:
        raise HealthCheckError(f"health URL must be https://host[:port]/path, not {url.geturl()}")
    server_name = environ.get("ENCLAVE_HEALTHCHECK_SERVER_NAME") or url.hostname
    try:
        timeout = float(_setting(environ, "ENCLAVE_HEALTHCHECK_TIMEOUT"))
        context = build_context(environ)
        with (
            socket.create_connection((url.hostname, url.port or 443), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            request = (
                f"GET {url.path or '/'} HTTP/1.1\r\nHost: {server_name}\r\n"
                "Connection: close\r\nUser-Agent: enclave-healthcheck\r\n\r\n"
            )
            tls.sendall(request.encode("ascii"))
            status_line = tls.makefile("rb").readline(1024).decode("latin-1")
    except (OSError, ValueError) as error:
        # ssl.SSLError is an OSError; ValueError covers an unreadable timeout setting.
        raise HealthCheckError(f"{type(error).__name__}: {error}") from error
    parts = status_line.split()
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise HealthCheckError(f"not an HTTP response: {status_line.strip()[:80]!r}")
    return int(parts[1])


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        status = probe(environ)
    except HealthCheckError as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: /healthz answered {status}", file=sys.stderr)
        return 1
    print("healthy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
