"""FastAPI dependencies: settings, sessions, storage, the job service, the caller.

Everything here reads objects ``create_app`` put on ``app.state`` at start-up; nothing
is built at import time. They are ``async def`` although none awaits: FastAPI runs a
plain ``def`` dependency in a worker thread, a thread hop per dependency per request.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotAuthenticatedError
from app.jobs.service import JobService
from app.security.context import request_identity
from app.security.identity import AuthMethod, Identity
from app.security.roles import Role, expand_roles
from app.settings import Settings
from app.storage.base import Storage


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_storage(request: Request) -> Storage:
    storage: Storage = request.app.state.storage
    return storage


StorageDep = Annotated[Storage, Depends(get_storage)]


async def get_job_service(request: Request) -> JobService:
    service: JobService = request.app.state.job_service
    return service


JobServiceDep = Annotated[JobService, Depends(get_job_service)]


async def get_identity(request: Request) -> Identity:
    """The caller: set by the security layer from the TLS connection; in insecure dev mode
    without that layer, the configured dev identity."""
    identity = request_identity(request.scope)
    if identity is not None:
        return identity
    settings: Settings = request.app.state.settings  # not a sub-dependency: hot path
    if settings.insecure_dev:
        return Identity(
            name=settings.dev_identity,
            roles=expand_roles([Role.SUBMITTER]),
            source=request.client.host if request.client else "unknown",
            authenticated_by=AuthMethod.INSECURE_DEV,
        )
    raise NotAuthenticatedError("no verified client identity on this connection")


CurrentIdentity = Annotated[Identity, Depends(get_identity)]


async def readable_owner(identity: CurrentIdentity) -> str | None:
    """Whose jobs a read may show: the caller's own, or everyone's for an auditor."""
    return None if identity.has_role(Role.AUDITOR) else identity.name


ReadableOwner = Annotated[str | None, Depends(readable_owner)]


async def purgeable_owner(identity: CurrentIdentity) -> str | None:
    """Whose jobs a caller may delete: its own, or everyone's for an admin."""
    return None if identity.has_role(Role.ADMIN) else identity.name


PurgeableOwner = Annotated[str | None, Depends(purgeable_owner)]
