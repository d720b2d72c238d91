"""JSON log lines with the request id, and nothing a log must never hold.

Every record becomes one JSON object: time, level, logger, message, the id of the request
being served (from a context variable the audit middleware sets) and the exception type
when there is one. Before a message is written, URL query strings (presigned URLs carry
their signature there) and anything that looks like a PEM private key or a webhook secret
are replaced, so a careless ``logger.info("%s", url)`` cannot leak them.
"""

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final

REQUEST_ID: ContextVar[str | None] = ContextVar("enclave_request_id", default=None)
"""The id of the request the current task serves (``X-Request-Id`` in the response)."""

_REDACTIONS: Final = (
    (re.compile(r"(https?://[^\s?#\"']+)\?[^\s\"']*"), r"\1?<redacted>"),
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "<private key redacted>",
    ),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_<redacted>"),
    (re.compile(r"(?i)(X-Amz-Signature|Signature|X-Amz-Credential)=[^&\s]+"), r"\1=<redacted>"),
)


def redact(text: str) -> str:
    """``text`` with query strings, private keys and webhook secrets replaced."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__
            line["trace"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time, never to a stream since closed."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines (the service's only log sink)."""
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "celery", "celery.worker"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
