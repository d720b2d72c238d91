"""The client certificate a trusted proxy forwards after terminating mTLS itself.

Accepted forms of the header value: Envoy's ``X-Forwarded-Client-Cert`` (``By=…;Cert="…"``,
the element added by the nearest proxy, i.e. the rightmost, is used) or a URL-encoded PEM
(nginx ``$ssl_client_escaped_cert``). The header is read only when the socket peer is a
trusted proxy; even then the certificate is verified again here against the same CA bundle
and CRL as direct connections, so a proxy misconfiguration cannot mint identities.
"""

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from app.security.errors import ForwardedCertificateError

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
# Web PKI rules for the leaf, except that a SAN is optional: client certificates often name
# the caller by subject CN only, and the TLS handshake accepts them too.
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
)


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for character in text:
        if character == '"':
            quoted = not quoted
        if character == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(character)
    parts.append("".join(current))
    return parts


def forwarded_certificate_pem(value: str) -> str:
    """The PEM certificate carried by a forwarded-certificate header value."""
    value = value.strip()
    if not unquote(value).lstrip().startswith(PEM_BEGIN):
        elements = [e for e in _split_outside_quotes(value, ",") if e.strip()]
        if not elements:
            raise ForwardedCertificateError("the forwarded-certificate header is empty")
        for pair in _split_outside_quotes(elements[-1], ";"):
            key, _, raw = pair.partition("=")
            if key.strip().lower() == "cert":
                value = raw.strip().strip('"')
                break
        else:
            raise ForwardedCertificateError("the forwarded-certificate header has no Cert=")
    pem = unquote(value)
    if not pem.lstrip().startswith(PEM_BEGIN):
        raise ForwardedCertificateError("the forwarded certificate is not a PEM certificate")
    return pem


class ForwardedCertificateVerifier:
    """Verifies forwarded certificates against the CA bundle and (if given) the CRL."""

    def __init__(self, ca_bundle: Path, crl: Path | None) -> None:
        self.ca_bundle = ca_bundle
        self.crl_path = crl
        self._crl_state: tuple[float, x509.CertificateRevocationList] | None = None
        authorities = x509.load_pem_x509_certificates(ca_bundle.read_bytes())
        self.authorities = authorities
        self.store = Store(authorities)

    def verify(self, pem: str, now: datetime | None = None) -> x509.Certificate:
        """The certificate, if it chains to the CA, is in its validity period and not revoked."""
        try:
            certificate = x509.load_pem_x509_certificate(pem.encode("ascii"))
        except ValueError as error:
            raise ForwardedCertificateError("the forwarded certificate cannot be parsed") from error
        verifier = (
            PolicyBuilder()
            .store(self.store)
            .time(now or datetime.now(UTC))
            .extension_policies(
                ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_EE_POLICY
            )
            .build_client_verifier()
        )
        try:
            verifier.verify(certificate, [])
        except VerificationError as error:
            raise ForwardedCertificateError(
                f"the forwarded certificate does not verify: {error}"
            ) from error
        self._check_revocation(certificate)
        return certificate

    def _check_revocation(self, certificate: x509.Certificate) -> None:
        if self.crl_path is None:
            return
        crl = self._current_crl(self.crl_path)
        issuer = next((ca for ca in self.authorities if ca.subject == crl.issuer), None)
        if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise ForwardedCertificateError("the CRL is not signed by a configured CA")
        if crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None:
            raise ForwardedCertificateError("the forwarded certificate is revoked")

    def _current_crl(self, path: Path) -> x509.CertificateRevocationList:
        """The CRL, re-read when its file changes (``enclave certs revoke`` rewrites it)."""
        modified = path.stat().st_mtime
        if self._crl_state is None or self._crl_state[0] != modified:
            crl = x509.load_pem_x509_crl(path.read_bytes())
            self._crl_state = (modified, crl)
        return self._crl_state[1]
