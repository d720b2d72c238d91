"""A trusted proxy that terminated mTLS forwards the client certificate; nobody else can."""

from urllib.parse import quote

import pytest

from app.security.errors import ForwardedCertificateError
from app.security.forwarded import forwarded_certificate_pem
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import mtls_client, serve


def xfcc(pem: str) -> str:
    """An Envoy-style X-Forwarded-Client-Cert value carrying ``pem``."""
    return f'By=spiffe://enclave/proxy;Hash=00ff;Cert="{quote(pem, safe="")}";Subject="CN=x"'


@pytest.fixture
def behind_proxy(pki, tmp_path):
    """127.0.0.1 is the trusted proxy; 127.0.0.2 is an ordinary client."""
    settings = base_settings(pki, trusted_proxies=["127.0.0.1/32"], allowed_cidrs=["127.0.0.0/8"])
    log = tmp_path / "audit.jsonl"
    with serve(settings, log) as url:
        yield url, log


def test_trusted_proxy_forwards_the_callers_certificate(pki, behind_proxy):
    url, log = behind_proxy
    alice = pki.client_cert("alice").read_text()
    with mtls_client(pki, "proxy", url, local_address="127.0.0.1") as proxy:
        response = proxy.get("/whoami", headers={"X-Forwarded-Client-Cert": xfcc(alice)})
    assert response.json()["name"] == "alice"
    assert response.json()["auth"] == "forwarded_mtls"
    assert audit_lines(log)[0]["identity"] == "alice"


def test_forwarded_certificate_header_from_an_untrusted_peer_is_ignored(pki, behind_proxy):
    url, _ = behind_proxy
    alice = pki.client_cert("alice").read_text()
    with mtls_client(pki, "rita", url, local_address="127.0.0.2") as rita:
        response = rita.get("/whoami", headers={"X-Forwarded-Client-Cert": xfcc(alice)})
        submit = rita.post("/jobs", headers={"X-Forwarded-Client-Cert": xfcc(alice)})
    assert response.json()["name"] == "rita"
    assert response.json()["auth"] == "mtls"
    assert submit.status_code == 403


@pytest.mark.parametrize("name", ["mallory", "expired"])
def test_proxy_cannot_forward_a_revoked_or_expired_certificate(pki, behind_proxy, name):
    url, log = behind_proxy
    pem = pki.client_cert(name).read_text()
    with mtls_client(pki, "proxy", url, local_address="127.0.0.1") as proxy:
        response = proxy.get("/whoami", headers={"X-Forwarded-Client-Cert": xfcc(pem)})
    assert response.status_code == 401
    assert audit_lines(log)[0]["outcome"] == "denied"


def test_proxy_cannot_forward_a_certificate_from_another_ca(pki, foreign_pki, behind_proxy):
    url, _ = behind_proxy
    pem = foreign_pki.client_cert("alice").read_text()
    with mtls_client(pki, "proxy", url, local_address="127.0.0.1") as proxy:
        response = proxy.get("/whoami", headers={"X-Forwarded-Client-Cert": quote(pem)})
    assert response.status_code == 401


def test_forwarded_header_forms(pki):
    pem = pki.client_cert("alice").read_text()
    assert forwarded_certificate_pem(xfcc(pem)) == pem
    assert forwarded_certificate_pem(quote(pem, safe="")) == pem  # nginx escaped cert
    # two proxies appended elements: the nearest (rightmost) one is used
    assert forwarded_certificate_pem(f'Cert="bogus",{xfcc(pem)}') == pem
    for bad in ["", "By=x;Hash=y", 'Cert="not a pem"']:
        with pytest.raises(ForwardedCertificateError):
            forwarded_certificate_pem(bad)
