"""Operations endpoints: liveness, readiness (DB, storage, broker), Prometheus metrics."""

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import StorageDep
from app.api.schemas import Health, ModelLicence, Readiness
from app.db import current_revision
from app.metrics import CONTENT_TYPE, ServiceMetrics
from app.settings import Settings
from pipeline.models import ModelRegistry

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "a dependency is unreachable"}},
)
async def readyz(request: Request, storage: StorageDep) -> JSONResponse:
    """Ready to take jobs: the job store, the storage and the dispatcher all answer."""
    checks: dict[str, str] = {}
    try:
        revision = await current_revision(request.app.state.engine)
        expected = request.app.state.schema_revision
        checks["database"] = (
            "ok"
            if revision == expected
            else f"schema at {revision}, code needs {expected}: run `enclave db upgrade`"
        )
    except Exception as exc:
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await storage.check()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"unavailable: {type(exc).__name__}"
    try:
        await request.app.state.dispatcher.check()
        checks["dispatcher"] = "ok"
    except Exception as exc:
        checks["dispatcher"] = f"unavailable: {type(exc).__name__}"
    try:
        models = await asyncio.to_thread(model_licences, request.app.state.settings)
        checks["models"] = "ok"
    except Exception as exc:
        models = []
        checks["models"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    if not ready:
        logger.warning("not ready: %s", checks)
    body = Readiness(status="ok" if ready else "unavailable", checks=checks, models=models)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


def model_licences(settings: Settings) -> list[ModelLicence]:
    """Every model in the manifest with its licence (enterprise buyers audit this)."""
    allowed = settings.allow_non_commercial_models
    return [
        ModelLicence(
            name=spec.name,
            task=spec.task.value,
            kind=spec.kind,
            licence=spec.licence,
            commercial_use=spec.commercial_use,
            bundled=spec.bundled,
            loadable=spec.commercial_use or allowed,
        )
        for spec in ModelRegistry(settings.model_dir, allow_non_commercial=allowed).specs()
    ]


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    service_metrics: ServiceMetrics = request.app.state.metrics
    await service_metrics.refresh(request.app.state.sessions)
    return Response(service_metrics.render(), media_type=CONTENT_TYPE)
