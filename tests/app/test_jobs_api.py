"""The jobs API over HTTP, on the real app with its worker process pool."""

import asyncio
import json
import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from app.storage.errors import StorageUnavailableError
from tests.app.api_client import submit, wait_until
from tests.app.conftest import TEST_IDENTITY_HEADER, TEST_ROLES_HEADER, running_api
from tests.app.pipeline_doubles import (
    CRASH_MARKER_VARIABLE,
    SLOW_TARGET_SEED,
    always_crash,
    copy_target_slow_for_one,
    crash_once,
    frames_until_canceled,
    png_bytes,
    report_priority,
)

PROBLEM = "application/problem+json"
BOB = {TEST_IDENTITY_HEADER: "bob"}


def stored_files(settings, prefix: str) -> list[Path]:
    root = settings.storage_dir / prefix
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_multipart_job_runs_and_its_result_downloads(api, api_settings) -> None:
    response = await submit(api, options=json.dumps({"face_selector_mode": "one"}))
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"
    assert job["state"] == "queued"
    assert job["options"]["face_selector_mode"] == "one"
    done = await wait_until(api, job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress"] == 1.0
    assert done["output"] == {"url": f"/jobs/{job['id']}/result"}
    assert set(done["timings"]) == {"download", "process", "upload"}
    result = await api.get(done["output"]["url"])
    assert result.status_code == 200
    assert result.content == png_bytes(2)
    assert result.headers["content-type"] == "image/png"
    assert stored_files(api_settings, f"inputs/{job['id']}/") == []
    audit = [json.loads(line) for line in api_settings.security.audit_path.read_text().splitlines()]
    submitted = [line for line in audit if line["method"] == "POST" and line["route"] == "/jobs"]
    assert [line["job_id"] for line in submitted] == [job["id"]]


async def test_jobs_run_below_the_apis_cpu_priority(api_settings) -> None:
    settings = api_settings.model_copy(update={"worker_nice": 7})
    async with running_api(settings, process_file=report_priority) as client:
        done = await wait_until(client, (await submit(client)).json()["id"])
        assert done["state"] == "succeeded", done
        thread_nice = (await client.get(done["output"]["url"])).content.split()
    assert len(thread_nice) > 1  # the pipeline's thread and those imports started earlier
    assert {int(value) for value in thread_nice} == {os.nice(0) + 7}


async def test_a_long_job_holds_up_no_other_while_a_worker_is_free(api_settings) -> None:
    settings = api_settings.model_copy(update={"workers": 2})
    async with running_api(settings, process_file=copy_target_slow_for_one) as api:
        slow = (await submit(api, seed=SLOW_TARGET_SEED)).json()["id"]
        await wait_until(api, slow, states={"running"})
        quick = [(await submit(api)).json()["id"] for _ in range(3)]
        for job_id in quick:
            assert (await wait_until(api, job_id, timeout_s=15))["state"] == "succeeded"
        assert (await api.get(f"/jobs/{slow}")).json()["state"] == "running"
        assert (await api.post(f"/jobs/{slow}/cancel")).status_code == 200


async def test_upload_then_json_job(api) -> None:
    ids = []
    for name, data in (("me.png", png_bytes(1)), ("photo.png", png_bytes(7))):
        grant = await api.post(
            "/uploads", json={"filename": name, "content_type": "image/png", "size": len(data)}
        )
        assert grant.status_code == 201, grant.text
        body = grant.json()
        put = await api.request(body["method"], body["url"], content=data, headers=body["headers"])
        assert put.status_code == 204, put.text
        ids.append(body["upload_id"])
    response = await api.post(
        "/jobs",
        json={"sources": [{"upload_id": ids[0]}], "target": {"upload_id": ids[1]}},
    )
    assert response.status_code == 202, response.text
    done = await wait_until(api, response.json()["id"])
    assert done["state"] == "succeeded"
    assert (await api.get(done["output"]["url"])).content == png_bytes(7)


async def test_upload_past_its_size_or_with_a_forged_token_is_refused(api) -> None:
    grant = (
        await api.post(
            "/uploads", json={"filename": "a.png", "content_type": "image/png", "size": 10}
        )
    ).json()
    too_big = await api.put(grant["url"], content=b"x" * 11)
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == PROBLEM
    forged = await api.put(grant["url"][:-3] + "AAA", content=b"x")
    assert forged.status_code == 403
    assert forged.json()["title"] == "Upload URL not valid"


async def test_idempotency_key_replays_or_conflicts(api) -> None:
    first = await submit(api, headers={"Idempotency-Key": "order-1"})
    replay = await submit(api, headers={"Idempotency-Key": "order-1"})
    assert (first.status_code, replay.status_code) == (202, 200)
    assert replay.json()["id"] == first.json()["id"]
    conflict = await submit(api, seed=9, headers={"Idempotency-Key": "order-1"})
    assert conflict.status_code == 409
    problem = conflict.json()
    assert conflict.headers["content-type"] == PROBLEM
    assert problem["type"].endswith("/idempotency-conflict")
    assert problem["instance"] == "/jobs"


async def test_invalid_requests_get_problem_details_with_errors(api) -> None:
    bad = await api.post(
        "/jobs",
        json={
            "sources": [],
            "target": {"upload_id": "not-a-uuid"},
            "options": {"face_selector_mode": "everyone"},
        },
    )
    assert bad.status_code == 422
    problem = bad.json()
    assert problem["status"] == 422 and problem["title"] == "Request validation failed"
    locations = {tuple(error["location"]) for error in problem["errors"]}
    assert ("body", "sources") in locations
    assert ("body", "options", "face_selector_mode") in locations
    unknown = await api.post(
        "/jobs",
        json={
            "sources": [{"upload_id": str(uuid.uuid4())}],
            "target": {"upload_id": str(uuid.uuid4())},
        },
    )
    assert unknown.status_code == 422
    assert unknown.json()["type"].endswith("/upload-not-found")
    missing_target = await api.post(
        "/jobs", files=[("source", ("s.png", png_bytes(1), "image/png"))]
    )
    assert missing_target.status_code == 422
    webhook = await submit(api, webhook_url="http://169.254.169.254/latest")
    assert webhook.status_code == 422
    assert webhook.json()["type"].endswith("/webhook-url-refused")


async def test_callers_see_only_their_own_jobs(api) -> None:
    mine = [(await submit(api, seed=i)).json()["id"] for i in range(3)]
    theirs = (await submit(api, headers=BOB)).json()["id"]
    assert (await api.get(f"/jobs/{theirs}")).status_code == 404
    assert (await api.post(f"/jobs/{theirs}/cancel")).status_code == 404
    assert (await api.delete(f"/jobs/{theirs}")).status_code == 404
    assert (await api.get(f"/jobs/{theirs}/result")).status_code == 404
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/jobs", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(mine)
    for job_id in mine:
        await wait_until(api, job_id)
    succeeded = (await api.get("/jobs", params={"state": "succeeded"})).json()["items"]
    assert sorted(item["id"] for item in succeeded) == sorted(mine)
    assert (await api.get("/jobs", params={"cursor": "garbage"})).status_code == 422
    auditor = {TEST_IDENTITY_HEADER: "carol", TEST_ROLES_HEADER: "auditor"}
    everything = (await api.get("/jobs", params={"limit": 10}, headers=auditor)).json()["items"]
    assert {item["id"] for item in everything} == {*mine, theirs}
    assert (await api.get(f"/jobs/{theirs}", headers=auditor)).status_code == 200
    assert (await api.delete(f"/jobs/{theirs}", headers=auditor)).status_code in (403, 404)
    admin = {TEST_IDENTITY_HEADER: "dana", TEST_ROLES_HEADER: "admin"}
    assert (await api.delete(f"/jobs/{theirs}", headers=admin)).status_code == 204
    assert (await api.get(f"/jobs/{theirs}", headers=auditor)).status_code == 404


async def test_delete_purges_objects_and_forgets_the_job(api, api_settings) -> None:
    job_id = (await submit(api)).json()["id"]
    await wait_until(api, job_id)
    assert stored_files(api_settings, f"outputs/{job_id}/")
    response = await api.delete(f"/jobs/{job_id}")
    assert response.status_code == 204
    assert stored_files(api_settings, f"outputs/{job_id}/") == []
    assert stored_files(api_settings, f"inputs/{job_id}/") == []
    assert (await api.get(f"/jobs/{job_id}")).status_code == 404


async def test_cancel_stops_a_running_job_and_a_full_queue_answers_429(api_settings) -> None:
    settings = api_settings.model_copy(update={"max_queued_jobs": 1})
    async with running_api(settings, process_file=frames_until_canceled) as api:
        running = (await submit(api)).json()["id"]
        await wait_until(api, running, states={"running"})
        queued = (await submit(api)).json()["id"]
        refused = await submit(api)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert refused.headers["content-type"] == PROBLEM
        canceled = await api.post(f"/jobs/{queued}/cancel")
        assert canceled.json()["state"] == "canceled"
        stopping = await api.post(f"/jobs/{running}/cancel")
        assert stopping.status_code == 200 and stopping.json()["cancel_requested"]
        done = await wait_until(api, running)
        assert done["state"] == "canceled"
        assert done["progress"] < 1.0
        result = await api.get(f"/jobs/{running}/result")
        assert result.status_code == 409


async def test_without_a_verified_identity_requests_are_refused(api_settings) -> None:
    import httpx

    from app.main import create_app

    app = create_app(api_settings.model_copy(update={"insecure_dev": False}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        response = await client.get("/jobs")
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert (await client.get("/healthz")).status_code == 200


async def test_dev_mode_uses_the_dev_identity(api_settings) -> None:
    import httpx

    from app.main import create_app

    app = create_app(api_settings.model_copy(update={"dev_identity": "devuser"}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert (await client.get("/jobs")).json() == {"items": [], "next_cursor": None}


async def test_unknown_routes_are_problem_documents(api) -> None:
    response = await api.get("/nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["instance"] == "/nope"


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_endpoints(api, path) -> None:
    response = await api.get(path)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


class UnreachableStorage:
    """Fault injector: the storage answers nothing."""

    async def check(self) -> None:
        raise StorageUnavailableError("connection refused (injected)")


async def test_readyz_names_what_is_down(api) -> None:
    api.app.state.storage = UnreachableStorage()
    response = await api.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"].startswith("unavailable")
    assert response.json()["checks"]["database"] == "ok"


async def test_metrics_expose_queue_depth_states_and_stage_latency(api) -> None:
    job_id = (await submit(api)).json()["id"]
    await wait_until(api, job_id)
    for _ in range(100):  # the worker process reports its timings just after committing
        text = (await api.get("/metrics")).text
        if 'enclave_stage_seconds_count{stage="process"}' in text:
            break
        await asyncio.sleep(0.05)
    assert "enclave_queue_depth 0.0" in text
    assert 'enclave_jobs{state="succeeded"} 1.0' in text
    assert 'enclave_stage_seconds_count{stage="process"} 1.0' in text


@pytest.mark.slow
async def test_a_crashed_worker_process_is_replaced_and_the_job_rerun(
    api_settings, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv(CRASH_MARKER_VARIABLE, str(tmp_path / "crashed-once"))
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where worker scratch goes
    settings = api_settings.model_copy(
        update={
            "lease_duration": timedelta(seconds=1),
            "heartbeat_interval": timedelta(seconds=0.2),
        }
    )
    async with running_api(settings, process_file=crash_once) as api:
        job_id = (await submit(api)).json()["id"]
        done = await wait_until(api, job_id, timeout_s=60)
        assert (done["state"], done["attempts"]) == ("succeeded", 2)
        assert (await api.get(done["output"]["url"])).content == png_bytes(2)
        assert (tmp_path / "crashed-once").exists()
        # The dead worker's copies of the faces went with it; the new one keeps none.
        assert [path.name for path in temp.rglob("*") if path.is_file()] == []
    assert list(temp.iterdir()) == []


@pytest.mark.slow
async def test_a_job_that_kills_every_worker_fails_after_max_attempts(api_settings) -> None:
    settings = api_settings.model_copy(
        update={
            "lease_duration": timedelta(seconds=1),
            "heartbeat_interval": timedelta(seconds=0.2),
            "max_attempts": 2,
        }
    )
    async with running_api(settings, process_file=always_crash) as api:
        job_id = (await submit(api)).json()["id"]
        done = await wait_until(api, job_id, timeout_s=60)
        assert (done["state"], done["attempts"]) == ("failed", 2)
        assert done["error"]["code"] == "too_many_attempts"
        healthy = await api.get("/readyz")
        assert healthy.status_code == 200


async def test_readyz_reports_a_database_that_needs_migrating(api_settings, tmp_path) -> None:
    from app.db import create_engine

    async with running_api(api_settings) as api:
        engine = create_engine(api_settings.database_url)
        async with engine.begin() as connection:
            await connection.exec_driver_sql("UPDATE alembic_version SET version_num = 'old'")
        await engine.dispose()
        response = await api.get("/readyz")
    assert response.status_code == 503
    assert "enclave db upgrade" in response.json()["checks"]["database"]


async def test_a_job_not_started_within_its_ttl_fails_as_expired(api_settings) -> None:
    settings = api_settings.model_copy(update={"sweep_interval": timedelta(milliseconds=200)})
    async with running_api(settings, process_file=frames_until_canceled) as api:
        busy = (await submit(api)).json()["id"]  # occupies the only worker
        await wait_until(api, busy, states={"running"})
        waiting = (await submit(api, seed=5, ttl_seconds="1")).json()
        assert waiting["expires_at"] is not None
        expired = await wait_until(api, waiting["id"], timeout_s=30)
        assert (expired["state"], expired["error"]["code"]) == ("failed", "expired")
        assert expired["attempts"] == 0
        await api.post(f"/jobs/{busy}/cancel")
        await wait_until(api, busy)


@pytest.mark.slow
async def test_jobs_survive_a_service_restart(api_settings) -> None:
    settings = api_settings.model_copy(
        update={
            "lease_duration": timedelta(seconds=1),
            "heartbeat_interval": timedelta(milliseconds=200),
            "shutdown_grace": timedelta(0),
            "sweep_interval": timedelta(milliseconds=200),
        }
    )
    async with running_api(settings, process_file=frames_until_canceled) as api:
        interrupted = (await submit(api)).json()["id"]
        await wait_until(api, interrupted, states={"running"})
        waiting = (await submit(api, seed=6)).json()["id"]
    async with running_api(settings) as api:  # a new instance, same database and storage
        for job_id, seed, attempts in ((interrupted, 2, 2), (waiting, 6, 1)):
            done = await wait_until(api, job_id, timeout_s=60)
            assert (done["state"], done["attempts"]) == ("succeeded", attempts), done
            assert (await api.get(f"/jobs/{job_id}/result")).content == png_bytes(seed)


async def test_readyz_lists_every_model_with_its_licence(api_settings, tmp_path) -> None:
    from pipeline.models import ModelRegistry, ModelTask
    from tests.pipeline.contract_models import make_inswapper

    models = tmp_path / "models"
    ModelRegistry(models).add(
        make_inswapper(tmp_path / "inswapper.onnx"),
        task=ModelTask.SWAP,
        kind="inswapper",
        licence="non-commercial (insightface)",
    )
    settings = api_settings.model_copy(update={"model_dir": models})
    async with running_api(settings) as api:
        body = (await api.get("/readyz")).json()
    assert body["checks"]["models"] == "ok"
    by_name = {model["name"]: model for model in body["models"]}
    assert by_name["retinaface"]["licence"] == "MIT" and by_name["retinaface"]["loadable"]
    assert by_name["sface"]["bundled"] and by_name["sface"]["commercial_use"]
    inswapper = by_name["inswapper_128"]
    assert (inswapper["licence"], inswapper["commercial_use"]) == (
        "non-commercial (insightface)",
        False,
    )
    assert inswapper["loadable"] is False  # no acknowledgement in the settings
