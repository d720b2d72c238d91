"""Every setting of the service, in one pydantic-settings class.

Values come from (highest first): keyword arguments, ``ENCLAVE_*`` environment variables,
then the TOML file named by ``ENCLAVE_CONFIG`` (if any), then the defaults below. The
defaults run the whole service with no external services: SQLite, a local storage
directory and in-process workers. Nothing reads the environment except this module; the
rest of the service receives a ``Settings`` instance.
"""

import os
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from app.security.config import SecuritySettings
from pipeline.options import Limits

CONFIG_FILE_VARIABLE = "ENCLAVE_CONFIG"


class StorageBackend(StrEnum):
    LOCAL = "local"
    S3 = "s3"


class DispatchMode(StrEnum):
    INPROCESS = "inprocess"
    CELERY = "celery"


PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Settings(BaseSettings):
    """The service's configuration; one instance is built at start-up and injected."""

    model_config = SettingsConfigDict(
        env_prefix="ENCLAVE_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    # Job store
    database_url: str = "sqlite+aiosqlite:///./var/enclave.db"

    # Storage
    storage_backend: StorageBackend = StorageBackend.LOCAL
    storage_dir: Path = Path("./var/storage")
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_sse: Literal["aws:kms", "AES256"] | None = "aws:kms"
    s3_kms_key_id: str | None = None
    # Signs local upload URLs; when unset a random secret is made per process, which is
    # right for one API process and wrong for several behind a load balancer.
    upload_secret: SecretStr | None = None
    upload_url_expiry: timedelta = timedelta(minutes=15)
    max_upload_bytes: PositiveInt = 512 * 1024 * 1024
    # Files sent inline with POST /jobs (multipart) are held in memory: keep this small.
    max_inline_upload_bytes: PositiveInt = 25 * 1024 * 1024

    # Dispatch and workers
    dispatch: DispatchMode = DispatchMode.INPROCESS
    broker_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672//")
    job_queue: str = Field(default="enclave.jobs", pattern=r"^[A-Za-z0-9._-]{1,128}$")
    workers: PositiveInt = 1
    # In-process worker processes run this much below the API's CPU priority (nice), so
    # requests are answered first while jobs use every core; 0: the same priority.
    worker_nice: int = Field(default=10, ge=0, le=19)
    max_queued_jobs: PositiveInt = 100
    max_attempts: PositiveInt = 5
    retry_backoff: timedelta = timedelta(seconds=2)
    retry_backoff_max: timedelta = timedelta(minutes=5)
    lease_duration: timedelta = timedelta(seconds=60)
    heartbeat_interval: timedelta = timedelta(seconds=5)
    sweep_interval: timedelta = timedelta(seconds=30)
    job_ttl: timedelta = timedelta(hours=1)
    output_retention: timedelta = timedelta(hours=24)
    concurrent_compares: PositiveInt = 2
    # On shutdown, how long in-process workers may finish their current job.
    shutdown_grace: timedelta = timedelta(seconds=10)

    # Pipeline
    model_dir: Path = Path("./models")
    execution_providers: tuple[str, ...] = ("cpu",)
    allow_non_commercial_models: bool = False
    # Media limits, checked at submission and again by the worker (decompression bombs,
    # runaway videos).
    max_image_pixels: PositiveInt = Limits().max_image_pixels
    max_video_pixels: PositiveInt = Limits().max_video_pixels
    max_video_seconds: PositiveFloat = Limits().max_video_seconds

    @property
    def media_limits(self) -> Limits:
        return Limits(
            max_image_pixels=self.max_image_pixels,
            max_video_pixels=self.max_video_pixels,
            max_video_seconds=self.max_video_seconds,
        )

    # Autoscaling signal on AWS: publish enclave_queue_depth to this CloudWatch namespace
    # (the Terraform stack's metrics_namespace), dimension Stack=cloudwatch_stack.
    cloudwatch_namespace: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._/#:-]{1,255}$")
    cloudwatch_stack: str = Field(default="enclave", min_length=1, max_length=255)
    cloudwatch_interval: timedelta = timedelta(seconds=60)

    # Webhooks
    webhook_allowlist: tuple[str, ...] = ()
    webhook_secret: SecretStr | None = None  # Standard Webhooks "whsec_<base64>"
    # Development only: allow http:// receivers that resolve to loopback.
    webhook_allow_http_loopback: bool = False
    webhook_attempts: PositiveInt = 5

    # Security: mTLS, network policy, roles, rate limits, audit (ENCLAVE_SECURITY__*, [security])
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    # Plain HTTP on loopback (`enclave serve --insecure-dev`); every caller is dev_identity
    insecure_dev: bool = False
    dev_identity: str = "dev"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must use an async driver: sqlite+aiosqlite:// or "
                "postgresql+asyncpg://"
            )
        return url

    @field_validator("heartbeat_interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be positive")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_VARIABLE)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ValueError(f"{CONFIG_FILE_VARIABLE} names {path}, which is not a file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
