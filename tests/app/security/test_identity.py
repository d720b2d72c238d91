"""Without a certificate from the TLS layer there is no identity, whatever the headers say."""

from urllib.parse import quote

import httpx
from fastapi import FastAPI

from app.security.audit.file_sink import FileAuditSink
from app.security.authz import CurrentIdentity
from app.security.config import SecuritySettings
from app.security.middleware import install_security
from tests.app.security.conftest import audit_lines


def plain_app(log) -> FastAPI:
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/whoami")
    async def whoami(identity: CurrentIdentity) -> dict[str, str]:
        return {"name": identity.name}

    install_security(app, SecuritySettings(), FileAuditSink(log), anonymous_paths={"/healthz"})
    return app


async def test_no_tls_certificate_means_401_even_with_identity_looking_headers(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    transport = httpx.ASGITransport(app=plain_app(log))
    headers = {
        "X-Forwarded-Client-Cert": f'Cert="{quote(pki.client_cert("alice").read_text())}"',
        "X-SSL-Client-Cert": quote(pki.client_cert("alice").read_text()),
        "X-Client-Identity": "alice",
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.get("/whoami", headers=headers)
        health = await client.get("/healthz")
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert health.status_code == 200  # the one anonymous path: a liveness probe
    denied, allowed = audit_lines(log)
    assert (denied["identity"], denied["outcome"]) == (None, "denied")
    assert (allowed["route"], allowed["outcome"]) == ("/healthz", "allowed")
