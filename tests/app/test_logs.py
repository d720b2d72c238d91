"""Service logs are JSON lines carrying the request id, with secrets scrubbed."""

import json
import logging

import httpx
import pytest

from app.logs import REQUEST_ID, JsonFormatter, redact


def test_presigned_queries_keys_and_webhook_secrets_are_redacted() -> None:
    line = (
        "uploaded to https://s3.internal/bucket/inputs/x.jpg"
        "?X-Amz-Signature=abc&X-Amz-Credential=k with whsec_c2VjcmV0c2VjcmV0 and "
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    )
    cleaned = redact(line)
    assert "X-Amz-Signature=abc" not in cleaned and "?<redacted>" in cleaned
    assert "c2VjcmV0c2VjcmV0" not in cleaned
    assert "MIIE" not in cleaned
    assert "https://s3.internal/bucket/inputs/x.jpg" in cleaned


def test_a_record_is_one_json_object_with_the_request_id() -> None:
    token = REQUEST_ID.set("req-123")
    try:
        record = logging.LogRecord(
            "app.jobs", logging.WARNING, __file__, 1, "job %s retried", ("j1",), None
        )
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["message"] == "job j1 retried"
    assert line["level"] == "warning" and line["logger"] == "app.jobs"
    assert line["request_id"] == "req-123"


@pytest.mark.asyncio
async def test_log_lines_during_a_request_carry_its_response_request_id(api_settings) -> None:
    from app.main import create_app

    app = create_app(api_settings)
    seen: list[str | None] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(REQUEST_ID.get())

    async def probe() -> dict[str, str | None]:
        logging.getLogger("app.probe").warning("handling")
        return {"request_id": REQUEST_ID.get()}

    app.add_api_route("/log-probe", probe)
    handler = Capture()
    logging.getLogger("app.probe").addHandler(handler)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                response = await client.get("/log-probe")
    finally:
        logging.getLogger("app.probe").removeHandler(handler)
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]
    assert response.json()["request_id"] == request_id
    assert seen == [request_id]
