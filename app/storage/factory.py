"""Choose and build the storage backend from configuration.

``StorageConfig`` is the storage layer's own view of the settings, so backends never see
the whole ``Settings``; ``storage_config_from_settings`` is the one place that maps them.
"""

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.storage.base import Storage
from app.storage.local import LocalStorage
from app.storage.s3 import MiB, S3Storage, ServerSideEncryption
from app.storage.upload_token import MIN_SECRET_BYTES

if TYPE_CHECKING:
    from app.settings import Settings


@dataclass(frozen=True)
class StorageConfig:
    """Everything needed to build one storage backend."""

    backend: Literal["local", "s3"] = "local"
    local_root: Path = Path("./var/storage")
    # Signs local upload URLs; None makes a random per-process secret (one API process only).
    upload_secret: bytes | None = field(default=None, repr=False)
    upload_path: str = "/uploads"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_sse: ServerSideEncryption = "aws:kms"
    s3_kms_key_id: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = field(default=None, repr=False)
    multipart_threshold: int = 8 * MiB
    presign_expiry: timedelta = timedelta(seconds=300)


def build_storage(config: StorageConfig) -> Storage:
    """The configured backend; raises ``ValueError`` with the setting to fix."""
    if config.backend == "local":
        secret = config.upload_secret or secrets.token_bytes(MIN_SECRET_BYTES)
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"upload_secret must be at least {MIN_SECRET_BYTES} bytes long")
        return LocalStorage(config.local_root, upload_secret=secret, upload_path=config.upload_path)
    if config.backend == "s3":
        if not config.s3_bucket:
            raise ValueError("the s3 storage backend needs s3_bucket")
        if (config.s3_access_key is None) != (config.s3_secret_key is None):
            raise ValueError("set both s3_access_key_id and s3_secret_access_key, or neither")
        return S3Storage(
            config.s3_bucket,
            endpoint_url=config.s3_endpoint_url,
            region=config.s3_region,
            sse=config.s3_sse,
            kms_key_id=config.s3_kms_key_id,
            access_key=config.s3_access_key,
            secret_key=config.s3_secret_key,
            multipart_threshold=config.multipart_threshold,
            presign_expiry=config.presign_expiry,
        )
    raise ValueError(f"unknown storage backend {config.backend!r}; expected 'local' or 's3'")


def storage_config_from_settings(settings: "Settings") -> StorageConfig:
    """Map the service settings to a ``StorageConfig``."""
    backend: Literal["local", "s3"] = "s3" if settings.storage_backend == "s3" else "local"
    if backend == "s3" and settings.s3_sse is None:
        raise ValueError("s3_sse must be 'aws:kms' or 'AES256': objects are always encrypted")
    upload_secret = (
        settings.upload_secret.get_secret_value().encode() if settings.upload_secret else None
    )
    secret_key = (
        settings.s3_secret_access_key.get_secret_value() if settings.s3_secret_access_key else None
    )
    return StorageConfig(
        backend=backend,
        local_root=settings.storage_dir,
        upload_secret=upload_secret,
        s3_bucket=settings.s3_bucket,
        s3_endpoint_url=settings.s3_endpoint_url,
        s3_region=settings.s3_region or "us-east-1",
        s3_sse=settings.s3_sse or "aws:kms",
        s3_kms_key_id=settings.s3_kms_key_id,
        s3_access_key=settings.s3_access_key_id,
        s3_secret_key=secret_key,
    )
