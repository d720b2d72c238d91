"""Request body limits, enforced before the application parses a byte.

Every body is one of three kinds, each with its own ceiling from ``SecuritySettings``:

- a raw upload (any body under an upload path prefix, e.g. ``PUT /uploads/{token}``):
  ``max_upload_body_bytes``, streamed through to the route;
- ``multipart/form-data``: ``max_multipart_body_bytes``, streamed through (the form parser
  spools files to disk, so without a ceiling one request could fill it);
- anything else, which in this API is JSON: ``max_json_body_bytes``. Such a body is small,
  so it is read whole here and checked before any JSON parser sees it: it must be UTF-8 and
  nest at most ``max_json_depth`` arrays and objects (a depth bomb is refused by scanning
  brackets, not by recursing into it).

A ``Content-Length`` over the ceiling is answered 413 before the body is read; a body
without one (chunked) is counted as it arrives and cut at the ceiling, also 413. Routes
keep their own, usually smaller, limits (an upload's announced size, an inline file's
size): this is the outer bound that holds even where a route forgets one.
"""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.security.config import SecuritySettings
from app.security.context import record_refusal
from app.security.problem import send_problem

CONTENT_LENGTH = b"content-length"
CONTENT_TYPE = b"content-type"
DEFAULT_UPLOAD_PATH_PREFIXES = ("/uploads/",)

# A JSON string (with its escapes) or one bracket: strings are skipped whole, so brackets
# inside them do not count. An unterminated string leaves its brackets counted, which can
# only overstate the depth of a document that is invalid anyway.
_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENING = frozenset(b"[{")
_QUOTE = ord('"')


class BodyKind(StrEnum):
    JSON = "json"
    MULTIPART = "multipart"
    UPLOAD = "upload"


@dataclass(frozen=True)
class BodyRefusal:
    """Why a body is refused, as the problem document the caller gets."""

    status: int
    slug: str
    title: str
    detail: str


class RequestBodyTooLargeError(HTTPException):
    """Raised from ``receive`` once a streamed body passes its ceiling.

    An ``HTTPException`` so that a Starlette application that meets it (a form parser, a
    route reading the stream) answers it quietly rather than logging a server error; the
    middleware then replaces whatever the application answered with its own 413.
    """

    def __init__(self, refusal: BodyRefusal) -> None:
        super().__init__(refusal.status, refusal.detail)
        self.refusal = refusal


@dataclass(frozen=True)
class BodyLimits:
    json_bytes: int
    json_depth: int
    multipart_bytes: int
    upload_bytes: int
    upload_path_prefixes: tuple[str, ...] = DEFAULT_UPLOAD_PATH_PREFIXES

    @classmethod
    def from_settings(
        cls,
        settings: SecuritySettings,
        upload_path_prefixes: tuple[str, ...] = DEFAULT_UPLOAD_PATH_PREFIXES,
    ) -> "BodyLimits":
        return cls(
            json_bytes=settings.max_json_body_bytes,
            json_depth=settings.max_json_depth,
            multipart_bytes=settings.max_multipart_body_bytes,
            upload_bytes=settings.max_upload_body_bytes,
            upload_path_prefixes=upload_path_prefixes,
        )

    def kind_of(self, path: str, content_type: str) -> BodyKind:
        """The kind of a request's body: by route first (a client picks its content type)."""
        if path.startswith(self.upload_path_prefixes):
            return BodyKind.UPLOAD
        if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
            return BodyKind.MULTIPART
        return BodyKind.JSON

    def ceiling(self, kind: BodyKind) -> int:
        return {
            BodyKind.JSON: self.json_bytes,
            BodyKind.MULTIPART: self.multipart_bytes,
            BodyKind.UPLOAD: self.upload_bytes,
        }[kind]


