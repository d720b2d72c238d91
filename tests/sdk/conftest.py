"""The real service for the SDK tests: ``create_app`` under uvicorn in a thread on 127.0.0.1,
mTLS with certificates from ``app.security.certs``, the in-process dispatcher, SQLite and
local storage (the defaults). Jobs run ``copy_target`` unless a test asks for the pipeline.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from enclave_client import AsyncEnclaveClient, EnclaveClient

from app.main import create_app
from app.security import certs
from app.security.certs import DevPki
from app.security.config import SecuritySettings
from app.security.roles import Role
from app.security.serving import server_config
from app.settings import Settings
from tests.app.pipeline_doubles import copy_target, png_bytes
from tests.app.security.live_server import running

# client name -> organisational unit, mapped to the role of the same name
CLIENTS = {"alice": "submitter", "bob": "submitter", "rita": "reader", "flood": "submitter"}


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki = certs.init_ca(tmp_path_factory.mktemp("sdk-pki"))
    certs.issue_server_cert(pki)
    for name, unit in CLIENTS.items():
        certs.issue_client_cert(pki, name, organizational_unit=unit)
    return pki


@dataclass(frozen=True)
class LiveService:
    url: str
    pki: DevPki
    audit_log: Path
    settings: Settings

    def client(self, name: str = "alice", **options: Any) -> EnclaveClient:
        return EnclaveClient(self.url, **self.tls(name), **options)

    def async_client(self, name: str = "alice", **options: Any) -> AsyncEnclaveClient:
        return AsyncEnclaveClient(self.url, **self.tls(name), **options)

    def tls(self, name: str) -> dict[str, Path]:
        return {
            "cert": self.pki.client_cert(name),
            "key": self.pki.client_key(name),
            "ca": self.pki.ca_cert,
        }

    def audit_mark(self) -> int:
        """A position in the audit log: pass it to ``routes`` to see only what came after."""
        return len(self.audit_log.read_text().splitlines()) if self.audit_log.exists() else 0

    def routes(self, identity: str, since: int = 0) -> list[tuple[str, str, int]]:
        """(method, route, status) of each audited request ``identity`` made."""
        lines = [json.loads(line) for line in self.audit_log.read_text().splitlines()[since:]]
        return [
            (line["method"], line["route"], line["status"])
            for line in lines
            if line["identity"] == identity
        ]


def service_settings(pki: DevPki, directory: Path, **overrides: Any) -> Settings:
    security = {
        "tls_cert": pki.server_cert,
        "tls_key": pki.server_key,
        "tls_ca": pki.ca_cert,
        "tls_crl": pki.crl,
        "roles_by_ou": {role.value: [role] for role in Role},
        "audit_path": directory / "audit.jsonl",
        **overrides.pop("security", {}),
    }
    return Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'enclave.db'}",
        storage_dir=directory / "storage",
        upload_secret="u" * 32,
        security=SecuritySettings.model_validate(security),
        **overrides,
    )


@contextmanager
def live_service(
    pki: DevPki,
    directory: Path,
    process_file: Callable[..., Any] | None = copy_target,
    **overrides: Any,
) -> Iterator[LiveService]:
    """The service on a free loopback port until the block ends (``process_file=None``:
    the real pipeline)."""
    settings = service_settings(pki, directory, **overrides)
    app = create_app(settings, **({"process_file": process_file} if process_file else {}))
    config = server_config(app, settings.security, "127.0.0.1", 0, log_level="critical")
    with running(config) as url:
        yield LiveService(url, pki, settings.security.audit_path, settings)


@pytest.fixture(scope="module")
def service(pki: DevPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """One service per test module, jobs done by ``copy_target`` in worker processes."""
    with live_service(pki, tmp_path_factory.mktemp("service")) as live:
        yield live


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    """A source and a target image (small, distinct PNGs)."""
    source, target = tmp_path / "source.png", tmp_path / "target.png"
    source.write_bytes(png_bytes(1))
    target.write_bytes(png_bytes(2, size=32))
    return source, target


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled models, materialised once per run (from installed packages, offline)."""
    from pipeline.models import ModelRegistry

    directory = tmp_path_factory.mktemp("models")
    ModelRegistry(directory).prepare()
    return directory
