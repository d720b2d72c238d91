"""RFC 9457 problem documents sent straight from ASGI middleware (before any route runs)."""

import json

from starlette.types import Send

PROBLEM_CONTENT_TYPE = b"application/problem+json"
TITLES = {
    401: "Not authenticated",
    403: "Forbidden",
    429: "Too many requests",
}


async def send_problem(
    send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer the request with a problem document; the body says what to do, never a secret."""
    body = json.dumps(
        {
            "type": "about:blank",
            "title": TITLES.get(status, "Error"),
            "status": status,
            "detail": detail,
        }
    ).encode("utf-8")
    raw_headers = [
        (b"content-type", PROBLEM_CONTENT_TYPE),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    raw_headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
