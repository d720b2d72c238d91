"""The CRL behind per-request revocation checks: re-read when it changes, looked at no more
than once per interval, the last good one kept while a new one is unreadable."""

from pathlib import Path

import pytest
from cryptography import x509

from app.security import certs
from app.security.errors import TlsConfigurationError
from app.security.revocation import RevocationList


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def pki(tmp_path: Path) -> certs.DevPki:
    return certs.init_ca(tmp_path / "pki")


def test_a_revocation_counts_from_the_first_check_after_the_interval(pki: certs.DevPki) -> None:
    carol = certs.issue_client_cert(pki, "carol", organizational_unit="reader")
    clock = Clock()
    revocations = RevocationList(pki.crl, [load(pki.ca_cert)], recheck_after_s=1.0, clock=clock)
    certificate = load(carol.certificate)
    assert not revocations.is_revoked(certificate)

    certs.revoke(pki, carol.certificate)
    clock.now += 0.5
    assert not revocations.is_revoked(certificate)  # the file is not looked at per request
    clock.now += 0.5
    assert revocations.is_revoked(certificate)


def test_an_unreadable_crl_keeps_the_last_good_one_but_none_at_all_is_refused(
    pki: certs.DevPki,
) -> None:
    mallory = certs.issue_client_cert(pki, "mallory", organizational_unit="reader")
    certs.revoke(pki, mallory.certificate)
    clock = Clock()
    revocations = RevocationList(pki.crl, [load(pki.ca_cert)], recheck_after_s=1.0, clock=clock)
    certificate = load(mallory.certificate)
    assert revocations.is_revoked(certificate)

    pki.crl.write_text("being rewritten")
    clock.now += 5
    assert revocations.is_revoked(certificate)

    fresh = RevocationList(pki.crl, [load(pki.ca_cert)], clock=clock)
    with pytest.raises(TlsConfigurationError, match="unusable"):
        fresh.is_revoked(certificate)
