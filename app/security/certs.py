"""A development PKI: a CA, server and client certificates, and a CRL, made with ``cryptography``.

Layout of a PKI directory::

    ca.pem  ca.key  crl.pem  server.pem  server.key  clients/<name>.pem  clients/<name>.key

Private keys are written with mode 0600 and never overwritten silently. This is for
development and tests; production certificates come from the operator's own CA.
"""

import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.security.errors import PkiError

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
DEFAULT_SERVER_HOSTS = ("localhost", "127.0.0.1", "::1")
CRL_VALIDITY = timedelta(days=365)  # dev CRLs are refreshed on every revoke


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: Path
    key: Path
    serial: int


@dataclass(frozen=True)
class DevPki:
    """File locations of a dev PKI rooted at ``directory``."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def crl(self) -> Path:
        return self.directory / "crl.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    def client_cert(self, name: str) -> Path:
        return self.directory / "clients" / f"{name}.pem"

    def client_key(self, name: str) -> Path:
        return self.directory / "clients" / f"{name}.key"


def init_ca(
    directory: Path, *, common_name: str = "Enclave dev CA", days: int = 3650, force: bool = False
) -> DevPki:
    """Create a CA key and certificate and an empty CRL in ``directory``."""
    pki = DevPki(directory)
    if pki.ca_key.exists() and not force:
        raise PkiError(f"{pki.ca_key} already exists; pass --force to replace the CA")
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.ca_key, key)
    _write_public(pki.ca_cert, certificate.public_bytes(serialization.Encoding.PEM))
    _write_crl(pki, key, certificate, revoked=[])
    return pki


def issue_server_cert(
    pki: DevPki, *, hosts: Sequence[str] = DEFAULT_SERVER_HOSTS, days: int = 825
) -> IssuedCertificate:
    """A server certificate for ``hosts`` (DNS names or IP addresses), signed by the CA."""
    names = list(dict.fromkeys([*DEFAULT_SERVER_HOSTS, *hosts]))
    san: list[x509.GeneralName] = []
    for host in names:
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            san.append(x509.DNSName(host))
    now = datetime.now(UTC)
    return _issue(
        pki,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]),
        san=san,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=days),
        certificate=pki.server_cert,
        key=pki.server_key,
    )


def issue_client_cert(
    pki: DevPki,
    common_name: str,
    *,
    organizational_unit: str | None = None,
    uri: str | None = None,
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> IssuedCertificate:
    """A client certificate whose subject CN (and optional OU, SAN URI) names the caller."""
    if not SAFE_NAME.fullmatch(common_name):
        raise PkiError(
            f"client name {common_name!r} must be 1-64 letters, digits, '.', '_', '@' or '-'"
        )
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organizational_unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit))
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(uri)] if uri else []
    now = datetime.now(UTC)
    return _issue(
        pki,
        subject=x509.Name(attributes),
        san=san,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
        not_before=not_before or now - timedelta(minutes=5),
        not_after=not_after or now + timedelta(days=days),
        certificate=pki.client_cert(common_name),
        key=pki.client_key(common_name),
    )


def revoke(pki: DevPki, certificate: Path) -> Path:
    """Add ``certificate`` to the CA's CRL and rewrite ``crl.pem``; returns its path."""
    ca_key, ca_cert = _load_ca(pki)
    try:
        target = x509.load_pem_x509_certificate(certificate.read_bytes())
    except (OSError, ValueError) as error:
        raise PkiError(f"cannot read certificate {certificate}: {error}") from error
    if target.issuer != ca_cert.subject:
        raise PkiError(f"{certificate} was not issued by this CA ({pki.ca_cert})")
    revoked = list(_load_crl(pki)) if pki.crl.exists() else []
    if any(entry.serial_number == target.serial_number for entry in revoked):
        return pki.crl
    revoked.append(
        x509.RevokedCertificateBuilder()
        .serial_number(target.serial_number)
        .revocation_date(datetime.now(UTC))
        .build()
    )
    _write_crl(pki, ca_key, ca_cert, revoked)
    return pki.crl


def _issue(
    pki: DevPki,
    *,
    subject: x509.Name,
    san: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    not_before: datetime,
    not_after: datetime,
    certificate: Path,
    key: Path,
) -> IssuedCertificate:
    ca_key, ca_cert = _load_ca(pki)
    private_key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(private_key.public_key())
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    signed = builder.sign(ca_key, hashes.SHA256())
    key.parent.mkdir(parents=True, exist_ok=True)
    _write_key(key, private_key)
    _write_public(certificate, signed.public_bytes(serialization.Encoding.PEM))
    return IssuedCertificate(certificate=certificate, key=key, serial=serial)


def _load_ca(pki: DevPki) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
        certificate = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    except FileNotFoundError as error:
        raise PkiError(
            f"no CA in {pki.directory}; run `enclave certs init {pki.directory}`"
        ) from error
    except ValueError as error:
        raise PkiError(f"the CA in {pki.directory} is unreadable: {error}") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{pki.ca_key} is not an EC key made by `enclave certs init`")
    return key, certificate


def _load_crl(pki: DevPki) -> x509.CertificateRevocationList:
    try:
        return x509.load_pem_x509_crl(pki.crl.read_bytes())
    except ValueError as error:
        raise PkiError(f"{pki.crl} is not a PEM CRL: {error}") from error


def _write_crl(
    pki: DevPki,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    revoked: list[x509.RevokedCertificate],
) -> None:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + CRL_VALIDITY)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1000)), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_public(pki.crl, crl.public_bytes(serialization.Encoding.PEM))


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write a private key readable by its owner only (created 0600, never world-readable)."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    temporary.replace(path)


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
