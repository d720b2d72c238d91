"""Models described as data: what a model is for, its files and their SHA-256, its licence.

The static part (bundled models) lives in ``bundled.py``; the per-installation part lives
in ``<model_dir>/manifest.json``, which records provisioned models and the hashes of
bundled files that were transformed on materialisation. This module owns both shapes and
the atomic, locked read-modify-write of that file.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline.errors import ModelError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_HASH_CHUNK = 1 << 20


class ModelTask(StrEnum):
    DETECT = "detect"
    LANDMARK68 = "landmark68"
    EMBED = "embed"
    SWAP = "swap"
    FACE_ENHANCE = "face_enhance"
    FRAME_ENHANCE = "frame_enhance"


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, relative to the model directory, pinned by its SHA-256."""

    name: str
    sha256: str


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline needs to know about a model before it touches the file."""

    name: str
    task: ModelTask
    kind: str
    """Which wrapper class loads it (the manifest decides, never the tensor shapes)."""
    files: tuple[ModelFile, ...]
    source: str
    licence: str
    commercial_use: bool
    bundled: bool
    input_size: tuple[int, int] | None = None


@dataclass(frozen=True)
class KindDefaults:
    """What is known about a model contract regardless of which file implements it."""

    task: ModelTask
    default_name: str | None = None
    input_size: tuple[int, int] | None = None


KINDS: dict[str, KindDefaults] = {
    "retinaface": KindDefaults(ModelTask.DETECT),
    "yunet": KindDefaults(ModelTask.DETECT, input_size=(640, 640)),
    "scrfd": KindDefaults(ModelTask.DETECT, "scrfd_10g", (640, 640)),
    "sface": KindDefaults(ModelTask.EMBED, input_size=(112, 112)),
    "arcface": KindDefaults(ModelTask.EMBED, "arcface_w600k_r50", (112, 112)),
    "dlib_shape68": KindDefaults(ModelTask.LANDMARK68),
    "inswapper": KindDefaults(ModelTask.SWAP, "inswapper_128", (128, 128)),
    "gfpgan": KindDefaults(ModelTask.FACE_ENHANCE, "gfpgan_1.4", (512, 512)),
    "realesrgan_ncnn": KindDefaults(ModelTask.FRAME_ENHANCE),
}
"""Every wrapper kind the pipeline has a class for, with its task and contract defaults."""


@dataclass(frozen=True)
class MaterialisedRecord:
    """Hashes of a bundled model's files as written by ``prepare``, and what they came from."""

    files: tuple[ModelFile, ...]
    source_sha256: tuple[str, ...]
    recipe: str


@dataclass
class InstalledManifest:
    """The contents of ``<model_dir>/manifest.json``."""

    provisioned: dict[str, ModelSpec] = field(default_factory=dict)
    materialised: dict[str, MaterialisedRecord] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large weights never sit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _file_to_json(file: ModelFile) -> dict[str, str]:
    return {"name": file.name, "sha256": file.sha256}


def _file_from_json(data: Any) -> ModelFile:
    return ModelFile(name=str(data["name"]), sha256=str(data["sha256"]))


def _spec_to_json(spec: ModelSpec) -> dict[str, Any]:
    return {
        "task": spec.task.value,
        "kind": spec.kind,
        "files": [_file_to_json(file) for file in spec.files],
        "source": spec.source,
        "licence": spec.licence,
        "commercial_use": spec.commercial_use,
        "input_size": list(spec.input_size) if spec.input_size else None,
    }


def _spec_from_json(name: str, data: Any) -> ModelSpec:
    size = data.get("input_size")
    return ModelSpec(
        name=name,
        task=ModelTask(data["task"]),
        kind=str(data["kind"]),
        files=tuple(_file_from_json(file) for file in data["files"]),
        source=str(data["source"]),
        licence=str(data["licence"]),
        commercial_use=bool(data["commercial_use"]),
        bundled=False,
        input_size=(int(size[0]), int(size[1])) if size else None,
    )


def _record_to_json(record: MaterialisedRecord) -> dict[str, Any]:
    return {
        "files": [_file_to_json(file) for file in record.files],
        "source_sha256": list(record.source_sha256),
        "recipe": record.recipe,
    }


def _record_from_json(data: Any) -> MaterialisedRecord:
    return MaterialisedRecord(
        files=tuple(_file_from_json(file) for file in data["files"]),
        source_sha256=tuple(str(digest) for digest in data["source_sha256"]),
        recipe=str(data["recipe"]),
    )


def read_manifest(model_dir: Path) -> InstalledManifest:
    """The installed manifest, empty when the directory has none yet."""
    path = model_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return InstalledManifest()
    except (OSError, ValueError) as error:
        raise ModelError(
            f"cannot read the model manifest {path}: {error}; restore it from a backup, "
            "or delete it and run `enclave models prepare` and `enclave models add` again"
        ) from error
    try:
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"unsupported version {data.get('version')!r}")
        return InstalledManifest(
            provisioned={
                name: _spec_from_json(name, spec) for name, spec in data["provisioned"].items()
            },
            materialised={
                name: _record_from_json(record) for name, record in data["materialised"].items()
            },
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ModelError(
            f"the model manifest {path} is malformed ({error}); restore it from a backup, "
            "or delete it and run `enclave models prepare` and `enclave models add` again"
        ) from error


def _write_manifest(model_dir: Path, manifest: InstalledManifest) -> None:
    data = {
        "version": MANIFEST_VERSION,
        "provisioned": {
            name: _spec_to_json(spec) for name, spec in sorted(manifest.provisioned.items())
        },
        "materialised": {
            name: _record_to_json(record) for name, record in sorted(manifest.materialised.items())
        },
    }
    write_atomically(model_dir / MANIFEST_NAME, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` so readers see the old file or the new one, never half of it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class HashMismatchError(Exception):
    """A copied file's bytes were not the expected ones (callers turn it into a ModelError)."""

    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


def copy_with_hash(source: Path, destination: Path, expected_sha256: str | None = None) -> str:
    """Copy ``source`` to ``destination`` atomically, hashing it on the way; its SHA-256.

    With ``expected_sha256``, a different file never reaches ``destination``.
    """
    digest = hashlib.sha256()
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(descriptor, "wb") as output, source.open("rb") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                digest.update(chunk)
                output.write(chunk)
            output.flush()
            os.fsync(output.fileno())
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise HashMismatchError(digest.hexdigest())
        Path(temporary).replace(destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


@contextlib.contextmanager
def locked_manifest(model_dir: Path) -> Iterator[InstalledManifest]:
    """Read, let the caller change, then write the manifest, holding an exclusive lock.

    Several worker processes may prepare models in the same directory at once; the lock
    makes their read-modify-write cycles take turns instead of losing each other's entries.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    with (model_dir / ".manifest.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            manifest = read_manifest(model_dir)
            yield manifest
            _write_manifest(model_dir, manifest)
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
