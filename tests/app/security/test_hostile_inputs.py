"""A hostile-input corpus against the real service over mTLS.

Each case is one request a hostile or broken client could send. It must get a precise
answer (the exact status and problem type), the service must keep serving (``/healthz``
after every case), and every job that was accepted must end. Damaged media is refused by
``POST /jobs`` itself, after the pipeline's own readers looked at it; what only the worker
can see (a large upload damaged past its header) is accepted and then *fails* with the
reason, never stays queued or running. After the run neither the service's logs nor the
audit log hold file contents, keys, secrets or upload tokens.

Inputs are read by the pipeline's own readers (``hostile_media.checked_copy``): what is
refused here is refused by the code production runs, only the face swap is left out.
"""

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.cli import main as enclave
from app.main import create_app
from app.security.serving import server_config
from app.settings import Settings
from app.storage.errors import InvalidKeyError
from app.storage.keys import validate_key
from tests.app.security import hostile_media as media
from tests.app.security.conftest import audit_lines, base_settings
from tests.app.security.live_server import mtls_client, running

PROBLEMS = "https://enclave.invalid/problems/"
MIB = 1024 * 1024
TERMINAL = {"succeeded", "failed", "canceled"}
WEBHOOK_KEY = base64.b64encode(b"webhook-key-that-must-not-leak!!").decode()
UPLOAD_SECRET = "upload-secret-that-must-not-leak-" + "0" * 8
URL_PASSWORD = "hunter2-in-a-webhook-url"
ALLOWLIST = ("hooks.example.com", "169.254.169.254", "127.0.0.1", "10.0.0.1", "[::1]")


# --- what a case must get ----------------------------------------------------------------


@dataclass(frozen=True)
class Refused:
    """Answered at once with this problem."""

    status: int
    slug: str
    title: str
    detail: str = ""  # a phrase the problem's detail must contain
    location: tuple[str, ...] | None = None  # for validation problems: the field at fault


@dataclass(frozen=True)
class FailsAsBadInput:
    """Accepted (202): the worker reads the file, and the job fails with ``bad_input``."""

    reason: str


@dataclass(frozen=True)
class Neutralised:
    """Accepted: a hostile file name is replaced by a safe storage key, the job completes."""


Expectation = Refused | FailsAsBadInput | Neutralised


@dataclass(frozen=True)
class Case:
    id: str
    send: Callable[[httpx.Client], httpx.Response]
    expect: Expectation


# --- how cases are sent -------------------------------------------------------------------


def job_with(
    target: tuple[str, bytes, str] | None = None,
    source: tuple[str, bytes, str] | None = None,
    **fields: str,
) -> Callable[[httpx.Client], httpx.Response]:
    """A multipart ``POST /jobs`` with inline files (good ones unless replaced)."""
    source = source or ("me.png", media.png_with_marker(10), "image/png")
    target = target or ("photo.png", media.png_with_marker(11), "image/png")

    def send(client: httpx.Client) -> httpx.Response:
        return client.post(
            "/jobs", files=[("source", source), ("target", target)], data=fields or None
        )

    return send


def options(**values: object) -> Callable[[httpx.Client], httpx.Response]:
    return job_with(options=json.dumps(values))


def raw_options(text: str) -> Callable[[httpx.Client], httpx.Response]:
    return job_with(options=text)


def compare_with(name: str, data: bytes, content_type: str):
    good = ("b.png", media.png_with_marker(12), "image/png")

    def send(client: httpx.Client) -> httpx.Response:
        return client.post("/compare", files=[("a", (name, data, content_type)), ("b", good)])

    return send


def raw_post(path: str, body, content_type: str = "application/json"):
    def send(client: httpx.Client) -> httpx.Response:
        return client.post(path, content=body, headers={"content-type": content_type})

    return send


