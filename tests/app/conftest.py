"""Fixtures of the job-service tests: migrated databases (SQLite, real PostgreSQL), storage,
settings. Every database is built by the real Alembic migrations, not ``create_all``."""

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import create_engine, create_session_factory, upgrade_database
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
