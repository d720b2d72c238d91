"""``EnclaveClient`` against the real service over mTLS: submit, follow, download, list,
cancel, delete, idempotency, and the service's refusals as typed errors."""

import io
import time
import uuid
from datetime import datetime

import pytest
from enclave_client import (
    ConflictError,
    EnclaveConnectionError,
    ForbiddenError,
    InvalidRequestError,
    Job,
    JobOptions,
    JobState,
    NotFoundError,
    RateLimitedError,
    Upload,
    WaitTimeoutError,
)

from tests.app.pipeline_doubles import png_bytes


def test_submit_wait_and_download_an_inline_job(service, images, tmp_path):
    source, target = images
    mark = service.audit_mark()
    with service.client() as client:
        submitted = client.submit(source=source, target=target)
        assert submitted.state in (JobState.QUEUED, JobState.RUNNING)
        reports: list[Job] = []
        done = client.wait(submitted, timeout=60, poll_interval=0.05, on_progress=reports.append)
        (tmp_path / "out").mkdir()
        saved = client.download(done, tmp_path / "out" / "result.png")

    assert done.state is JobState.SUCCEEDED and done.is_terminal
    assert done.error is None and done.progress == 1.0
    assert isinstance(done.finished_at, datetime) and done.finished_at >= done.created_at
    assert done.output_url == f"/jobs/{done.id}/result"
    assert reports[-1] == done  # the callback saw the terminal report
    assert saved == tmp_path / "out" / "result.png"
    assert saved.read_bytes() == target.read_bytes()  # copy_target: output = target
    assert list(saved.parent.iterdir()) == [saved]  # no temporary file left behind
    # small files travel inside POST /jobs, nothing through /uploads
    assert ("POST", "/uploads", 201) not in service.routes("alice", since=mark)


def test_large_inputs_go_through_uploads_then_reference_them(service, tmp_path):
    source, target = tmp_path / "me.png", tmp_path / "group.png"
    source.write_bytes(png_bytes(5, size=64))
    target.write_bytes(png_bytes(6, size=96))
    mark = service.audit_mark()
    with service.client("bob", inline_upload_limit=1024) as client:
        done = client.wait(client.submit(source, target), timeout=60, poll_interval=0.05)
        saved = client.download(done, tmp_path)  # a directory: named by the service
    assert done.state is JobState.SUCCEEDED
    assert saved.parent == tmp_path and saved.suffix == ".png"
    assert saved.read_bytes() == target.read_bytes()
    routes = service.routes("bob", since=mark)
    assert routes.count(("POST", "/uploads", 201)) == 2
    assert routes.count(("PUT", "/uploads/{token}", 204)) == 2


def test_an_upload_can_be_reused_to_replay_a_submission(service, images):
    source, target = images
    with service.client() as client:
        uploads = [client.upload(source), client.upload(target)]
        assert all(isinstance(upload, Upload) for upload in uploads)
        first = client.submit(uploads[0], uploads[1], idempotency_key="replay-uploads")
        again = client.submit(uploads[0], uploads[1], idempotency_key="replay-uploads")
    assert again.id == first.id


def test_same_idempotency_key_and_request_give_the_same_job(service, images):
    source, target = images
    key = f"k-{uuid.uuid4()}"
    with service.client() as client:
        first = client.submit(source, target, idempotency_key=key)
        again = client.submit(source, target, idempotency_key=key)
        with pytest.raises(ConflictError) as refused:
            client.submit(target, source, idempotency_key=key)
    assert again.id == first.id
    assert refused.value.status == 409
    assert refused.value.slug == "idempotency-conflict"
    assert key in refused.value.detail


def test_typed_options_reach_the_job(service, images):
    source, target = images
    options = JobOptions(face_selector_mode="one", face_mask_padding=(1, 2, 3, 4))
    with service.client() as client:
        job = client.submit(source, target, options=options)
        as_dict = client.submit(source, target, options={"face_mask_blur": 0.5})
    assert job.options["face_selector_mode"] == "one"
    assert job.options["face_mask_padding"] == [1, 2, 3, 4]
    assert as_dict.options["face_mask_blur"] == 0.5


def test_invalid_options_are_a_422_with_each_problem_listed(service, images):
    source, target = images
    with service.client() as client, pytest.raises(InvalidRequestError) as refused:
        client.submit(source, target, options={"face_selector_mode": "everyone"})
    error = refused.value
    assert (error.status, error.slug) == (422, "validation")
    assert error.errors and "face_selector_mode" in error.errors[0]["location"]


