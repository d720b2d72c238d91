"""A dev PKI made once per session with ``app.security.certs``: one CA, a foreign CA, clients."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.security import certs
from app.security.certs import DevPki
from app.security.config import SecuritySettings
from app.security.roles import Role

# name -> organisational unit (mapped to the role of the same name in ``base_settings``)
CLIENTS = {
    "alice": "submitter",
    "bob": "submitter",
    "rita": "reader",
    "audrey": "auditor",
    "proxy": None,
}


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    pki = certs.init_ca(tmp_path_factory.mktemp("pki"))
    certs.issue_server_cert(pki)
    for name, unit in CLIENTS.items():
        certs.issue_client_cert(pki, name, organizational_unit=unit)
    now = datetime.now(UTC)
    certs.issue_client_cert(
        pki,
        "expired",
        organizational_unit="submitter",
        not_before=now - timedelta(days=10),
        not_after=now - timedelta(days=1),
    )
    revoked = certs.issue_client_cert(pki, "mallory", organizational_unit="submitter")
    certs.revoke(pki, revoked.certificate)
    return pki


@pytest.fixture(scope="session")
def foreign_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """Another CA, with a client named like a legitimate one."""
    pki = certs.init_ca(tmp_path_factory.mktemp("foreign-pki"), common_name="Enclave dev CA")
    certs.issue_client_cert(pki, "alice", organizational_unit="admin")
    return pki


def base_settings(pki: DevPki, **overrides: object) -> SecuritySettings:
    values: dict[str, object] = {
        "tls_cert": pki.server_cert,
        "tls_key": pki.server_key,
        "tls_ca": pki.ca_cert,
        "tls_crl": pki.crl,
        "roles_by_ou": {role.value: [role] for role in Role},
        **overrides,
    }
    return SecuritySettings.model_validate(values)


def audit_lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]
