"""Settings choose the storage backend; bad combinations fail with the setting to fix."""

from pathlib import Path

import pytest

from app.settings import Settings
from app.storage.factory import StorageConfig, build_storage, storage_config_from_settings
from app.storage.local import LocalStorage
from app.storage.s3 import S3Storage


def test_defaults_build_local_storage(tmp_path: Path):
    settings = Settings(storage_dir=tmp_path / "store")
    storage = build_storage(storage_config_from_settings(settings))
    assert isinstance(storage, LocalStorage)
    assert storage.root == (tmp_path / "store").resolve()


def test_s3_settings_build_s3_storage_without_leaking_secrets():
    settings = Settings(
        storage_backend="s3",
        s3_bucket="enclave-prod",
        s3_region="eu-central-1",
        s3_kms_key_id="alias/enclave",
        s3_access_key_id="AKIAEXAMPLE",
        s3_secret_access_key="very-secret-value",
    )
    config = storage_config_from_settings(settings)
    assert "very-secret-value" not in repr(config)
    storage = build_storage(config)
    assert isinstance(storage, S3Storage)
    assert storage.bucket == "enclave-prod"
    assert storage.sse_headers == {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "alias/enclave",
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (StorageConfig(backend="s3"), "s3_bucket"),
        (StorageConfig(backend="s3", s3_bucket="b", s3_access_key="a"), "both"),
        (StorageConfig(upload_secret=b"short"), "at least 32 bytes"),
        (StorageConfig(backend="s3", s3_bucket="b", s3_sse="AES256", s3_kms_key_id="k"), "kms"),
    ],
)
def test_bad_configurations_are_refused(config: StorageConfig, message: str, tmp_path: Path):
    config = StorageConfig(**{**config.__dict__, "local_root": tmp_path})
    with pytest.raises(ValueError, match=message):
        build_storage(config)


def test_s3_without_encryption_is_refused():
    settings = Settings(storage_backend="s3", s3_bucket="b", s3_sse=None)
    with pytest.raises(ValueError, match="always encrypted"):
        storage_config_from_settings(settings)
