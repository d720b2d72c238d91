"""The request and response rules, for cases the live service rarely produces: a proxy's
HTML error page, Retry-After as a date, a body that is not a job, the inline/upload split,
an interrupted download."""

from datetime import UTC, datetime

import httpx
import pytest
from enclave_client import (
    EnclaveAPIError,
    Job,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    Upload,
)
from enclave_client._files import replacing
from enclave_client._protocol import (
    DEFAULT_INLINE_LIMIT,
    Submission,
    host_of,
    raise_for_problem,
    retry_after_seconds,
    upload_request,
)

REQUEST = httpx.Request("GET", "https://enclave.test/jobs")


def test_a_proxy_error_page_becomes_a_server_error_with_its_text():
    response = httpx.Response(502, text="<html>bad gateway</html>", request=REQUEST)
    with pytest.raises(ServerError) as raised:
        raise_for_problem(response)
    assert raised.value.status == 502 and raised.value.type == "about:blank"
    assert raised.value.title == "Bad Gateway" and "bad gateway" in raised.value.detail


def test_a_problem_document_keeps_its_fields():
    body = {
        "type": "https://enclave.invalid/problems/not-ready",
        "title": "Service not ready",
        "status": 503,
        "detail": "database unreachable",
        "instance": "/jobs",
    }
    response = httpx.Response(503, json=body, request=REQUEST)
    with pytest.raises(ServiceUnavailableError) as raised:
        raise_for_problem(response)
    error = raised.value
    assert (error.slug, error.instance) == ("not-ready", "/jobs")
    assert str(error) == "503 Service not ready: database unreachable"


def test_unlisted_statuses_are_still_api_errors():
    with pytest.raises(EnclaveAPIError) as raised:
        raise_for_problem(httpx.Response(418, request=REQUEST))
    assert raised.value.status == 418


def test_retry_after_reads_seconds_and_http_dates():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    response = httpx.Response(
        429, headers={"Retry-After": "12"}, json={"title": "Too many"}, request=REQUEST
    )
    with pytest.raises(RateLimitedError) as raised:
        raise_for_problem(response)
    assert raised.value.retry_after == 12.0


def test_a_body_that_is_not_a_job_is_reported_not_guessed():
    with pytest.raises(UnexpectedResponseError):
        Job.from_json({"id": "x"})
    with pytest.raises(UnexpectedResponseError):
        Job.from_json(["not", "an", "object"])


def test_error_messages_name_hosts_never_presigned_queries():
    url = "https://bucket.s3.example:9000/outputs/x.jpg?X-Amz-Signature=secret&X-Amz-Credential=k"
    assert host_of(url) == "https://bucket.s3.example:9000"


def test_inputs_over_the_inline_limit_are_uploaded(tmp_path):
    small, large = tmp_path / "face.png", tmp_path / "film.mp4"
    small.write_bytes(b"x" * 1000)
    with large.open("wb") as file:  # sparse: 9 MiB on paper, nothing on disk
        file.truncate(9 * 1024 * 1024)
    assert Submission.of(small, small, None, None, None).fits_inline(DEFAULT_INLINE_LIMIT)
    assert not Submission.of(small, large, None, None, None).fits_inline(DEFAULT_INLINE_LIMIT)
    assert upload_request(large) == {
        "filename": "film.mp4",
        "content_type": "video/mp4",
        "size": 9 * 1024 * 1024,
    }
    uploaded = Upload("3f1c0b9e-0000-4000-8000-000000000000", "face.png", 1000)
    assert not Submission.of(uploaded, small, None, None, None).fits_inline(DEFAULT_INLINE_LIMIT)
    with pytest.raises(FileNotFoundError):
        Submission.of(tmp_path / "missing.png", small, None, None, None)


def test_an_interrupted_download_leaves_no_file(tmp_path):
    destination = tmp_path / "out.jpg"
    with pytest.raises(httpx.ReadError), replacing(destination) as file:
        file.write(b"half of it")
        raise httpx.ReadError("connection lost")
    assert list(tmp_path.iterdir()) == []
    with replacing(destination) as file:
        file.write(b"all of it")
    assert destination.read_bytes() == b"all of it" and list(tmp_path.iterdir()) == [destination]
