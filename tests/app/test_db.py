"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.jobs.models import Base


async def test_migrated_schema_matches_the_models(engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


def test_upgrade_creates_the_database_file_and_its_directory(tmp_path) -> None:
    from app.db import upgrade_database

    path = tmp_path / "nested" / "enclave.db"
    upgrade_database(f"sqlite+aiosqlite:///{path}")
    upgrade_database(f"sqlite+aiosqlite:///{path}")  # a second run is a no-op
    assert path.is_file()
