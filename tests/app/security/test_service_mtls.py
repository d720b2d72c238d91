"""The real service behind the security layer: mTLS, roles, ownership and audit end to end."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from app.main import create_app
from app.security.serving import server_config
from app.settings import Settings
from tests.app.pipeline_doubles import copy_target, png_bytes
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import mtls_client, running

REFUSED = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)


def job_files() -> dict:
    return {
        "files": [
            ("source", ("source.png", png_bytes(1), "image/png")),
            ("target", ("target.png", png_bytes(2), "image/png")),
        ]
    }


@pytest.fixture
def service(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'enclave.db'}",
        storage_dir=tmp_path / "storage",
        upload_secret="u" * 32,
        security=base_settings(pki, audit_path=log),
    )
    app = create_app(settings, process_file=copy_target)
    config = server_config(app, settings.security, "127.0.0.1", 0, log_level="critical")
    with running(config) as url:
        yield url, log


def test_callers_act_on_their_own_jobs_with_their_roles_and_every_request_is_audited(
    pki, service, capsys
):
    url, log = service
    with mtls_client(pki, "alice", url) as alice:
        submitted = alice.post("/jobs", **job_files())
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]
        assert alice.get(f"/jobs/{job_id}").status_code == 200
    with mtls_client(pki, "bob", url) as bob:
        assert bob.get(f"/jobs/{job_id}").status_code == 404  # not bob's: no existence leak
        assert bob.delete(f"/jobs/{job_id}").status_code == 404
    with mtls_client(pki, "rita", url) as rita:
        assert rita.post("/jobs", **job_files()).status_code == 403
        assert rita.get("/healthz").status_code == 200
    with mtls_client(pki, None, url) as anonymous, pytest.raises(REFUSED):
        anonymous.get("/jobs")

    lines = audit_lines(log)
    assert [(line["identity"], line["route"], line["status"]) for line in lines] == [
        ("alice", "/jobs", 202),
        ("alice", "/jobs/{job_id}", 200),
        ("bob", "/jobs/{job_id}", 404),
        ("bob", "/jobs/{job_id}", 404),
        ("rita", "/jobs", 403),
        ("rita", "/healthz", 200),
    ]
    assert lines[2]["job_id"] == job_id
    from app.cli import main as enclave

    assert enclave(["audit", "verify", str(log)]) == 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_enclave_serve_runs_mtls_from_what_certs_init_made(tmp_path):
    from app.security.certs import DevPki

    pki_dir = tmp_path / "pki"
    subprocess.run(
        [sys.executable, "-m", "app.cli", "certs", "init", str(pki_dir)],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    env = {
        **os.environ,
        "ENCLAVE_CONFIG": str(pki_dir / "security.toml"),
        "ENCLAVE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'enclave.db'}",
        "ENCLAVE_STORAGE_DIR": str(tmp_path / "storage"),
        "ENCLAVE_SECURITY__AUDIT_PATH": str(tmp_path / "audit.jsonl"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        pki = DevPki(pki_dir)
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        with mtls_client(pki, "dev", url) as dev:
            while True:
                try:
                    response = dev.get("/jobs")
                    break
                except httpx.ConnectError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        assert response.status_code == 200
        assert response.json()["items"] == []
        with pytest.raises(REFUSED):  # plain HTTP to the TLS port
            httpx.get(f"http://127.0.0.1:{port}/jobs")
        assert audit_lines(tmp_path / "audit.jsonl")[0]["identity"] == "dev"
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0].decode()
    assert "BEGIN" not in output  # no key material in the service's output
