"""Real TLS handshakes on loopback: who gets in, and what the service then knows about them."""

import socket
import ssl

import httpx
import pytest

from app.security.errors import TlsConfigurationError
from app.security.serving import server_config
from app.security.tls import build_server_context
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import client_context, make_app, mtls_client, serve

REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


@pytest.fixture
def live(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(base_settings(pki), log) as url:
        yield url, log


def test_valid_client_certificate_is_accepted_and_its_identity_recorded(pki, live):
    url, log = live
    with mtls_client(pki, "alice", url) as client:
        response = client.get("/whoami")
    assert response.status_code == 200
    assert response.json() == {
        "name": "alice",
        "roles": ["reader", "submitter"],
        "source": "127.0.0.1",
        "auth": "mtls",
    }
    [line] = audit_lines(log)
    assert line["identity"] == "alice"
    assert line["auth"] == "mtls"
    assert line["outcome"] == "allowed"
    assert line["route"] == "/whoami"
    assert line["request_id"] == response.headers["x-request-id"]


def test_no_client_certificate_is_refused_in_the_handshake(pki, live):
    url, log = live
    with mtls_client(pki, None, url) as client, pytest.raises(REFUSED):
        client.get("/whoami")
    assert audit_lines(log) == []  # refused before HTTP: nothing reached the application


def test_certificate_from_another_ca_is_refused(pki, foreign_pki, live):
    url, log = live
    # trusts our server, presents the foreign CA's "alice" (same CA name, another key)
    context = client_context(pki, None)
    context.load_cert_chain(foreign_pki.client_cert("alice"), foreign_pki.client_key("alice"))
    with mtls_client(pki, None, url, context=context) as client, pytest.raises(REFUSED):
        client.get("/whoami")
    assert audit_lines(log) == []


def test_expired_certificate_is_refused(pki, live):
    url, log = live
    with mtls_client(pki, "expired", url) as client, pytest.raises(REFUSED):
        client.get("/whoami")
    assert audit_lines(log) == []


def test_revoked_certificate_is_refused_when_a_crl_is_configured(pki, live):
    url, log = live
    with mtls_client(pki, "mallory", url) as client, pytest.raises(REFUSED):
        client.get("/whoami")
    assert audit_lines(log) == []


def test_revoked_certificate_passes_without_a_crl_so_the_crl_is_what_refuses_it(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(base_settings(pki, tls_crl=None), log) as url, mtls_client(pki, "mallory", url) as c:
        assert c.get("/whoami").json()["name"] == "mallory"


def test_plain_http_to_the_tls_port_gets_no_http_answer(live):
    url, log = live
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = raw.recv(1024)
    assert not reply.startswith(b"HTTP/")
    assert audit_lines(log) == []


def test_server_context_refuses_tls_below_1_2_and_requires_client_certificates(pki):
    context = build_server_context(base_settings(pki))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.verify_flags & ssl.VERIFY_CRL_CHECK_LEAF


def test_serving_without_tls_settings_is_refused_unless_insecure_dev(tmp_path):
    from app.security.config import SecuritySettings

    app = make_app(SecuritySettings(), tmp_path / "audit.jsonl")
    with pytest.raises(TlsConfigurationError, match="--insecure-dev"):
        server_config(app, SecuritySettings(), "127.0.0.1", 8443)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.10.5", "example.com"])
def test_insecure_dev_mode_binds_loopback_only(tmp_path, host):
    from app.security.config import SecuritySettings

    app = make_app(SecuritySettings(), tmp_path / "audit.jsonl", insecure_dev=True)
    with pytest.raises(TlsConfigurationError, match="loopback"):
        server_config(app, SecuritySettings(), host, 8080, insecure_dev=True)


def test_insecure_dev_mode_serves_plain_http_on_loopback_as_the_dev_identity(tmp_path):
    from app.security.config import SecuritySettings

    log = tmp_path / "audit.jsonl"
    with serve(SecuritySettings(), log, insecure_dev=True) as url:
        assert url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/whoami")
    assert response.json()["name"] == "dev"
    assert response.json()["auth"] == "insecure_dev"
    assert audit_lines(log)[0]["auth"] == "insecure_dev"


def test_a_certificate_revoked_while_the_service_runs_is_refused_within_a_second(tmp_path):
    import time

    from app.security import certs
    from app.security.revocation import RECHECK_AFTER_S

    pki = certs.init_ca(tmp_path / "pki")
    certs.issue_server_cert(pki)
    carol = certs.issue_client_cert(pki, "carol", organizational_unit="reader")
    log = tmp_path / "audit.jsonl"
    with serve(base_settings(pki), log) as url, mtls_client(pki, "carol", url) as client:
        assert client.get("/whoami").status_code == 200
        certs.revoke(pki, carol.certificate)
        time.sleep(RECHECK_AFTER_S)
        refused = client.get("/whoami")  # same connection, no restart
    assert refused.status_code == 401
    assert audit_lines(log)[-1]["reason"] == "the client certificate has been revoked"
