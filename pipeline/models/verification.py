"""Verification report: every file of every model is ok, missing, altered or not written yet.

Read-only: verifying never changes the model directory. Derived bundled files are also
re-derived from their verified package source, so a file swapped together with a forged
manifest record is caught as well.
"""

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pipeline.models.bundled import BUNDLED_MODELS, BundledModel, Recipe, derive
from pipeline.models.manifest import InstalledManifest, ModelFile, ModelSpec, sha256_of


class FileStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    MISMATCH = "mismatch"
    NOT_PREPARED = "not prepared"
    """A bundled file not written yet; the registry creates it on first use."""


@dataclass(frozen=True)
class VerificationResult:
    model: str
    file: str
    status: FileStatus
    expected: str
    actual: str | None
    bundled: bool
    detail: str = ""

    @property
    def failed(self) -> bool:
        """True when the model cannot be used as it is (a bundled file not written yet can)."""
        return self.status in (FileStatus.MISSING, FileStatus.MISMATCH)


def verify_model_dir(model_dir: Path, manifest: InstalledManifest) -> list[VerificationResult]:
    """One result per file: bundled models first, then provisioned ones by name."""
    results: list[VerificationResult] = []
    for model in BUNDLED_MODELS:
        results.extend(_verify_bundled(model_dir, model, manifest))
    for name in sorted(manifest.provisioned):
        spec = manifest.provisioned[name]
        for file in spec.files:
            results.append(_verify_file(model_dir, spec, file, FileStatus.MISSING))
    return results


def _verify_bundled(
    model_dir: Path, model: BundledModel, manifest: InstalledManifest
) -> list[VerificationResult]:
    record = manifest.materialised.get(model.name)
    spec = model.spec(record)
    if model.recipe is not Recipe.COPY and record is None:
        return [
            _verify_file(
                model_dir,
                spec,
                ModelFile(name, ""),
                FileStatus.NOT_PREPARED,
                "no recorded hash yet",
            )
            for name in model.files
        ]
    results = [_verify_file(model_dir, spec, file, FileStatus.NOT_PREPARED) for file in spec.files]
    if record is not None and model.recipe is not Recipe.COPY:
        if record.recipe != model.recipe_id:
            return [
                VerificationResult(
                    r.model,
                    r.file,
                    FileStatus.NOT_PREPARED if r.status is FileStatus.OK else r.status,
                    r.expected,
                    r.actual,
                    True,
                    f"recorded by {record.recipe}; next use re-creates it",
                )
                for r in results
            ]
        # the recorded hash is only as good as the manifest file: re-derive to check it
        derived = [hashlib.sha256(content).hexdigest() for content in derive(model)]
        results = [
            result
            if derived_hash == result.expected
            else VerificationResult(
                result.model,
                result.file,
                FileStatus.MISMATCH,
                derived_hash,
                result.actual,
                True,
                "the manifest's recorded hash differs from one re-derived from the package",
            )
            for result, derived_hash in zip(results, derived, strict=True)
        ]
    return results


def _verify_file(
    model_dir: Path, spec: ModelSpec, file: ModelFile, when_missing: FileStatus, detail: str = ""
) -> VerificationResult:
    path = model_dir / file.name
    if not path.is_file():
        return VerificationResult(
            spec.name, file.name, when_missing, file.sha256, None, spec.bundled, detail
        )
    actual = sha256_of(path)
    if not file.sha256:
        status = when_missing
    else:
        status = FileStatus.OK if actual == file.sha256 else FileStatus.MISMATCH
    return VerificationResult(
        spec.name, file.name, status, file.sha256, actual, spec.bundled, detail
    )
