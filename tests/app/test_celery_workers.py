"""Scale-out on real services: PostgreSQL job store, RabbitMQ, `enclave worker` processes
running the real pipeline. A worker killed with SIGKILL mid-video loses nothing: a new
worker completes the job exactly once and the output is whole."""

import asyncio
import json
import uuid
from datetime import timedelta
from pathlib import Path

import av
import cv2
import httpx
import pytest

from app.security.config import SecuritySettings
from app.settings import DispatchMode, Settings
from tests.app.api_client import wait_until
from tests.app.conftest import running_api
from tests.app.media import astronaut_png, insightface_image, make_clip, t1_bgr
from tests.app.services import BROKER_URL, require_rabbitmq
from tests.app.worker_process import kill_hard, worker_process
from tests.seaweed import free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]

VIDEO_FRAMES = 90


@pytest.fixture
def celery_settings(postgres_url: str, tmp_path: Path, model_dir: Path) -> Settings:
    require_rabbitmq()
    return Settings(
        database_url=postgres_url,
        storage_dir=tmp_path / "storage",
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
            result = await api.get(done["output"]["url"])
            image = cv2.imdecode(__import__("numpy").frombuffer(result.content, "uint8"), 1)
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
    celery_settings, tmp_path
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
        outputs = list((celery_settings.storage_dir / f"outputs/{job_id}").iterdir())
        assert [path.name for path in outputs] == ["result.mp4"]
        with av.open(str(outputs[0])) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == VIDEO_FRAMES
