"""Request body limits: refused before the application reads or parses the body, and audited."""

import json

import httpx
import pytest
from fastapi import FastAPI, Request

from app.security.audit.file_sink import FileAuditSink
from app.security.config import SecuritySettings
from app.security.limits import BodyKind, BodyLimits, check_json_body, nests_deeper_than
from app.security.middleware import install_security
from tests.app.security.conftest import audit_lines

PROBLEMS = "https://enclave.invalid/problems/"
LIMITS = {
    "max_json_body_bytes": 1024,
    "max_json_depth": 8,
    "max_multipart_body_bytes": 4096,
    "max_upload_body_bytes": 8192,
}


def limited_app(log, reached: list[str]) -> FastAPI:
    """Routes that read their bodies the three ways the service does; ``reached`` records
    which ran, to prove a refused body never got to one."""
    app = FastAPI()

    @app.post("/jobs")
    async def json_route(request: Request) -> dict[str, int]:
        reached.append("json")
        return {"keys": len(json.loads(await request.body()))}

    @app.post("/compare")
    async def form_route(request: Request) -> dict[str, int]:
        reached.append("form")
        async with request.form() as form:
            return {"fields": len(form)}

    @app.put("/uploads/{token}")
    async def upload_route(token: str, request: Request) -> dict[str, int]:
        reached.append("upload")
        return {"size": sum([len(chunk) async for chunk in request.stream()])}

    settings = SecuritySettings.model_validate(LIMITS)
    install_security(app, settings, FileAuditSink(log), insecure_dev=True)
    return app


@pytest.fixture
async def client(tmp_path):
    reached: list[str] = []
    transport = httpx.ASGITransport(app=limited_app(tmp_path / "audit.jsonl", reached))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        client.reached = reached  # type: ignore[attr-defined]
        client.log = tmp_path / "audit.jsonl"  # type: ignore[attr-defined]
        yield client


def chunked(data: bytes, size: int = 512):
    """A body without Content-Length, sent in pieces (as ``Transfer-Encoding: chunked``)."""

    async def pieces():
        for start in range(0, len(data), size):
            yield data[start : start + size]

    return pieces()


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEMS + slug
    assert problem["status"] == status
    return problem


async def test_bodies_within_their_limits_reach_the_routes(client):
    assert (await client.post("/jobs", json={"a": [[1]]})).json() == {"keys": 1}
    form = await client.post("/compare", files={"a": ("a.png", b"x" * 2000, "image/png")})
    assert form.json() == {"fields": 1}
    # A raw upload may be far larger than a JSON body, and may arrive chunked.
    upload = await client.put("/uploads/t0k3n", content=chunked(b"u" * 8000))
    assert upload.json() == {"size": 8000}
    assert client.reached == ["json", "form", "upload"]


async def test_a_declared_length_over_the_limit_is_refused_before_the_route_runs(client):
    json_body = json.dumps({"pad": "x" * 1100}).encode()
    refused = await client.post("/jobs", content=json_body, headers={"content-type": "text/json"})
    problem = assert_problem(refused, 413, "body-too-large")
    assert problem["title"] == "Request body too large"
    assert "1024 bytes" in problem["detail"]
    form = await client.post("/compare", files={"a": ("a.png", b"x" * 5000, "image/png")})
    assert_problem(form, 413, "body-too-large")
    upload = await client.put("/uploads/t0k3n", content=b"u" * 8193)
    assert_problem(upload, 413, "body-too-large")
    assert client.reached == []


