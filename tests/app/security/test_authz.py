"""Roles decide what a caller may do; a rate limit per caller answers 429."""

import httpx
import pytest

from app.security.ratelimit import RateLimiter
from app.security.roles import Role, RoleMapping
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import mtls_client, serve


@pytest.fixture
def live(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(base_settings(pki), log) as url:
        yield url, log


def test_reader_cannot_submit_and_the_refusal_is_audited(pki, live):
    url, log = live
    with mtls_client(pki, "rita", url) as rita:
        response = rita.post("/jobs")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert "submitter" in response.json()["detail"]
    [line] = audit_lines(log)
    assert (line["identity"], line["outcome"], line["route"]) == ("rita", "denied", "/jobs")
    assert "lacks role submitter" in line["reason"]


def test_submitter_submits_and_the_audit_line_names_the_new_job(pki, live):
    url, log = live
    with mtls_client(pki, "alice", url) as alice:
        job_id = alice.post("/jobs").json()["id"]
        assert alice.get(f"/jobs/{job_id}").status_code == 200
    submitted, read = audit_lines(log)
    assert submitted["job_id"] == job_id
    assert read["job_id"] == job_id
    assert read["route"] == "/jobs/{job_id}"  # the template, never the raw path


def test_auditor_reads_every_callers_jobs_others_do_not(pki, live):
    url, _ = live
    with mtls_client(pki, "alice", url) as alice:
        job_id = alice.post("/jobs").json()["id"]
    with mtls_client(pki, "audrey", url) as audrey:
        assert audrey.get(f"/jobs/{job_id}").json()["owner"] == "alice"
        assert audrey.post("/jobs").status_code == 403  # reading all is not submitting
    with mtls_client(pki, "bob", url) as bob:
        assert bob.get(f"/jobs/{job_id}").status_code == 404


def test_caller_without_any_mapped_role_is_refused_everywhere(pki, tmp_path):
    log = tmp_path / "audit.jsonl"
    with serve(base_settings(pki), log) as url, mtls_client(pki, "proxy", url) as nobody:
        assert nobody.get("/whoami").json()["roles"] == []
        assert nobody.post("/jobs").status_code == 403
        assert nobody.get("/jobs/x").status_code == 403


def test_roles_by_identity_name(pki, tmp_path):
    settings = base_settings(pki, roles_by_identity={"proxy": ["admin"]})
    with serve(settings, tmp_path / "audit.jsonl") as url, mtls_client(pki, "proxy", url) as c:
        assert c.get("/whoami").json()["roles"] == ["admin", "auditor", "reader", "submitter"]
        assert c.post("/jobs").status_code == 200


def test_rate_limit_answers_429_with_retry_after_per_caller(pki, tmp_path):
    settings = base_settings(pki, rate_limit_per_second=0.01, rate_limit_burst=2)
    log = tmp_path / "audit.jsonl"
    with serve(settings, log) as url:
        with mtls_client(pki, "alice", url) as alice:
            statuses = [alice.get("/whoami").status_code for _ in range(3)]
            limited = alice.get("/whoami")
        with mtls_client(pki, "bob", url) as bob:
            other_caller = bob.get("/whoami").status_code
    assert statuses == [200, 200, 429]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["status"] == 429
    assert other_caller == 200  # one caller's burst does not starve another
    assert [line["outcome"] for line in audit_lines(log)] == [
        "allowed",
        "allowed",
        "denied",
        "denied",
        "allowed",
    ]


def test_a_router_declares_read_and_write_roles_at_once(pki, live):
    url, log = live
    with mtls_client(pki, "rita", url) as rita:
        assert rita.get("/notes").status_code == 200
        assert rita.post("/notes").status_code == 403
    with mtls_client(pki, "alice", url) as alice:
        assert alice.post("/notes").status_code == 200
    assert [line["outcome"] for line in audit_lines(log)] == ["allowed", "denied", "allowed"]


def test_insecure_dev_identity_is_a_submitter_and_not_rate_limited(tmp_path):
    from app.security.config import SecuritySettings

    settings = SecuritySettings(rate_limit_per_second=0.01, rate_limit_burst=1)
    with serve(settings, tmp_path / "audit.jsonl", insecure_dev=True) as url:
        statuses = {httpx.get(f"{url}/whoami").status_code for _ in range(3)}
        roles = httpx.get(f"{url}/whoami").json()["roles"]
    assert statuses == {200}  # one identity for every caller: a per-caller limit means nothing
    assert roles == ["reader", "submitter"]


def test_token_bucket_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("b") == 0.0


def test_roles_imply_the_roles_they_contain():
    mapping = RoleMapping({"ops": [Role.ADMIN]}, {"submitter": [Role.SUBMITTER]})
    assert mapping.roles_for("ops") == set(Role)
    assert mapping.roles_for("x", ["submitter"]) == {Role.SUBMITTER, Role.READER}
    assert mapping.roles_for("x", ["unknown-unit"]) == frozenset()
