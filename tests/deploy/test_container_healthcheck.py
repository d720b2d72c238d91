"""The image's health probe: GET /healthz over mutual TLS, healthy only on a 200.

A real TLS server on loopback requires client certificates from a test CA (trustme), as
the service does; the probe runs as Docker runs it, a separate Python process.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme

from tests.deploy.conftest import REPOSITORY

PROBE = REPOSITORY / "deploy" / "docker" / "healthcheck.py"
SERVICE_NAME = "enclave.internal"


class HealthHandler(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = type(self).status if self.path == "/healthz" else 404
        body = b'{"status":"ok"}' if code == 200 else b"{}"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert(SERVICE_NAME)
    probe = ca.issue_cert("healthcheck@enclave")
    foreign = stranger.issue_cert("healthcheck@enclave")
    paths = {
        "ca": directory / "ca.pem",
        "stranger_ca": directory / "stranger-ca.pem",
        "server": directory / "server.pem",
        "probe": directory / "probe.pem",
        "foreign": directory / "foreign.pem",
    }
    ca.cert_pem.write_to_path(paths["ca"])
    stranger.cert_pem.write_to_path(paths["stranger_ca"])
    server.private_key_and_cert_chain_pem.write_to_path(paths["server"])
    probe.private_key_and_cert_chain_pem.write_to_path(paths["probe"])
    foreign.private_key_and_cert_chain_pem.write_to_path(paths["foreign"])
    return paths


@pytest.fixture
def server(pki: dict[str, Path]) -> Iterator[tuple[int, type[HealthHandler]]]:
    handler = type("Handler", (HealthHandler,), {"status": 200})
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(pki["server"])
    context.load_verify_locations(pki["ca"])
    context.verify_mode = ssl.CERT_REQUIRED
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd.server_address[1], handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def probe(port: int, pki: dict[str, Path], **overrides: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "ENCLAVE_HEALTHCHECK_URL": f"https://127.0.0.1:{port}/healthz",
        "ENCLAVE_HEALTHCHECK_CA": str(pki["ca"]),
        "ENCLAVE_HEALTHCHECK_CERT": str(pki["probe"]),
        "ENCLAVE_HEALTHCHECK_KEY": str(pki["probe"]),
        "ENCLAVE_HEALTHCHECK_TIMEOUT": "5",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, str(PROBE)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=30,
        check=False,
    )


def test_healthy_service_passes(server, pki):
    port, _ = server
    result = probe(port, pki)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "healthy"


def test_server_name_is_verified_when_given(server, pki):
    port, _ = server
    assert probe(port, pki, ENCLAVE_HEALTHCHECK_SERVER_NAME=SERVICE_NAME).returncode == 0
    wrong = probe(port, pki, ENCLAVE_HEALTHCHECK_SERVER_NAME="other.internal")
    assert wrong.returncode == 1
    assert "unhealthy" in wrong.stderr


def test_unhealthy_answer_fails(server, pki):
    port, handler = server
    handler.status = 503
    result = probe(port, pki)
    assert result.returncode == 1
    assert "answered 503" in result.stderr


def test_client_certificate_from_another_ca_is_refused(server, pki):
    port, _ = server
    result = probe(
        port,
        pki,
        ENCLAVE_HEALTHCHECK_CERT=str(pki["foreign"]),
        ENCLAVE_HEALTHCHECK_KEY=str(pki["foreign"]),
    )
    assert result.returncode == 1
    assert "unhealthy" in result.stderr


def test_server_outside_the_trusted_ca_is_refused(server, pki):
    port, _ = server
    result = probe(port, pki, ENCLAVE_HEALTHCHECK_CA=str(pki["stranger_ca"]))
    assert result.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr


def test_nothing_listening_is_unhealthy(pki):
    result = probe(1, pki)
    assert result.returncode == 1
    assert result.stderr.startswith("unhealthy:")
