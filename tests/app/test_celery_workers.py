"""Scale-out on real services: PostgreSQL job store, RabbitMQ broker, SeaweedFS (S3) object
storage, `enclave worker` processes running the real pipeline. A worker killed with
SIGKILL mid-video loses nothing: a new worker completes the job exactly once and the
output is whole."""

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest
from pydantic import SecretStr

from app.security.config import SecuritySettings
from app.settings import DispatchMode, Settings, StorageBackend
from tests.app.api_client import wait_until
from tests.app.conftest import running_api
from tests.app.media import astronaut_png, insightface_image, make_clip, t1_bgr
from tests.app.services import BROKER_URL, require_rabbitmq
from tests.app.test_jobs_api_s3 import keys_under
from tests.app.worker_process import kill_hard, worker_process
from tests.seaweed import free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]

VIDEO_FRAMES = 90


@pytest.fixture
def celery_settings(postgres_url: str, tmp_path: Path, model_dir: Path, seaweedfs) -> Settings:
    require_rabbitmq()
    return Settings(
        database_url=postgres_url,
        storage_backend=StorageBackend.S3,
        s3_bucket=seaweedfs.bucket,
        s3_endpoint_url=seaweedfs.endpoint_url,
        s3_region=seaweedfs.region,
        s3_access_key_id=seaweedfs.access_key,
        s3_secret_access_key=SecretStr(seaweedfs.secret_key),
        s3_sse="aws:kms",
        s3_kms_key_id=seaweedfs.kms_key_id,
        upload_secret="u" * 32,
        dispatch=DispatchMode.CELERY,
        broker_url=BROKER_URL,
        job_queue=f"enclave.test.{uuid.uuid4().hex[:8]}",
        model_dir=model_dir,
        lease_duration=timedelta(seconds=4),
        heartbeat_interval=timedelta(milliseconds=500),
        insecure_dev=True,
        security=SecuritySettings(audit_path=tmp_path / "audit.jsonl"),
    )


async def download(api: httpx.AsyncClient, url: str) -> bytes:
    """The result: the API answers 307 to a presigned SeaweedFS URL."""
    redirect = await api.get(url)
    assert redirect.status_code == 307, redirect.text
    async with httpx.AsyncClient() as outside:
        response = await outside.get(redirect.headers["location"])
    assert response.status_code == 200
    return response.content


async def submit_files(api, source: bytes, target_name: str, target: bytes, mime: str) -> str:
    response = await api.post(
        "/jobs",
        files=[
            ("source", ("astronaut.png", source, "image/png")),
            ("target", (target_name, target, mime)),
        ],
        data={"options": json.dumps({"face_selector_mode": "many"})},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_a_celery_worker_runs_a_real_swap(celery_settings, tmp_path) -> None:
    target = insightface_image("t1.jpg").read_bytes()
    port = free_port()
    with worker_process(celery_settings, tmp_path / "worker.log", "--metrics-port", str(port)):
        async with running_api(celery_settings, process_file=None) as api:
            ready = (await api.get("/readyz")).json()
            assert ready["checks"]["dispatcher"] == "ok", ready
            job_id = await submit_files(api, astronaut_png(), "t1.jpg", target, "image/jpeg")
            done = await wait_until(api, job_id, timeout_s=120)
            assert done["state"] == "succeeded", (done, (tmp_path / "worker.log").read_text())
            assert done["summary"]["faces_swapped"] == 6
            result = await download(api, done["output"]["url"])
            image = cv2.imdecode(np.frombuffer(result, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == t1_bgr().shape
            assert not (image == t1_bgr()).all()
            async with httpx.AsyncClient() as outside:
                for _ in range(100):  # the worker records the run just after committing it
                    metrics = (await outside.get(f"http://127.0.0.1:{port}/metrics")).text
                    if "enclave_job_runs_finished_total{" in metrics:
                        break
                    await asyncio.sleep(0.1)
            assert 'enclave_stage_seconds_count{stage="process"} 1.0' in metrics
            assert 'enclave_job_runs_finished_total{state="succeeded"} 1.0' in metrics


async def test_worker_killed_mid_video_the_job_completes_exactly_once(
    celery_settings, tmp_path, seaweedfs
) -> None:
    clip = make_clip(tmp_path / "clip.mp4", t1_bgr(), VIDEO_FRAMES)
    log = tmp_path / "workers.log"
    async with running_api(celery_settings, process_file=None) as api:
        with worker_process(celery_settings, log) as first:
            job_id = await submit_files(
                api, astronaut_png(), "clip.mp4", clip.read_bytes(), "video/mp4"
            )
            for _ in range(1200):
                job = (await api.get(f"/jobs/{job_id}")).json()
                if job["state"] == "running" and job["progress"] > 0.1:
                    break
                assert job["state"] in {"queued", "running"}, (job, log.read_text())
                await asyncio.sleep(0.1)
            else:
                pytest.fail(f"the job never got going: {job}\n{log.read_text()}")
            kill_hard(first)
            assert (await api.get(f"/jobs/{job_id}")).json()["progress"] < 1.0
        with worker_process(celery_settings, log):
            done = await wait_until(api, job_id, timeout_s=240)
        assert done["state"] == "succeeded", (done, log.read_text())
        assert done["attempts"] == 2  # the killed run, then exactly one more
        assert keys_under(seaweedfs, f"outputs/{job_id}/") == [f"outputs/{job_id}/result.mp4"]
        video = tmp_path / "result.mp4"
        video.write_bytes(await download(api, done["output"]["url"]))
        with av.open(str(video)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == VIDEO_FRAMES