def test_unknown_or_foreign_jobs_are_not_found(service, images):
    with service.client() as alice:
        job = alice.submit(*images)
        with pytest.raises(NotFoundError) as missing:
            alice.get(uuid.uuid4())
    assert missing.value.status == 404 and missing.value.slug == "job-not-found"
    with service.client("bob") as bob, pytest.raises(NotFoundError):
        bob.get(job)  # alice's job does not exist for bob


def test_readers_may_not_submit(service, images):
    with service.client("rita") as rita, pytest.raises(ForbiddenError) as refused:
        rita.submit(*images)
    assert refused.value.status == 403


def test_a_result_before_success_is_a_conflict_and_cancel_stops_the_job(tmp_path, pki):
    from tests.app.pipeline_doubles import frames_until_canceled
    from tests.sdk.conftest import live_service

    source, target = tmp_path / "s.png", tmp_path / "t.png"
    source.write_bytes(png_bytes(1))
    target.write_bytes(png_bytes(2))
    with (
        live_service(pki, tmp_path / "svc", process_file=frames_until_canceled) as live,
        live.client() as client,
    ):
        job = client.submit(source, target)
        with pytest.raises(ConflictError) as early:
            client.download(job, tmp_path / "early.png")
        assert early.value.slug == "job-state-conflict"
        assert not (tmp_path / "early.png").exists()
        with pytest.raises(WaitTimeoutError) as slow:
            client.wait(job, timeout=0.2, poll_interval=0.05)
        assert slow.value.job_id == job.id
        client.cancel(job)
        stopped = client.wait(job, timeout=60, poll_interval=0.05)
    assert stopped.state is JobState.CANCELED


def test_list_pages_through_own_jobs_with_a_state_filter(service, images):
    with service.client("bob") as bob:
        mine = {bob.submit(*images).id for _ in range(3)}
        for job_id in mine:
            bob.wait(job_id, timeout=60, poll_interval=0.05)
        pages = list(bob.list(limit=2))
        listed = [job.id for page in pages for job in page]
        succeeded = {job.id for job in bob.iter_jobs(state="succeeded", page_size=2)}
        failed = list(bob.iter_jobs(state=JobState.FAILED))
    assert all(len(page) <= 2 for page in pages) and len(pages) >= 2
    assert mine <= set(listed) and len(listed) == len(set(listed))
    assert mine <= succeeded
    assert failed == []
    with service.client() as alice:
        assert not mine & {job.id for job in alice.iter_jobs()}  # bob's jobs are bob's


def test_delete_removes_the_job(service, images, tmp_path):
    with service.client() as client:
        job = client.wait(client.submit(*images), timeout=60, poll_interval=0.05)
        client.delete(job)
        with pytest.raises(NotFoundError):
            client.get(job)
        with pytest.raises(NotFoundError):
            client.download(job, tmp_path / "gone.png")


def test_progress_bar_draws_to_the_stream(service, images):
    stream = io.StringIO()
    with service.client() as client:
        client.wait(client.submit(*images), timeout=60, poll_interval=0.05, progress_bar=stream)
    last = stream.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("[" + "#" * 30 + "]") and "100% succeeded" in last


def test_a_client_without_a_certificate_or_trust_cannot_connect(service, pki):
    from enclave_client import EnclaveClient

    with (
        EnclaveClient(service.url, ca=pki.ca_cert) as anonymous,
        pytest.raises(EnclaveConnectionError),
    ):
        anonymous.get(uuid.uuid4())
    untrusting = EnclaveClient(
        service.url, cert=pki.client_cert("alice"), key=pki.client_key("alice")
    )
    with untrusting, pytest.raises(EnclaveConnectionError) as refused:
        untrusting.get(uuid.uuid4())
    assert "127.0.0.1" in str(refused.value)


def test_rate_limits_are_typed_and_wait_rides_them_out(tmp_path, pki, images):
    from tests.sdk.conftest import live_service

    limits = {"rate_limit_per_second": 2.0, "rate_limit_burst": 2}
    with (
        live_service(pki, tmp_path / "svc", security=limits) as live,
        live.client("flood") as client,
    ):
        with pytest.raises(RateLimitedError) as limited:
            for _ in range(50):
                next(client.list(limit=1))
        assert limited.value.status == 429
        assert limited.value.retry_after is not None and limited.value.retry_after >= 1
        time.sleep(limited.value.retry_after)
        job = client.submit(*images)
        done = client.wait(job, timeout=60, poll_interval=0.01)
    assert done.state is JobState.SUCCEEDED
    refusals = [route for route in live.routes("flood") if route[2] == 429]
    assert len(refusals) >= 2  # one above, and at least one during wait
