"""Security settings, a plain pydantic model the service's ``Settings`` embeds as ``security``.

With ``env_nested_delimiter="__"`` on the service's settings these read from
``ENCLAVE_SECURITY__TLS_CERT``, ``ENCLAVE_SECURITY__ALLOWED_CIDRS`` (JSON list), … or from
a ``[security]`` table in the TOML file. Paths only: key material never sits in settings.
"""

from datetime import timedelta
from enum import StrEnum
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from app.security.roles import Role

Network = IPv4Network | IPv6Network
LOOPBACK_NETWORKS: tuple[Network, ...] = (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"))


class IdentityField(StrEnum):
    """Which part of the client certificate names the caller (first choice; others follow)."""

    COMMON_NAME = "cn"
    URI = "uri"
    DNS = "dns"


class AuditSinkKind(StrEnum):
    FILE = "file"
    OBJECT_STORE = "object_store"


class FsyncPolicy(StrEnum):
    """When the file sink forces audit lines to disk."""

    ALWAYS = "always"  # every line: nothing acknowledged is lost on power failure
    INTERVAL = "interval"  # at most every ``audit_fsync_interval``
    NEVER = "never"  # leave it to the OS


class SecuritySettings(BaseModel):
    """Transport, network policy, roles, rate and body limits, and audit of the service."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Transport (mTLS). All four are paths to PEM files.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_key_password: SecretStr | None = None
    tls_ca: Path | None = None
    tls_crl: Path | None = None
    identity_field: IdentityField = IdentityField.COMMON_NAME

    # Network policy: deny by default; loopback unless configured.
    allowed_cidrs: tuple[Network, ...] = LOOPBACK_NETWORKS
    trusted_proxies: tuple[Network, ...] = ()
    # Read only from a trusted proxy that terminated mTLS (Envoy XFCC or a URL-encoded PEM).
    forwarded_cert_header: str = "x-forwarded-client-cert"

    # Roles: by identity name, and by the certificate's organisational unit.
    roles_by_identity: dict[str, tuple[Role, ...]] = Field(default_factory=dict)
    roles_by_ou: dict[str, tuple[Role, ...]] = Field(default_factory=dict)

    # Per-identity token bucket; 0 requests per second disables the limit.
    rate_limit_per_second: Annotated[float, Field(ge=0)] = 20.0
    rate_limit_burst: Annotated[int, Field(gt=0)] = 60

    # Request bodies (``app.security.limits``): ceilings checked before the app parses
    # anything. JSON bodies are small and read whole to check UTF-8 and nesting depth.
    max_json_body_bytes: Annotated[int, Field(gt=0)] = 1024 * 1024
    max_json_depth: Annotated[int, Field(gt=0, le=1000)] = 64
    # Inline files of POST /jobs (9 of Settings.max_inline_upload_bytes) and /compare.
    max_multipart_body_bytes: Annotated[int, Field(gt=0)] = 9 * 25 * 1024 * 1024
    # Raw uploads (PUT /uploads/{token}); keep at least Settings.max_upload_bytes.
    max_upload_body_bytes: Annotated[int, Field(gt=0)] = 512 * 1024 * 1024

    # Audit
    audit_sink: AuditSinkKind = AuditSinkKind.FILE
    audit_path: Path = Path("./var/audit/audit.jsonl")
    audit_fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    audit_fsync_interval: timedelta = timedelta(seconds=1)
    audit_prefix: str = "audit"
    audit_batch_lines: Annotated[int, Field(gt=0)] = 200
    audit_flush_interval: timedelta = timedelta(seconds=5)

    @field_validator("forwarded_cert_header")
    @classmethod
    def _lower_header(cls, name: str) -> str:
        return name.strip().lower()

    @field_validator("audit_prefix")
    @classmethod
    def _clean_prefix(cls, prefix: str) -> str:
        prefix = prefix.strip("/")
        if not prefix or ".." in prefix.split("/"):
            raise ValueError("audit_prefix must be a non-empty relative key prefix")
        return prefix

    @model_validator(mode="after")
    def _tls_files_together(self) -> "SecuritySettings":
        given = {
            "tls_cert": self.tls_cert,
            "tls_key": self.tls_key,
            "tls_ca": self.tls_ca,
        }
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(name for name, value in given.items() if value is None)
            raise ValueError(f"mTLS needs tls_cert, tls_key and tls_ca together; missing {missing}")
        if self.tls_crl is not None and self.tls_ca is None:
            raise ValueError("tls_crl needs tls_ca")
        return self

    @property
    def tls_configured(self) -> bool:
        return self.tls_cert is not None


__all__ = [
    "LOOPBACK_NETWORKS",
    "AuditSinkKind",
    "FsyncPolicy",
    "IdentityField",
    "Network",
    "SecuritySettings",
]
