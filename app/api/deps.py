"""FastAPI dependencies: settings, sessions, storage, the job service, the caller.

Everything here reads objects ``create_app`` put on ``app.state`` at start-up; nothing
is built at import time.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotAuthenticatedError
from app.jobs.service import JobService
from app.settings import Settings
from app.storage.base import Storage

IDENTITY_SCOPE_KEY = "enclave.identity"
"""Where the TLS layer leaves the verified caller in the ASGI scope."""


@dataclass(frozen=True)
class Identity:
    """Who is calling: a name (job owner) and the roles it holds."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]


def get_job_service(request: Request) -> JobService:
    service: JobService = request.app.state.job_service
    return service


JobServiceDep = Annotated[JobService, Depends(get_job_service)]


def get_identity(request: Request, settings: SettingsDep) -> Identity:
    """The caller: from the verified client certificate, or the dev identity in dev mode."""
    identity = request.scope.get(IDENTITY_SCOPE_KEY)
    if isinstance(identity, Identity):
        return identity
    if settings.insecure_dev:
        return Identity(settings.dev_identity, frozenset({"submitter"}))
    raise NotAuthenticatedError("no verified client identity on this connection")


CurrentIdentity = Annotated[Identity, Depends(get_identity)]
