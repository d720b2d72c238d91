"""The client certificate a trusted proxy forwards after terminating mTLS itself.

Accepted forms of the header value: Envoy's ``X-Forwarded-Client-Cert`` (``By=…;Cert="…"``,
the element added by the nearest proxy, i.e. the rightmost, is used) or a URL-encoded PEM
(nginx ``$ssl_client_escaped_cert``). The header is read only when the socket peer is a
trusted proxy; even then the certificate is verified again here against the same CA bundle
and CRL as direct connections, so a proxy misconfiguration cannot mint identities.
"""

from datetime import UTC, datetime
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
from app.security.revocation import RevocationList

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

    def __init__(self, authorities: list[x509.Certificate], revocations: RevocationList | None):
        self.store = Store(authorities)
        self.revocations = revocations

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
        if self.revocations is not None and self.revocations.is_revoked(certificate):
            raise ForwardedCertificateError("the forwarded certificate is revoked")
        return certificate
