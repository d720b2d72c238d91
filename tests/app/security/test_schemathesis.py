"""schemathesis against ``openapi.yaml`` on a live mTLS server: no request it generates,
valid or not, may make the service answer 5xx.

Every operation in the document gets up to ``EXAMPLES`` generated requests (schema-valid
and schema-violating ones), sent by ``requests`` with alice's client certificate. The
pipeline is ``hostile_media.checked_copy`` (the pipeline's real input readers, no models),
so generated files are read and refused exactly as in production.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from app.main import create_app
from app.security.serving import server_config
from app.settings import Settings
from tests.app.security import hostile_media as media
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import running

EXAMPLES = 25
OPENAPI = Path(__file__).resolve().parents[3] / "openapi.yaml"

schema = schemathesis.openapi.from_path(OPENAPI)


@dataclass(frozen=True)
class LiveService:
    url: str
    audit_log: Path


@pytest.fixture(scope="module")
def live_service(pki, tmp_path_factory) -> Iterator[LiveService]:
    root = tmp_path_factory.mktemp("schemathesis")
    service_settings = Settings(
        database_url=f"sqlite+aiosqlite:///{root / 'enclave.db'}",
        storage_dir=root / "storage",
        upload_secret="s" * 32,
        webhook_allowlist=("hooks.example.com",),
        security=base_settings(pki, audit_path=root / "audit.jsonl", rate_limit_per_second=0),
    )
    app = create_app(
        service_settings, process_file=media.checked_copy, compare_images=media.checked_compare
    )
    config = server_config(app, service_settings.security, "127.0.0.1", 0, log_level="critical")
    with running(config) as url:
        yield LiveService(url, service_settings.security.audit_path)


@pytest.fixture(scope="module")
def alice_tls(pki) -> dict[str, object]:
    """``requests`` arguments: alice's certificate, and the dev CA to trust the server."""
    return {
        "cert": (str(pki.client_cert("alice")), str(pki.client_key("alice"))),
        "verify": str(pki.ca_cert),
    }


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_makes_the_service_fail(case, live_service, alice_tls):
    response = case.call(base_url=live_service.url, timeout=30, **alice_tls)
    case.validate_response(response, checks=[not_a_server_error])


@pytest.mark.slow
def test_the_run_reached_every_operation_over_mtls_and_the_service_saw_no_error(live_service):
    """The service's own record of the run above: every path, alice's identity, no 5xx."""
    lines = audit_lines(live_service.audit_log)
    documented = {
        (method.upper(), path)
        for path, item in schema.raw_schema["paths"].items()
        for method in item
    }
    reached = {(line["method"], line["route"]) for line in lines}
    assert documented <= reached
    assert {line["identity"] for line in lines} == {"alice"}
    assert [line for line in lines if line["outcome"] == "error"] == []
