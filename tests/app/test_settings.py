"""Settings: defaults that need no services, ENCLAVE_* variables, a TOML file, clear errors."""

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import DispatchMode, Settings, StorageBackend


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ENCLAVE_"):
            monkeypatch.delenv(name)


def test_defaults_run_without_any_service() -> None:
    settings = Settings()
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.storage_backend is StorageBackend.LOCAL
    assert settings.dispatch is DispatchMode.INPROCESS
    assert settings.workers == 1
    assert not settings.insecure_dev


def test_environment_variables_override_defaults(monkeypatch) -> None:
    monkeypatch.setenv("ENCLAVE_DISPATCH", "celery")
    monkeypatch.setenv("ENCLAVE_MAX_QUEUED_JOBS", "7")
    monkeypatch.setenv("ENCLAVE_JOB_TTL", "PT90S")
    monkeypatch.setenv("ENCLAVE_WEBHOOK_ALLOWLIST", '["hooks.example.com"]')
    settings = Settings()
    assert settings.dispatch is DispatchMode.CELERY
    assert settings.max_queued_jobs == 7
    assert settings.job_ttl == timedelta(seconds=90)
    assert settings.webhook_allowlist == ("hooks.example.com",)


def test_toml_file_named_by_enclave_config(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "enclave.toml"
    config.write_text(
        'database_url = "postgresql+asyncpg://db.internal/enclave"\n'
        'storage_backend = "s3"\n'
        's3_bucket = "faces"\n'
        "workers = 4\n"
    )
    monkeypatch.setenv("ENCLAVE_CONFIG", str(config))
    monkeypatch.setenv("ENCLAVE_WORKERS", "2")  # the environment wins over the file
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://db.internal/enclave"
    assert (settings.storage_backend, settings.s3_bucket) == (StorageBackend.S3, "faces")
    assert settings.workers == 2


def test_a_missing_config_file_is_an_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ENCLAVE_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ValueError, match="not a file"):
        Settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("database_url", "sqlite:///sync-driver.db"),
        ("workers", 0),
        ("max_queued_jobs", -1),
        ("dispatch", "threads"),
        ("no_such_setting", 1),
    ],
)
def test_invalid_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_secrets_do_not_show_in_repr() -> None:
    settings = Settings(broker_url="amqp://user:hunter2@mq//", webhook_secret="whsec_c2VjcmV0")
    assert "hunter2" not in repr(settings)
    assert "c2VjcmV0" not in repr(settings)


def test_security_settings_nest_under_enclave_security(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ENCLAVE_SECURITY__RATE_LIMIT_BURST", "5")
    config = tmp_path / "enclave.toml"
    config.write_text('[security]\nallowed_cidrs = ["192.168.10.0/24"]\n')
    monkeypatch.setenv("ENCLAVE_CONFIG", str(config))
    settings = Settings()
    assert settings.security.rate_limit_burst == 5
    assert [str(net) for net in settings.security.allowed_cidrs] == ["192.168.10.0/24"]
