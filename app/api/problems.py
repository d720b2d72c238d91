"""The one place that turns errors into HTTP: RFC 9457 problem details.

Every error response is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``instance`` (the request path); validation errors add ``errors``. Messages
are the exceptions' own, written for the caller; internal errors say nothing internal.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app import errors
from app.storage import errors as storage_errors
from app.webhooks.errors import WebhookURLError
from pipeline import errors as pipeline_errors

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://enclave.invalid/problems/"

# (exception class, status, slug, title), most specific first.
_MAPPING: tuple[tuple[type[Exception], int, str, str], ...] = (
    (errors.JobNotFoundError, 404, "job-not-found", "Job not found"),
    (errors.UploadNotFoundError, 422, "upload-not-found", "Upload not found"),
    (errors.InvalidJobRequestError, 422, "invalid-request", "Invalid request"),
    (errors.JobConflictError, 409, "job-state-conflict", "Job state does not allow this"),
    (errors.IdempotencyConflictError, 409, "idempotency-conflict", "Idempotency-Key reused"),
    (errors.QueueFullError, 429, "queue-full", "Too many queued jobs"),
    (errors.ResultGoneError, 410, "result-gone", "Result no longer available"),
    (errors.ServiceNotReadyError, 503, "not-ready", "Service not ready"),
    (errors.NotAuthenticatedError, 401, "not-authenticated", "Not authenticated"),
    (WebhookURLError, 422, "webhook-url-refused", "Webhook URL not allowed"),
    (storage_errors.ObjectTooLargeError, 413, "too-large", "Upload too large"),
    (storage_errors.UploadTokenExpiredError, 410, "upload-expired", "Upload URL expired"),
    (storage_errors.InvalidUploadTokenError, 403, "upload-denied", "Upload URL not valid"),
    (storage_errors.InvalidKeyError, 422, "invalid-name", "Invalid object name"),
    (storage_errors.StorageUnavailableError, 503, "storage-unavailable", "Storage unavailable"),
    (pipeline_errors.InputError, 422, "bad-media", "Unusable media"),
    (pipeline_errors.ModelError, 503, "model-unavailable", "Model unavailable"),
    (pipeline_errors.ProviderError, 503, "provider-unavailable", "No execution provider"),
)


def problem(
    request: Request,
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    for error_class, *_ in _MAPPING:
        app.add_exception_handler(error_class, _mapped)
    app.add_exception_handler(Exception, _unexpected)


async def _mapped(request: Request, exc: Exception) -> JSONResponse:
    for error_class, status, slug, title in _MAPPING:
        if isinstance(exc, error_class):
            headers = None
            if isinstance(exc, errors.QueueFullError):
                headers = {"Retry-After": str(exc.retry_after_s)}
            elif isinstance(exc, errors.NotAuthenticatedError):
                headers = {"WWW-Authenticate": 'Mutual realm="enclave"'}
            return problem(request, status, slug, title, str(exc), headers=headers)
    return await _unexpected(request, exc)


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "location": [str(part) for part in error.get("loc", ())],
            "message": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return problem(
        request,
        422,
        "validation",
        "Request validation failed",
        f"{len(details)} problem(s) in the request",
        errors=details,
    )


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    title = {404: "Not found", 405: "Method not allowed", 411: "Length required"}.get(
        exc.status_code, "HTTP error"
    )
    slug = title.lower().replace(" ", "-")
    return problem(
        request, exc.status_code, slug, title, str(exc.detail), headers=dict(exc.headers or {})
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # the route template, not the path: /uploads/{token} must not put a token in the log
    route = getattr(request.scope.get("route"), "path", "an unmatched route")
    logger.error("unhandled error on %s %s", request.method, route, exc_info=exc)
    return problem(
        request, 500, "internal", "Internal error", "the service failed; it has been logged"
    )