def too_large(kind: BodyKind, ceiling: int) -> BodyRefusal:
    hint = " (send large files with POST /uploads)" if kind is not BodyKind.UPLOAD else ""
    return BodyRefusal(
        413,
        "body-too-large",
        "Request body too large",
        f"a {kind.value} request body may be at most {ceiling} bytes{hint}",
    )


def nests_deeper_than(body: bytes, limit: int) -> bool:
    """Whether arrays and objects in the JSON text ``body`` nest more than ``limit`` deep."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # it cannot nest deeper than it has opening brackets
    depth = 0
    for match in _JSON_TOKEN.finditer(body):
        first = body[match.start()]
        if first in _OPENING:
            depth += 1
            if depth > limit:
                return True
        elif first != _QUOTE:
            depth -= 1
    return False


def check_json_body(body: bytes, max_depth: int) -> BodyRefusal | None:
    """``None`` when ``body`` may go on to the JSON parser, else why not."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return BodyRefusal(
            400,
            "invalid-encoding",
            "Request body is not UTF-8",
            f"the body must be UTF-8 JSON; invalid byte at offset {error.start}",
        )
    if nests_deeper_than(body, max_depth):
        return BodyRefusal(
            400,
            "json-too-deep",
            "JSON nested too deeply",
            f"arrays and objects may nest at most {max_depth} levels",
        )
    return None


def declared_length(scope: Scope) -> int | BodyRefusal | None:
    """The ``Content-Length`` header's value, ``None`` without one, or why it is unusable."""
    values = {value for name, value in scope.get("headers", []) if name == CONTENT_LENGTH}
    if not values:
        return None
    if len(values) == 1:
        (value,) = values
        if value.isdigit():
            return int(value)
    return BodyRefusal(
        400, "invalid-length", "Invalid Content-Length", "Content-Length must be one integer"
    )


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


class BodyLimitMiddleware:
    """Refuses oversized bodies (413) and unsafe JSON (400) before the application runs."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = self.limits.kind_of(scope.get("path", ""), header(scope, CONTENT_TYPE))
        ceiling = self.limits.ceiling(kind)
        length = declared_length(scope)
        if isinstance(length, BodyRefusal):
            await refuse(scope, send, length)
            return
        if length is not None and length > ceiling:
            await refuse(scope, send, too_large(kind, ceiling))
            return
        if kind is BodyKind.JSON:
            await self._buffered(scope, receive, send, ceiling)
        else:
            await self._streamed(scope, receive, send, too_large(kind, ceiling), ceiling)

    async def _buffered(self, scope: Scope, receive: Receive, send: Send, ceiling: int) -> None:
        """Read the (small) body whole, check it, then hand it to the application."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: pass that on
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > ceiling:
                await refuse(scope, send, too_large(BodyKind.JSON, ceiling))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = check_json_body(body, self.limits.json_depth)
        if refusal is not None:
            await refuse(scope, send, refusal)
            return
        whole: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([whole], receive), send)

    async def _streamed(
        self, scope: Scope, receive: Receive, send: Send, refusal: BodyRefusal, ceiling: int
    ) -> None:
        """Pass the body through as it arrives, cutting it with 413 at the ceiling."""
        size = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal size, exceeded
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > ceiling:
                    exceeded = True
                    raise RequestBodyTooLargeError(refusal)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the application's reaction to the cut; the 413 below replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await refuse(scope, send, refusal)


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that yields ``messages`` first, then whatever ``receive`` yields."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def refuse(scope: Scope, send: Send, refusal: BodyRefusal) -> None:
    record_refusal(scope, refusal.detail)
    await send_problem(
        send,
        refusal.status,
        refusal.detail,
        problem_type=refusal.slug,
        title=refusal.title,
        instance=scope.get("path"),
    )


__all__ = [
    "DEFAULT_UPLOAD_PATH_PREFIXES",
    "BodyKind",
    "BodyLimitMiddleware",
    "BodyLimits",
    "BodyRefusal",
    "RequestBodyTooLargeError",
    "check_json_body",
    "nests_deeper_than",
]
