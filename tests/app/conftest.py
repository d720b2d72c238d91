"""Fixtures of the job-service tests: migrated databases (SQLite, real PostgreSQL), storage,
settings. Every database is built by the real Alembic migrations, not ``create_all``."""

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.deps import get_identity
from app.db import create_engine, create_session_factory, upgrade_database
from app.jobs.service import JobService
from app.main import create_app
from app.security.config import SecuritySettings
from app.security.identity import AuthMethod, Identity
from app.security.roles import Role, expand_roles
from app.settings import Settings
from app.storage.base import Storage
from app.storage.factory import build_storage, storage_config_from_settings
from tests.app.pipeline_doubles import copy_target
from tests.app.services import create_postgres_database, drop_postgres_database, require_postgres


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per run; tests get copies (migrating each time is slow)."""
    path = tmp_path_factory.mktemp("db-template") / "enclave.db"
    upgrade_database(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "enclave.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database private to this test run, dropped at the end."""
    require_postgres()
    url = create_postgres_database()
    try:
        upgrade_database(url)
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
async def postgres_url(postgres_database: str) -> str:
    engine = create_engine(postgres_database)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("TRUNCATE uploads, jobs CASCADE"))
    finally:
        await engine.dispose()
    return postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on SQLite and on real PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for a test: its own database and storage, quick heartbeats and retries."""
    return Settings(
        database_url=database_url,
        storage_dir=tmp_path / "storage",
        upload_secret="u" * 32,
        heartbeat_interval=timedelta(milliseconds=50),
        lease_duration=timedelta(seconds=30),
        retry_backoff=timedelta(seconds=2),
        max_attempts=3,
        insecure_dev=True,
        security=SecuritySettings(audit_path=tmp_path / "audit.jsonl"),
    )


@pytest.fixture
def storage(settings: Settings) -> Storage:
    return build_storage(storage_config_from_settings(settings))


class Clock:
    """A controllable UTC clock for TTL, backoff and retention."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


class RecordingDispatcher:
    """Remembers what was dispatched; the test decides when a worker runs."""

    def __init__(self) -> None:
        self.dispatched: list[tuple[uuid.UUID, float]] = []

    async def start(self) -> None: ...

    async def dispatch(self, job_id: uuid.UUID, *, delay_s: float = 0.0) -> None:
        self.dispatched.append((job_id, delay_s))

    async def check(self) -> None: ...

    async def close(self) -> None: ...


@pytest.fixture
def dispatcher() -> RecordingDispatcher:
    return RecordingDispatcher()


@pytest.fixture
def service(settings, session_factory, storage, dispatcher, clock) -> JobService:
    return JobService(settings, session_factory, storage, dispatcher, clock=clock)


@pytest.fixture
def api_settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=sqlite_url,
        storage_dir=tmp_path / "storage",
        upload_secret="u" * 32,
        heartbeat_interval=timedelta(milliseconds=100),
        insecure_dev=True,
        security=SecuritySettings(audit_path=tmp_path / "audit.jsonl"),
    )


TEST_IDENTITY_HEADER = "x-test-identity"
TEST_ROLES_HEADER = "x-test-roles"


@asynccontextmanager
async def running_api(
    settings: Settings, process_file=copy_target, compare_images=None
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (lifespan, worker processes) behind an httpx client.

    Tests act as several callers by sending ``x-test-identity``; that override stands in
    for the TLS layer, which sets the identity in production.
    """
    extra: dict[str, object] = {}
    if compare_images is not None:
        extra["compare_images"] = compare_images
    if process_file is not None:  # None: the real pipeline
        extra["process_file"] = process_file
    app = create_app(settings, **extra)

    def identity(request: Request) -> Identity:
        return Identity(
            name=request.headers.get(TEST_IDENTITY_HEADER, "alice"),
            roles=expand_roles(
                [
                    Role(role)
                    for role in request.headers.get(TEST_ROLES_HEADER, "submitter").split(",")
                ]
            ),
            source="127.0.0.1",
            authenticated_by=AuthMethod.INSECURE_DEV,
        )

    app.dependency_overrides[get_identity] = identity
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://enclave.test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def api(api_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_api(api_settings) as client:
        yield client


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled models, materialised once per run (from installed packages, offline)."""
    from pipeline.models import ModelRegistry

    directory = tmp_path_factory.mktemp("models")
    ModelRegistry(directory).prepare()
    return directory
