"""``/compare``: are two photos the same person? Stores nothing and logs no image."""

import asyncio
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol

from fastapi import APIRouter, File, Request, UploadFile

from app.api.deps import CurrentIdentity, SettingsDep
from app.api.jobs import PROBLEMS
from app.api.schemas import CompareView
from app.errors import InvalidJobRequestError
from pipeline.options import IMAGE_SUFFIXES, RunOptions

if TYPE_CHECKING:
    from pipeline.run import CompareResult

router = APIRouter(tags=["compare"])


class CompareImages(Protocol):
    """The pipeline's ``compare_images``."""

    def __call__(self, a: Path, b: Path, options: RunOptions) -> "CompareResult": ...


def pipeline_compare_images(a: Path, b: Path, options: RunOptions) -> "CompareResult":
    from pipeline.run import compare_images

    return compare_images(a, b, options)


ImageFile = Annotated[UploadFile, File(description="an image (jpg, png or webp)")]


@router.post("/compare", response_model=CompareView, responses=PROBLEMS)
async def compare(
    a: ImageFile, b: ImageFile, request: Request, identity: CurrentIdentity, settings: SettingsDep
) -> CompareView:
    """Identity similarity of the largest face in each image, and a same-person decision."""
    compare_images: CompareImages = request.app.state.compare_images
    limiter: asyncio.Semaphore = request.app.state.compare_slots
    options = RunOptions(
        model_dir=settings.model_dir,
        execution_providers=settings.execution_providers,
        allow_non_commercial_models=settings.allow_non_commercial_models,
    )
    with tempfile.TemporaryDirectory(prefix="enclave-compare-") as workdir:
        paths = [
            await _save(upload, Path(workdir) / name, settings.max_inline_upload_bytes)
            for name, upload in (("a", a), ("b", b))
        ]
        async with limiter:
            result = await asyncio.to_thread(compare_images, paths[0], paths[1], options)
    return CompareView(
        similarity=result.similarity,
        same_person=result.same_person,
        threshold=result.threshold,
        faces_a=result.faces_a,
        faces_b=result.faces_b,
    )


async def _save(upload: UploadFile, stem: Path, max_bytes: int) -> Path:
    suffix = Path(upload.filename or "").suffix.lower()
    path = stem.with_suffix(suffix if suffix in IMAGE_SUFFIXES else ".img")
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise InvalidJobRequestError(f"each image must be at most {max_bytes} bytes")
    if not data:
        raise InvalidJobRequestError("an image is empty")
    await asyncio.to_thread(path.write_bytes, data)
    return path
