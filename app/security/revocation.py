"""A CRL read from disk and re-read when the file changes, for checks after the handshake.

The TLS context loads the CRL once, at start-up. Checking each request's certificate
against the current file as well means ``enclave certs revoke`` (or the operator's CA
publishing a new CRL) takes effect on the next request, without a restart.
"""

import threading
from pathlib import Path

from cryptography import x509

from app.security.errors import TlsConfigurationError


class RevocationList:
    def __init__(self, path: Path, authorities: list[x509.Certificate]) -> None:
        self.path = path
        self.authorities = authorities
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int, int], x509.CertificateRevocationList] | None = None

    def is_revoked(self, certificate: x509.Certificate) -> bool:
        """Whether the current CRL lists ``certificate`` (raises if the CRL is unusable)."""
        crl = self._current()
        return crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None

    def _current(self) -> x509.CertificateRevocationList:
        with self._lock:
            try:
                status = self.path.stat()
                # rename-replaced or rewritten in place: inode, time or size tells
                version = (status.st_ino, status.st_mtime_ns, status.st_size)
                if self._loaded is None or self._loaded[0] != version:
                    crl = x509.load_pem_x509_crl(self.path.read_bytes())
                    self._check_signature(crl)
                    self._loaded = (version, crl)
            except (OSError, ValueError) as error:
                if self._loaded is None:
                    raise TlsConfigurationError(f"the CRL {self.path} is unusable") from error
                # A CRL being rewritten or briefly unreadable: keep the last good one.
            return self._loaded[1]

    def _check_signature(self, crl: x509.CertificateRevocationList) -> None:
        issuer = next((ca for ca in self.authorities if ca.subject == crl.issuer), None)
        if issuer is None or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
            raise ValueError("the CRL is not signed by a configured CA")
