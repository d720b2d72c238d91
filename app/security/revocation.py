"""A CRL read from disk and re-read when the file changes, for checks after the handshake.

The TLS context loads the CRL once, at start-up. Checking each request's certificate
against the current file as well means ``enclave certs revoke`` (or the operator's CA
publishing a new CRL) takes effect within a second, without a restart.

The file is looked at (one ``stat``) at most once per ``RECHECK_AFTER_S``, not per
request: a system call on the event loop's thread gives up the GIL, and under load each
give-up cost the loop about 0.1-0.2 ms of waiting for it (docs/performance.md, fifth
session).
"""

import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from app.security.errors import TlsConfigurationError

RECHECK_AFTER_S = 1.0


class RevocationList:
    def __init__(
        self,
        path: Path,
        authorities: list[x509.Certificate],
        *,
        recheck_after_s: float = RECHECK_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.authorities = authorities
        self.recheck_after_s = recheck_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int, int], x509.CertificateRevocationList] | None = None
        self._next_check = 0.0

    def is_revoked(self, certificate: x509.Certificate) -> bool:
        """Whether the current CRL lists ``certificate`` (raises if the CRL is unusable)."""
        crl = self._current()
        return crl.get_revoked_certificate_by_serial_number(certificate.serial_number) is not None

    def _current(self) -> x509.CertificateRevocationList:
        loaded = self._loaded
        if loaded is not None and self._clock() < self._next_check:
            return loaded[1]
        with self._lock:
            self._next_check = self._clock() + self.recheck_after_s
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
