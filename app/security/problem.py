"""RFC 9457 problem documents sent straight from ASGI middleware (before any route runs)."""

import json

from starlette.types import Send

PROBLEM_CONTENT_TYPE = b"application/problem+json"
# The API's own problem types live under the same base (``app.api.problems.TYPE_BASE``),
# so a client matches every refusal the same way, whichever layer made it.
PROBLEM_TYPE_BASE = "https://enclave.invalid/problems/"
TITLES = {
    401: "Not authenticated",
    403: "Forbidden",
    429: "Too many requests",
}


async def send_problem(
    send: Send,
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    problem_type: str | None = None,
    title: str | None = None,
    instance: str | None = None,
) -> None:
    """Answer the request with a problem document; the body says what to do, never a secret.

    ``problem_type`` is a slug under ``PROBLEM_TYPE_BASE``; without one the type is
    ``about:blank`` and the title the status's own.
    """
    document: dict[str, object] = {
        "type": PROBLEM_TYPE_BASE + problem_type if problem_type else "about:blank",
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        document["instance"] = instance
    body = json.dumps(document).encode("utf-8")
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    raw_headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
