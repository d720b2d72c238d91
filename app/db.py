"""The async engine and session factory of the job store (SQLite or PostgreSQL)."""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

SQLITE_BUSY_TIMEOUT_S = 30.0
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    """An engine for ``database_url``; SQLite gets WAL and immediate write transactions.

    SQLite allows one writer. A deferred transaction that reads and then writes can
    deadlock against another process doing the same, and SQLite then fails at once
    instead of waiting; ``BEGIN IMMEDIATE`` takes the write lock up front so concurrent
    transactions queue on the busy timeout instead.
    """
    if database_url.startswith("sqlite"):
        # One connection per process: SQLite has one write lock anyway, and queueing for
        # it in the pool (an asyncio wait) is far cheaper than in SQLite's busy handler,
        # which sleeps in growing steps; measured in docs/performance.md.
        engine = create_async_engine(
            database_url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_BUSY_TIMEOUT_S,
        )
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
        event.listen(engine.sync_engine, "begin", _begin_immediate)
        return engine
    return create_async_engine(database_url, echo=echo, pool_pre_ping=True)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN instead of the driver's implicit one.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def alembic_config(database_url: str) -> "AlembicConfig":
    """Alembic configured in code for ``database_url`` (no ini file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str) -> None:
    """Apply every pending migration (blocking; runs its own event loop, so call it from a
    thread when a loop is already running)."""
    from alembic import command

    if database_url.startswith("sqlite"):
        _make_sqlite_parent_dir(database_url)
    command.upgrade(alembic_config(database_url), "head")


def _make_sqlite_parent_dir(database_url: str) -> None:
    path = database_url.split(":///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def head_revision() -> str:
    """The newest migration shipped with this code."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at (``None``: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Any) -> str | None:
        revision: str | None = MigrationContext.configure(connection).get_current_revision()
        return revision

    async with engine.connect() as connection:
        return await connection.run_sync(read)
