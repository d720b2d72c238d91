"""``create_app(settings)``: wiring only. Everything is built in the lifespan, none at import."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi

from app.api import compare, jobs, ops, uploads
from app.api.compare import CompareImages, pipeline_compare_images
from app.api.deps import get_identity
from app.api.problems import install_problem_handlers
from app.cloudwatch import build_publisher, publish_forever
from app.db import create_engine, create_session_factory, head_revision, upgrade_database
from app.heap import tune_garbage_collector
from app.jobs.dispatch import Dispatcher, build_dispatcher
from app.jobs.notify import webhook_policy
from app.jobs.pipeline_entry import ProcessFile, pipeline_process_file
from app.jobs.service import JobService
from app.metrics import ServiceMetrics
from app.security.audit import AuditSink, build_audit_sink
from app.security.authz import require_role_by_method
from app.security.config import AuditSinkKind
from app.security.middleware import install_security
from app.security.roles import Role
from app.settings import Settings
from app.storage.factory import build_storage, storage_config_from_settings

logger = logging.getLogger(__name__)

API_VERSION = "1.0.0"


def create_app(
    settings: Settings,
    *,
    process_file: ProcessFile = pipeline_process_file,
    compare_images: CompareImages = pipeline_compare_images,
) -> FastAPI:
    """The service. ``process_file``/``compare_images`` default to the real pipeline."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.is_sqlite:
            await asyncio.to_thread(upgrade_database, settings.database_url)
        engine = create_engine(settings.database_url)
        sessions = create_session_factory(engine)
        storage = build_storage(storage_config_from_settings(settings))
        metrics = ServiceMetrics()
        dispatcher: Dispatcher = build_dispatcher(
            settings, process_file=process_file, on_report=metrics.observe
        )
        policy = webhook_policy(settings)
        service = JobService(
            settings,
            sessions,
            storage,
            dispatcher,
            check_webhook_url=lambda url: policy.check(url, resolve_dns=False),
        )
        app.state.settings = settings
        app.state.engine = engine
        app.state.schema_revision = head_revision()
        app.state.sessions = sessions
        app.state.storage = storage
        app.state.dispatcher = dispatcher
        app.state.job_service = service
        app.state.metrics = metrics
        app.state.compare_images = compare_images
        app.state.compare_slots = asyncio.Semaphore(settings.concurrent_compares)
        await dispatcher.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            recovered = await service.redispatch_pending()
            if recovered:
                logger.info("re-dispatched %d queued or orphaned jobs", len(recovered))
            tasks.append(asyncio.create_task(_sweep_forever(service, settings)))
            publisher = build_publisher(settings)
            if publisher is not None:
                interval = settings.cloudwatch_interval.total_seconds()
                tasks.append(asyncio.create_task(publish_forever(sessions, publisher, interval)))
            tune_garbage_collector()
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await dispatcher.close()
            await engine.dispose()

    app = FastAPI(
        title="Enclave",
        version=API_VERSION,
        description="Private face swapping: submit jobs, follow them, fetch results.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_problem_handlers(app)
    # Reads need the reader role, anything that creates or changes needs submitter; which
    # jobs a caller may see is the job service's ownership check.
    caller_with_role = require_role_by_method(Role.READER, Role.SUBMITTER, caller=get_identity)
    for router in (jobs.router, uploads.router, compare.router):
        app.include_router(router, dependencies=[Depends(caller_with_role)])
    app.include_router(ops.router)
    install_security(
        app,
        settings.security,
        _audit_sink(settings),
        insecure_dev=settings.insecure_dev,
        dev_identity=settings.dev_identity,
        anonymous_paths=frozenset({"/healthz"}),
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the schemas of bodies that routes parse themselves."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for model in jobs.SELF_PARSED_BODIES:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, definition in schema.pop("$defs", {}).items():
                schemas.setdefault(name, definition)
            schemas.setdefault(model.__name__, schema)
        app.openapi_schema = document
    return app.openapi_schema


def _audit_sink(settings: Settings) -> AuditSink:
    """The audit sink; the object-store one gets its own storage client (built, not opened)."""
    storage = None
    if settings.security.audit_sink is AuditSinkKind.OBJECT_STORE:
        storage = build_storage(storage_config_from_settings(settings))
    return build_audit_sink(settings.security, storage)


async def _sweep_forever(service: JobService, settings: Settings) -> None:
    """Expire, recover and purge on a timer; one failed sweep never stops the next."""
    while True:
        await asyncio.sleep(settings.sweep_interval.total_seconds())
        try:
            report = await service.sweep()
        except Exception:
            logger.exception("sweep failed; trying again in %s", settings.sweep_interval)
            continue
        if report.expired or report.redispatched or report.outputs_purged:
            logger.info(
                "sweep: %d expired, %d re-dispatched, %d outputs purged",
                len(report.expired),
                len(report.redispatched),
                len(report.outputs_purged),
            )
