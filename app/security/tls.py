"""The server's TLS context (mutual TLS) and the caller's names read from a verified certificate.

The context requires a client certificate (``CERT_REQUIRED``) that chains to the configured
CA bundle, refuses TLS below 1.2 and, when a CRL is configured, refuses revoked leaf
certificates (``VERIFY_CRL_CHECK_LEAF``). The handshake itself does the refusing: a
request never reaches the application without a verified certificate.
"""

import hashlib
import ssl
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from app.security.config import IdentityField, SecuritySettings
from app.security.errors import TlsConfigurationError


@dataclass(frozen=True)
class CertificateSubject:
    """The names a client certificate carries, as the identity layer needs them."""

    common_name: str | None
    organizational_units: tuple[str, ...]
    uris: tuple[str, ...]
    dns_names: tuple[str, ...]
    serial_hex: str
    fingerprint_sha256: str

    def name(self, preferred: IdentityField) -> str | None:
        """The caller's name: the preferred field first, then CN, URI, DNS in that order."""
        candidates: dict[IdentityField, str | None] = {
            IdentityField.COMMON_NAME: self.common_name,
            IdentityField.URI: self.uris[0] if self.uris else None,
            IdentityField.DNS: self.dns_names[0] if self.dns_names else None,
        }
        for field in (preferred, *IdentityField):
            if candidates[field]:
                return candidates[field]
        return None


def build_server_context(settings: SecuritySettings) -> ssl.SSLContext:
    """The server context: presents ``tls_cert``, demands a client certificate from ``tls_ca``."""
    if settings.tls_cert is None or settings.tls_key is None or settings.tls_ca is None:
        raise TlsConfigurationError(
            "mTLS needs security.tls_cert, tls_key and tls_ca "
            "(run `enclave certs init DIR` for a development PKI)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    password = settings.tls_key_password.get_secret_value() if settings.tls_key_password else None
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key, password=password)
    except (OSError, ssl.SSLError) as error:
        # The message names files only; key contents never appear in errors or logs.
        raise TlsConfigurationError(
            f"cannot load the server certificate {settings.tls_cert} with its key "
            f"{settings.tls_key}: {_reason(error)}"
        ) from error
    try:
        context.load_verify_locations(cafile=settings.tls_ca)
    except (OSError, ssl.SSLError) as error:
        raise TlsConfigurationError(
            f"cannot load the client CA bundle {settings.tls_ca}: {_reason(error)}"
        ) from error
    if settings.tls_crl is not None:
        try:
            context.load_verify_locations(cafile=settings.tls_crl)
        except (OSError, ssl.SSLError) as error:
            raise TlsConfigurationError(
                f"cannot load the CRL {settings.tls_crl}: {_reason(error)}"
            ) from error
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def describe_certificate(certificate: x509.Certificate) -> CertificateSubject:
    """Read CN, OUs, SAN URIs and DNS names from a certificate already verified by TLS."""
    subject = certificate.subject
    common_names = [_text(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    units = tuple(
        _text(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    )
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
        dns_names = tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        uris, dns_names = (), ()
    der = certificate.public_bytes(Encoding.DER)
    return CertificateSubject(
        common_name=common_names[0] if common_names else None,
        organizational_units=units,
        uris=uris,
        dns_names=dns_names,
        serial_hex=format(certificate.serial_number, "x"),
        fingerprint_sha256=hashlib.sha256(der).hexdigest(),
    )


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLError) and error.reason:
        return str(error.reason)
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)
