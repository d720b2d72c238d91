"""``verify_webhook``: the Standard Webhooks algorithm, checked against the specification's
reference vector and against what the service's own signer sends."""

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from enclave_client import WebhookVerificationError, verify_webhook

from app.webhooks import generate_secret, signature_headers

# The reference vector of the Standard Webhooks specification (also in tests/app/test_webhooks.py)
REFERENCE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
REFERENCE_BODY = b'{"test": 2432232314}'
REFERENCE_HEADERS = {
    "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
    "webhook-timestamp": "1614265330",
    "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
}


def test_the_reference_vector_verifies_and_returns_the_payload():
    payload = verify_webhook(REFERENCE_HEADERS, REFERENCE_BODY, REFERENCE_SECRET, now=1614265330)
    assert payload == {"test": 2432232314}


def test_headers_are_matched_without_regard_to_case():
    headers = {name.title(): value for name, value in REFERENCE_HEADERS.items()}
    verify_webhook(headers, REFERENCE_BODY.decode(), REFERENCE_SECRET, now=1614265330)


def test_what_the_service_signs_verifies_now():
    secret = generate_secret()
    body = json.dumps({"type": "job.succeeded", "data": {"state": "succeeded"}}).encode()
    event = verify_webhook(signature_headers("msg_1", body, secret), body, secret)
    assert event["type"] == "job.succeeded"


@pytest.mark.parametrize(
    ("headers", "body", "secret", "reason"),
    [
        (REFERENCE_HEADERS, b'{"test": 2432232315}', REFERENCE_SECRET, "no webhook-signature"),
        (
            {**REFERENCE_HEADERS, "webhook-id": "msg_other"},
            REFERENCE_BODY,
            REFERENCE_SECRET,
            "no webhook-signature",
        ),
        (REFERENCE_HEADERS, REFERENCE_BODY, generate_secret(), "no webhook-signature"),
        (
            {k: v for k, v in REFERENCE_HEADERS.items() if k != "webhook-signature"},
            REFERENCE_BODY,
            REFERENCE_SECRET,
            "missing header webhook-signature",
        ),
        (
            {**REFERENCE_HEADERS, "webhook-timestamp": "soon"},
            REFERENCE_BODY,
            REFERENCE_SECRET,
            "not an integer",
        ),
        (REFERENCE_HEADERS, REFERENCE_BODY, "whsec_not base64!", "base64"),
    ],
    ids=["tampered-body", "tampered-id", "wrong-secret", "unsigned", "bad-timestamp", "bad-secret"],
)
def test_forged_or_malformed_messages_fail(headers, body, secret, reason):
    with pytest.raises(WebhookVerificationError, match=reason):
        verify_webhook(headers, body, secret, now=1614265330)


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_stale_or_future_messages_fail(skew):
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(REFERENCE_HEADERS, REFERENCE_BODY, REFERENCE_SECRET, now=1614265330 + skew)
    # a wider tolerance accepts the same message
    verify_webhook(
        REFERENCE_HEADERS,
        REFERENCE_BODY,
        REFERENCE_SECRET,
        now=1614265330 + skew,
        tolerance=abs(skew),
    )


def test_one_valid_signature_among_several_is_enough():
    rotated = {
        **REFERENCE_HEADERS,
        "webhook-signature": "v1,b2xkIHNpZ25hdHVyZQ== " + REFERENCE_HEADERS["webhook-signature"],
    }
    verify_webhook(rotated, REFERENCE_BODY, REFERENCE_SECRET, now=1614265330)


class Receiver(BaseHTTPRequestHandler):
    received: "queue.Queue[tuple[dict[str, str], bytes]]"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.put((dict(self.headers.items()), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep test output clean
        pass


def test_a_job_webhook_from_the_service_verifies_with_the_sdk(pki, images, tmp_path):
    from tests.sdk.conftest import live_service

    handler = type("Handler", (Receiver,), {"received": queue.Queue()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    secret = generate_secret()
    try:
        with (
            live_service(
                pki,
                tmp_path / "svc",
                webhook_allowlist=(f"127.0.0.1:{port}",),
                webhook_allow_http_loopback=True,
                webhook_secret=secret,
            ) as live,
            live.client() as client,
        ):
            job = client.submit(*images, webhook_url=f"http://127.0.0.1:{port}/hook")
            client.wait(job, timeout=60, poll_interval=0.05)
            headers, body = handler.received.get(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    event = verify_webhook(headers, body, secret)
    assert event["type"] == "job.succeeded"
    assert event["data"]["id"] == job.id
    with pytest.raises(WebhookVerificationError):
        verify_webhook(headers, body.replace(b"succeeded", b"failed"), secret)