async def test_a_chunked_body_is_cut_at_the_limit(client):
    json_cut = await client.post("/jobs", content=chunked(b"[" + b"1," * 600 + b"1]"))
    assert_problem(json_cut, 413, "body-too-large")
    assert client.reached == []  # a JSON body is read whole before the route runs
    upload_cut = await client.put("/uploads/t0k3n", content=chunked(b"u" * 9000))
    assert_problem(upload_cut, 413, "body-too-large")
    boundary = "b0undary"
    form = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=a; filename=a.png\r\n"
        f"Content-Type: image/png\r\n\r\n{'x' * 6000}\r\n--{boundary}--\r\n"
    ).encode()
    form_cut = await client.post(
        "/compare",
        content=chunked(form),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_problem(form_cut, 413, "body-too-large")
    # The streamed routes had started reading, and were stopped at the ceiling.
    assert client.reached == ["upload", "form"]


async def test_a_client_cannot_pick_the_upload_ceiling_with_its_content_type(client):
    octets = await client.post(
        "/jobs", content=b"u" * 2000, headers={"content-type": "application/octet-stream"}
    )
    assert_problem(octets, 413, "body-too-large")


async def test_deep_json_and_bad_utf8_are_refused_before_parsing(client):
    deep = await client.post("/jobs", content=b"[" * 9 + b"]" * 9)
    problem = assert_problem(deep, 400, "json-too-deep")
    assert problem["title"] == "JSON nested too deeply"
    bomb = await client.post("/jobs", content=b"[" * 1000)  # unbalanced, within the size
    assert_problem(bomb, 400, "json-too-deep")
    latin1 = await client.post("/jobs", content='{"name": "Zoë"}'.encode("latin-1"))
    problem = assert_problem(latin1, 400, "invalid-encoding")
    assert "offset 12" in problem["detail"]
    assert client.reached == []
    # Brackets inside strings are text, not nesting.
    text = await client.post("/jobs", json={"note": "[" * 100, "n": [[[[[[[1]]]]]]]})
    assert text.status_code == 200


async def test_every_refusal_is_audited_as_denied_with_its_reason(client):
    await client.post("/jobs", content=b"[" * 9 + b"]" * 9)
    await client.put("/uploads/t0k3n", content=chunked(b"u" * 9000))
    await client.post("/jobs", json={"ok": True})
    lines = audit_lines(client.log)
    assert [(line["status"], line["outcome"]) for line in lines] == [
        (400, "denied"),
        (413, "denied"),
        (200, "allowed"),
    ]
    assert lines[0]["reason"] == "arrays and objects may nest at most 8 levels"
    assert "at most 8192 bytes" in lines[1]["reason"]
    assert "t0k3n" not in json.dumps(lines)  # the raw path (an upload token) is not recorded


def test_nesting_depth_counts_brackets_outside_strings_only():
    assert not nests_deeper_than(b'{"a": [{"b": [1, 2]}]}', 4)
    assert nests_deeper_than(b'{"a": [{"b": [[1]]}]}', 4)
    assert not nests_deeper_than(b'["[[[[[", "\\"[[[[[[", {"k": "]]]]]"}]', 2)
    assert nests_deeper_than(b'[[["\\\\"], [[1]]]]', 3)  # an escaped backslash ends no string
    assert check_json_body(b"\xff", 64) is not None
    assert check_json_body("{}".encode("utf-8-sig"), 64) is None


def test_the_body_kind_is_decided_by_route_before_content_type():
    limits = BodyLimits(json_bytes=1, json_depth=1, multipart_bytes=2, upload_bytes=3)
    assert limits.kind_of("/uploads/abc", "application/json") is BodyKind.UPLOAD
    assert limits.kind_of("/jobs", "Multipart/Form-Data; boundary=x") is BodyKind.MULTIPART
    assert limits.kind_of("/jobs", "application/octet-stream") is BodyKind.JSON
    assert limits.kind_of("/uploads", "application/json") is BodyKind.JSON  # POST /uploads


async def call_directly(app, path: str, headers: list[tuple[bytes, bytes]], receive):
    """Drive the app as a server would, returning the status it answered."""
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT" if path.startswith("/uploads/") else "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return next(message["status"] for message in sent if message["type"] == "http.response.start")


async def test_a_declared_length_over_the_limit_is_answered_without_reading_a_byte(tmp_path):
    app = limited_app(tmp_path / "audit.jsonl", [])

    async def receive():
        raise AssertionError("the body was read")

    status = await call_directly(app, "/uploads/t0k3n", [(b"content-length", b"8193")], receive)
    assert status == 413


@pytest.mark.parametrize(
    ("path", "ceiling"),
    [("/jobs", LIMITS["max_json_body_bytes"]), ("/uploads/t0k3n", LIMITS["max_upload_body_bytes"])],
)
async def test_an_endless_chunked_body_is_read_only_up_to_the_ceiling(tmp_path, path, ceiling):
    app = limited_app(tmp_path / "audit.jsonl", [])
    pulled = 0

    async def endless():
        nonlocal pulled
        pulled += 1000
        return {"type": "http.request", "body": b"1" * 1000, "more_body": True}

    assert await call_directly(app, path, [], endless) == 413
    assert ceiling < pulled <= ceiling + 1000
