"""Terminal states are announced to the job's webhook, signed (Standard Webhooks)."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import SecretStr

from app.jobs.service import InlineFile, JobRequest, JobService
from app.jobs.states import JobState
from app.jobs.worker import WorkerContext, run_job
from app.webhooks import generate_secret, verify
from tests.app.pipeline_doubles import copy_target, png_bytes


class Receiver:
    """A real HTTP server on loopback that records what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/enclave"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver.server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


async def test_a_finished_job_calls_its_webhook_with_a_valid_signature(
    settings, session_factory, storage, dispatcher, clock, receiver
) -> None:
    secret = generate_secret()
    port = receiver.url.split(":")[2].split("/")[0]
    settings = settings.model_copy(
        update={
            "webhook_secret": SecretStr(secret),
            "webhook_allowlist": (f"127.0.0.1:{port}",),
            "webhook_allow_http_loopback": True,
        }
    )
    service = JobService(settings, session_factory, storage, dispatcher, clock=clock)
    request = JobRequest(
        sources=[InlineFile("s.png", png_bytes(1))],
        target=InlineFile("t.png", png_bytes(2)),
        webhook_url=receiver.url,
    )
    job = (await service.submit("alice", request)).job
    context = WorkerContext(settings, session_factory, storage, copy_target, clock=clock)
    assert (await run_job(job.id, context)).state is JobState.SUCCEEDED
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    verify(headers, body, secret)  # raises if the signature is wrong
    event = json.loads(body)
    assert event["type"] == "job.succeeded"
    assert event["data"] == {
        "id": str(job.id),
        "state": "succeeded",
        "error": None,
        "result_url": f"/jobs/{job.id}/result",
    }