def chunks_of(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def chunked_json(size: int):
    """A JSON body with no Content-Length (chunked), ``size`` bytes long."""

    def send(client: httpx.Client) -> httpx.Response:
        body = b'{"pad": "' + b"x" * (size - 11) + b'"}'
        return client.post(
            "/jobs", content=chunks_of(body), headers={"content-type": "application/json"}
        )

    return send


def multipart_by_hand(filename: str) -> Callable[[httpx.Client], httpx.Response]:
    """A job whose target's file name is sent byte for byte (no client-side escaping)."""

    def send(client: httpx.Client) -> httpx.Response:
        boundary = "hostile-" + uuid.uuid4().hex
        parts = [
            ("source", "me.png", media.png_with_marker(13)),
            ("target", filename, media.png_with_marker(14)),
        ]
        body = b"".join(
            f"--{boundary}\r\nContent-Disposition: form-data; name={name}; "
            f'filename="{name_of_file}"\r\nContent-Type: image/png\r\n\r\n'.encode()
            + data
            + b"\r\n"
            for name, name_of_file, data in parts
        )
        body += f"--{boundary}--\r\n".encode()
        return client.post(
            "/jobs",
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )

    return send


def uploaded_then_submitted(filename: str, data: bytes, content_type: str = "image/png"):
    """``POST /uploads`` (JSON) + ``PUT`` the bytes + a JSON ``POST /jobs`` referencing it."""

    def send(client: httpx.Client) -> httpx.Response:
        ids = []
        for name, payload in (("me.png", media.png_with_marker(15)), (filename, data)):
            grant = client.post(
                "/uploads",
                json={"filename": name, "content_type": content_type, "size": len(payload)},
            )
            if grant.status_code != 201:
                return grant  # refused at POST /uploads: that answer is the case's
            body = grant.json()
            put = client.request(
                body["method"], body["url"], content=payload, headers=body["headers"]
            )
            assert put.status_code == 204, put.text
            UPLOAD_URLS.append(body["url"])
            ids.append(body["upload_id"])
        return client.post(
            "/jobs", json={"sources": [{"upload_id": ids[0]}], "target": {"upload_id": ids[1]}}
        )

    return send


def upload_past_its_size(client: httpx.Client) -> httpx.Response:
    grant = client.post(
        "/uploads", json={"filename": "a.png", "content_type": "image/png", "size": 100}
    ).json()
    UPLOAD_URLS.append(grant["url"])
    return client.put(grant["url"], content=b"x" * 101, headers=grant["headers"])


def forged_upload_token(client: httpx.Client) -> httpx.Response:
    grant = client.post(
        "/uploads", json={"filename": "a.png", "content_type": "image/png", "size": 10}
    ).json()
    UPLOAD_URLS.append(grant["url"])
    return client.put(grant["url"][:-4] + "AAAA", content=b"x" * 10)


UPLOAD_URLS: list[str] = []  # every upload URL handed out: none may reach a log


# --- the corpus ---------------------------------------------------------------------------


def invalid(*location: str) -> Refused:
    return Refused(422, "validation", "Request validation failed", location=location)


def bad_media(reason: str) -> Refused:
    return Refused(422, "bad-media", "Unusable media", reason)


def bad_name() -> Refused:
    return Refused(422, "invalid-name", "Invalid object name", "must be a plain name")


def webhook_refused(reason: str) -> Refused:
    return Refused(422, "webhook-url-refused", "Webhook URL not allowed", reason)


TOO_LARGE = Refused(413, "body-too-large", "Request body too large", "at most")
PNG, JPEG, MP4 = "image/png", "image/jpeg", "video/mp4"

CASES = [
    # Bodies: refused by the security layer before any parser runs.
    Case(
        "huge-json-declared-length",
        raw_post("/jobs", b'{"pad": "' + b"x" * (2 * MIB) + b'"}'),
        TOO_LARGE,
    ),
    Case("huge-json-chunked", chunked_json(2 * MIB), TOO_LARGE),
    Case(
        "huge-json-as-octet-stream",
        raw_post("/jobs", b"[" + b"0," * MIB + b"0]", "application/octet-stream"),
        TOO_LARGE,
    ),
    Case(
        "multipart-over-the-ceiling",
        job_with(target=("big.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (2 * MIB), PNG)),
        TOO_LARGE,
    ),
    Case(
        "deep-json-arrays",
        raw_post("/jobs", b"[" * 100_000 + b"]" * 100_000),
        Refused(400, "json-too-deep", "JSON nested too deeply", "64 levels"),
    ),
    Case(
        "deep-json-objects",
        raw_post("/uploads", b'{"a":' * 65 + b"1" + b"}" * 65),
        Refused(400, "json-too-deep", "JSON nested too deeply", "64 levels"),
    ),
    Case(
        "bad-utf8-json",
        raw_post("/jobs", b'{"sources": [{"upload_id": "\xff\xfe\xfd"}]}'),
        Refused(400, "invalid-encoding", "Request body is not UTF-8", "offset 28"),
    ),
    Case(
        "overlong-utf8-in-upload-name",
        raw_post("/uploads", b'{"filename": "\xc0\xaf\xc0\xafetc", "content_type": "image/png"}'),
        Refused(400, "invalid-encoding", "Request body is not UTF-8"),
    ),
    Case(
        "json-body-not-an-object",
        raw_post("/jobs", b'"just a string"'),
        invalid("body"),
    ),
    # Damaged or disguised media inside a job: refused at submission by the pipeline's readers.
    Case(
        "truncated-jpeg-target",
        job_with(target=("cut.jpg", media.truncated_jpeg(), JPEG)),
        bad_media("truncated"),
    ),
    Case(
        "truncated-png-source",
        job_with(source=("cut.png", media.truncated_png(), PNG)),
        bad_media("truncated"),
    ),
    Case(
        "corrupt-png-pixels",
        job_with(target=("noise.png", media.corrupt_png(), PNG)),
        bad_media("could not be decoded"),
    ),
    Case(
        "png-header-50000x50000",
        job_with(target=("bomb.png", media.png_bomb_header(), PNG)),
        bad_media("2,500,000,000 pixels"),
    ),
    Case(
        "zip-renamed-jpg",
        job_with(target=("holiday.jpg", media.zip_archive(), JPEG)),
        bad_media("not a format we read"),
    ),
    Case(
        "jpeg-zip-polyglot",
        job_with(target=("poly.jpg", media.jpeg_zip_polyglot(), JPEG)),
        bad_media("also carries a ZIP"),
    ),
    Case(
        "wrong-magic-sent-as-png",
        job_with(target=("fake.png", media.wrong_magic(), PNG)),
        bad_media("not a format we read"),
    ),
    Case(
        "truncated-mp4-target",
        job_with(target=("cut.mp4", media.truncated_mp4(), MP4)),
        bad_media("not a readable video"),
    ),
    Case(
        "corrupt-mp4-target",
        job_with(target=("noise.mp4", media.corrupt_mp4(), MP4)),
        bad_media("not a readable video"),
    ),
    Case(
        "mp4-as-a-source-photo",
        job_with(source=("me.jpg", media.mp4_bytes(), JPEG)),
        bad_media("is a video"),
    ),
    Case(
        "zip-through-the-upload-route",
        uploaded_then_submitted("scan.jpg", media.zip_archive(), JPEG),
        bad_media("not a format we read"),
    ),
    Case(
        "upload-damaged-past-its-header",
        uploaded_then_submitted("cut.png", media.truncated_png(), PNG),
        FailsAsBadInput("truncated"),
    ),
    Case(
        "empty-target-file",
        job_with(target=("empty.png", b"", PNG)),
        Refused(422, "invalid-request", "Invalid request", "is empty"),
    ),
    # The same files at /compare, which reads them at once: 422 from the pipeline's reader.
    Case(
        "compare-truncated-jpeg",
        compare_with("a.jpg", media.truncated_jpeg(), JPEG),
        bad_media("truncated"),
    ),
    Case(
        "compare-png-header-50000x50000",
        compare_with("a.png", media.png_bomb_header(), PNG),
        bad_media("2,500,000,000 pixels"),
    ),
    Case(
        "compare-zip-renamed-jpg",
        compare_with("a.jpg", media.zip_archive(), JPEG),
        bad_media("not a format we read"),
    ),
    Case(
        "compare-jpeg-zip-polyglot",
        compare_with("a.jpg", media.jpeg_zip_polyglot(), JPEG),
        bad_media("also carries a ZIP"),
    ),
    Case(
        "compare-wrong-magic",
        compare_with("a.png", media.wrong_magic(), PNG),
        bad_media("not a format we read"),
    ),
    Case(
        "compare-mp4-as-photo",
        compare_with("a.jpg", media.mp4_bytes(), JPEG),
        bad_media("is a video"),
    ),
    # Path traversal in file names: refused, never written anywhere.
    Case("name-dot-dot-etc-passwd", multipart_by_hand("../../etc/passwd"), bad_name()),
    Case("name-escaping-the-root", multipart_by_hand("../../../outside.png"), bad_name()),
    Case("name-absolute", multipart_by_hand("/tmp/enclave-hostile/owned.png"), bad_name()),
    Case("name-backslashes", multipart_by_hand("..\\..\\..\\windows\\win.ini"), bad_name()),
    Case("name-with-nul", multipart_by_hand("photo.png\x00.sh"), bad_name()),
    Case(
        "upload-name-traversal",
        uploaded_then_submitted("../../../outside-upload.png", media.png_with_marker(16)),
        bad_name(),
    ),
    Case("name-plain-but-unusual", multipart_by_hand("my photo (1).png"), Neutralised()),
    # Webhooks: a request the service would make on the caller's behalf (SSRF).
    Case(
        "webhook-cloud-metadata",
        job_with(webhook_url="https://169.254.169.254/latest/meta-data/iam"),
        webhook_refused("cloud metadata address"),
    ),
    Case(
        "webhook-loopback-v4",
        job_with(webhook_url="https://127.0.0.1/hook"),
        webhook_refused("loopback address"),
    ),
    Case(
        "webhook-private-10",
        job_with(webhook_url="https://10.0.0.1/hook"),
        webhook_refused("private address"),
    ),
    Case(
        "webhook-loopback-v6",
        job_with(webhook_url="https://[::1]/hook"),
        webhook_refused("loopback address"),
    ),
    Case(
        "webhook-not-allowlisted",
        job_with(webhook_url="https://evil.example.net/hook"),
        webhook_refused("not in the webhook allowlist"),
    ),
    Case(
        "webhook-plain-http",
        job_with(webhook_url="http://hooks.example.com/hook"),
        webhook_refused("use https"),
    ),
    Case(
        "webhook-credentials-in-url",
        job_with(webhook_url=f"https://user:{URL_PASSWORD}@hooks.example.com/hook"),
        webhook_refused("credentials in the URL"),
    ),
    Case(
        "webhook-file-scheme",
        job_with(webhook_url="file:///etc/passwd"),
        webhook_refused("scheme 'file'"),
    ),
    # Options: negative, huge, unknown and mistyped values.
    Case(
        "detector-score-negative",
        options(face_detector_score=-1),
        invalid("body", "options", "face_detector_score"),
    ),
    Case(
        "detector-score-1e308",
        options(face_detector_score=1e308),
        invalid("body", "options", "face_detector_score"),
    ),
    Case(
        "detector-score-nan",
        raw_options('{"face_detector_score": NaN}'),
        invalid("body", "options", "face_detector_score"),
    ),
    Case(
        "trim-start-negative",
        options(trim_frame_start=-5),
        invalid("body", "options", "trim_frame_start"),
    ),
    Case(
        "video-quality-1000",
        options(output_video_quality=1000),
        invalid("body", "options", "output_video_quality"),
    ),
    Case(
        "reference-position-5000-digits",
        raw_options('{"reference_face_position": 1' + "0" * 5000 + "}"),
        invalid("body", "options"),
    ),
    Case(
        "unknown-frame-processor",
        options(frame_processors=["face_swapper", "rm_rf"]),
        invalid("body", "options", "frame_processors", "1"),
    ),
    Case(
        "unknown-option-field",
        options(face_detector_model="retinaface", shell="rm -rf /"),
        invalid("body", "options", "shell"),
    ),
    Case(
        "option-of-the-wrong-type",
        options(face_detector_score="very high"),
        invalid("body", "options", "face_detector_score"),
    ),
    Case(
        "options-not-an-object",
        raw_options("[1, 2, 3]"),
        invalid("body", "options"),
    ),
    Case(
        "json-job-with-wrong-types",
        raw_post("/jobs", json.dumps({"sources": "me.png", "target": 7}).encode()),
        invalid("body", "sources"),
    ),
    Case(
        "json-job-with-unknown-field",
        raw_post(
            "/jobs",
            json.dumps(
                {
                    "sources": [{"upload_id": str(uuid.uuid4())}],
                    "target": {"upload_id": str(uuid.uuid4())},
                    "owner": "bob",
                }
            ).encode(),
        ),
        invalid("body", "owner"),
    ),
    Case(
        "upload-size-negative",
        raw_post(
            "/uploads",
            json.dumps({"filename": "a.png", "content_type": "image/png", "size": -1}).encode(),
        ),
        invalid("body", "size"),
    ),
    Case(
        "upload-content-type-html",
        raw_post(
            "/uploads",
            json.dumps({"filename": "a.html", "content_type": "text/html", "size": 9}).encode(),
        ),
        invalid("body", "content_type"),
    ),
    Case(
        "upload-size-over-the-limit",
        raw_post(
            "/uploads",
            json.dumps({"filename": "a.mp4", "content_type": "video/mp4", "size": 10**15}).encode(),
        ),
        Refused(422, "invalid-request", "Invalid request", "allowed"),
    ),
    Case(
        "upload-past-its-announced-size",
        upload_past_its_size,
        Refused(413, "too-large", "Upload too large"),
    ),
    Case(
        "upload-with-a-forged-token",
        forged_upload_token,
        Refused(403, "upload-denied", "Upload URL not valid"),
    ),
]


# --- the live service ---------------------------------------------------------------------


class LogRecords(logging.Handler):
    """Every record the service process logs while the module runs, fully formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Service:
    url: str
    root: Path
    settings: Settings
    logs: LogRecords
    accepted: dict[str, str] = field(default_factory=dict)  # case id -> job id

    @property
    def audit_log(self) -> Path:
        return self.settings.security.audit_path


@pytest.fixture(scope="module")
def service(pki, tmp_path_factory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("hostile")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{root / 'enclave.db'}",
        storage_dir=root / "storage",
        upload_secret=UPLOAD_SECRET,
        webhook_allowlist=ALLOWLIST,
        webhook_secret=f"whsec_{WEBHOOK_KEY}",
        security=base_settings(
            pki,
            audit_path=root / "audit.jsonl",
            rate_limit_per_second=0,  # the corpus is many requests; the limit has own tests
            max_multipart_body_bytes=MIB,
        ),
    )
    app = create_app(
        settings, process_file=media.checked_copy, compare_images=media.checked_compare
    )
    config = server_config(app, settings.security, "127.0.0.1", 0, log_level="debug")
    # After uvicorn's logging set-up, which replaces the handlers of its own loggers.
    logs = LogRecords()
    watched = [logging.getLogger(name) for name in ("app", "pipeline", "uvicorn")]
    levels = [logger.level for logger in watched]
    for logger in watched:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(logs)
    try:
        with running(config) as url:
            yield Service(url, root, settings, logs)
    finally:
        for logger, level in zip(watched, levels, strict=True):
            logger.removeHandler(logs)
            logger.setLevel(level)


@pytest.fixture(scope="module")
def alice(pki, service) -> Iterator[httpx.Client]:
    with mtls_client(pki, "alice", service.url) as client:
        client.timeout = httpx.Timeout(30)
        yield client


def wait_for_end(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout_s} s")
        time.sleep(0.1)


# --- the tests ----------------------------------------------------------------------------


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_a_hostile_request_gets_a_precise_answer_and_the_service_keeps_serving(
    case, service, alice
):
    response = case.send(alice)
    expect = case.expect
    if isinstance(expect, Refused):
        assert response.status_code == expect.status, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["type"], problem["title"]) == (PROBLEMS + expect.slug, expect.title)
        assert problem["status"] == expect.status
        assert expect.detail in problem["detail"]
        if expect.location is not None:
            locations = [tuple(error["location"]) for error in problem["errors"]]
            assert expect.location in locations, locations
    else:
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        service.accepted[case.id] = job_id
        job = wait_for_end(alice, job_id)
        if isinstance(expect, FailsAsBadInput):
            assert job["state"] == "failed", job
            assert job["error"]["code"] == "bad_input"
            assert expect.reason in job["error"]["detail"]
        else:
            assert job["state"] == "succeeded", job
            output = alice.get(job["output"]["url"])
            assert output.status_code == 200
            assert output.content.startswith(b"\x89PNG")
    assert alice.get("/healthz").status_code == 200


# Found by test_schemathesis.py: an unbounded ttl_seconds overflowed timedelta (500).
@pytest.mark.parametrize(
    "send",
    [
        job_with(ttl_seconds="93314709491587920"),
        raw_post(
            "/jobs",
            json.dumps(
                {
                    "sources": [{"upload_id": str(uuid.uuid4())}],
                    "target": {"upload_id": str(uuid.uuid4())},
                    "ttl_seconds": 93314709491587920,
                }
            ).encode(),
        ),
    ],
    ids=["multipart", "json"],
)
def test_a_ttl_past_any_calendar_is_a_client_error(send, service, alice):
    response = send(alice)
    assert alice.get("/healthz").status_code == 200
    assert 400 <= response.status_code < 500, response.text


def test_no_accepted_job_is_left_unfinished(service, alice):
    listed = alice.get("/jobs", params={"limit": 200}).json()["items"]
    assert {job["id"] for job in listed} >= set(service.accepted.values())
    assert [job["id"] for job in listed if job["state"] not in TERMINAL] == []


def test_hostile_file_names_never_reach_outside_the_storage_root(service):
    storage = service.settings.storage_dir
    outside = [
        path.relative_to(service.root)
        for path in service.root.rglob("*")
        if path.is_file() and storage not in path.parents
    ]
    assert sorted(str(path) for path in outside if not path.name.startswith("enclave.db")) == [
        "audit.jsonl",
        "audit.jsonl.head",
    ]
    assert not Path("/tmp/enclave-hostile/owned.png").exists()
    for path in storage.rglob("*"):
        if path.is_file():
            try:
                validate_key(str(path.relative_to(storage)))
            except InvalidKeyError as error:
                pytest.fail(f"unsafe stored key {path}: {error}")


def test_every_refusal_is_audited_and_the_chain_verifies(service, capsys):
    lines = audit_lines(service.audit_log)
    body_refusals = [line for line in lines if line["status"] in (400, 413) and not line["route"]]
    assert len(body_refusals) >= 8  # the security layer's own 400/413 answers
    assert {line["outcome"] for line in body_refusals} == {"denied"}
    assert all(line["reason"] for line in body_refusals)
    assert {line["identity"] for line in lines} == {"alice"}
    assert enclave(["audit", "verify", str(service.audit_log)]) == 0
    capsys.readouterr()


def test_nothing_sensitive_reaches_the_logs_or_the_audit_trail(service, pki):
    assert service.logs.lines, "the service logged nothing: the capture is broken"
    texts = {
        "audit log": service.audit_log.read_text(),
        "service log": "\n".join(service.logs.lines),
    }
    tokens = [url.rsplit("/", 1)[-1] for url in UPLOAD_URLS]
    assert tokens, "no upload URLs were handed out: the upload cases did not run"
    forbidden = {
        "file contents": media.CONTENT_MARKER.decode(),
        "PNG bytes": "IHDR",
        "private key": "PRIVATE KEY",
        "client key material": pki.client_key("alice").read_text().splitlines()[1][:40],
        "webhook secret": WEBHOOK_KEY,
        "upload secret": UPLOAD_SECRET,
        "password in a webhook URL": URL_PASSWORD,
        "presigned query string": "X-Amz-",
        **{f"upload token {n}": token for n, token in enumerate(tokens)},
    }
    for where, text in texts.items():
        for what, needle in forbidden.items():
            assert needle not in text, f"{what} found in the {where}"
