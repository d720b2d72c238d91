"""Real PostgreSQL and RabbitMQ for the job-service tests (skip, or fail in CI, when absent)."""

import asyncio
import os
import socket
import uuid
from typing import NoReturn

import pytest

POSTGRES_HOST, POSTGRES_PORT = "127.0.0.1", 5432
RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672
BROKER_URL = f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}//"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a service test, or fail it when ENCLAVE_REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("ENCLAVE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (ENCLAVE_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if not port_open(POSTGRES_HOST, POSTGRES_PORT):
        skip_or_fail(f"PostgreSQL is not reachable on {POSTGRES_HOST}:{POSTGRES_PORT}")


def require_rabbitmq() -> None:
    if not port_open(RABBITMQ_HOST, RABBITMQ_PORT):
        skip_or_fail(f"RabbitMQ is not reachable on {RABBITMQ_HOST}:{RABBITMQ_PORT}")


def create_postgres_database() -> str:
    """A fresh, uniquely named database; returns its asyncpg URL."""
    name = f"enclave_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    return f"postgresql+asyncpg://postgres@{POSTGRES_HOST}:{POSTGRES_PORT}/{name}"


def drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[-1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(
        host=POSTGRES_HOST, port=POSTGRES_PORT, user="postgres", database="test"
    )
    try:
        await connection.execute(sql)
    finally:
        await connection.close()
