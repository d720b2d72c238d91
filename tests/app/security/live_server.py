"""A real uvicorn server in a thread on a free loopback port, and mTLS clients for it."""

import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request

from app.security.audit.file_sink import FileAuditSink
from app.security.authz import CurrentIdentity, require_role, require_role_by_method
from app.security.certs import DevPki
from app.security.config import SecuritySettings
from app.security.context import record_job_id
from app.security.identity import Identity
from app.security.middleware import install_security
from app.security.roles import Role
from app.security.serving import server_config

Submitter = Annotated[Identity, Depends(require_role(Role.SUBMITTER))]
Reader = Annotated[Identity, Depends(require_role(Role.READER))]


def identity_json(identity: Identity) -> dict[str, object]:
    return {
        "name": identity.name,
        "roles": sorted(identity.roles),
        "source": identity.source,
        "auth": identity.authenticated_by.value,
    }


def make_app(settings: SecuritySettings, audit_log: Path, insecure_dev: bool = False) -> FastAPI:
    """A minimal job-like API: what the real service's routes look like to the security layer."""
    app = FastAPI()
    owners: dict[str, str] = {}

    @app.get("/whoami")
    async def whoami(identity: CurrentIdentity) -> dict[str, object]:
        return identity_json(identity)

    @app.post("/jobs")
    async def submit(request: Request, identity: Submitter) -> dict[str, str]:
        job_id = str(uuid.uuid4())
        owners[job_id] = identity.name
        record_job_id(request.scope, job_id)
        return {"id": job_id}

    @app.get("/jobs/{job_id}")
    async def read(job_id: str, identity: Reader) -> dict[str, str]:
        owner = owners.get(job_id)
        if owner is None or (owner != identity.name and not identity.has_role(Role.AUDITOR)):
            raise HTTPException(404, "no such job")
        return {"id": job_id, "owner": owner}

    notes = APIRouter(prefix="/notes")

    @notes.get("")
    async def read_notes() -> list[str]:
        return []

    @notes.post("")
    async def add_note() -> dict[str, bool]:
        return {"added": True}

    app.include_router(
        notes, dependencies=[Depends(require_role_by_method(Role.READER, Role.SUBMITTER))]
    )
    install_security(
        app, settings, FileAuditSink(audit_log), insecure_dev=insecure_dev, dev_identity="dev"
    )
    return app


@contextmanager
def running(config: uvicorn.Config) -> Iterator[str]:
    """Serve ``config`` on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    scheme = "https" if config.is_ssl else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@contextmanager
def serve(settings: SecuritySettings, audit_log: Path, insecure_dev: bool = False) -> Iterator[str]:
    app = make_app(settings, audit_log, insecure_dev=insecure_dev)
    config = server_config(
        app, settings, "127.0.0.1", 0, insecure_dev=insecure_dev, log_level="critical"
    )
    with running(config) as url:
        yield url


def client_context(pki: DevPki, name: str | None, trust: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(trust or pki.ca_cert))
    if name is not None:
        context.load_cert_chain(pki.client_cert(name), pki.client_key(name))
    return context


def mtls_client(
    pki: DevPki,
    name: str | None,
    url: str,
    local_address: str | None = None,
    context: ssl.SSLContext | None = None,
) -> httpx.Client:
    """An httpx client presenting ``name``'s certificate from ``pki`` (None: no certificate)."""
    context = context or client_context(pki, name)
    transport = httpx.HTTPTransport(verify=context, local_address=local_address)
    return httpx.Client(base_url=url, transport=transport, timeout=10)
