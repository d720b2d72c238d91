"""The model registry: which models exist, where their files are, and whether to trust them.

A model is usable only when every one of its files hashes to what the manifest says and
its licence is cleared for the way it is being used. Bundled models are materialised on
first use (or by ``enclave models prepare``); provisioned ones are copied in by
``enclave models add``. Nothing is ever downloaded.
"""

import logging
import re
import threading
from pathlib import Path

from pipeline.errors import (
    InputError,
    ModelError,
    ModelIntegrityError,
    ModelLicenceError,
    ModelNotFoundError,
)
from pipeline.models.bundled import (
    BUNDLED_MODELS,
    BundledModel,
    Recipe,
    find_bundled,
    locate_source,
    materialise,
)
from pipeline.models.contracts import check_contract
from pipeline.models.manifest import (
    KINDS,
    InstalledManifest,
    ModelFile,
    ModelSpec,
    ModelTask,
    copy_with_hash,
    locked_manifest,
    read_manifest,
    sha256_of,
)
from pipeline.models.verification import VerificationResult, verify_model_dir

logger = logging.getLogger(__name__)

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

# Facts about files, not loaded models: a worker that builds a registry per job should not
# re-hash hundreds of megabytes of weights each time. Any write changes size or mtime.
_HASHES_SEEN: dict[tuple[str, int, int], str] = {}
_HASHES_LOCK = threading.Lock()


class ModelRegistry:
    """Bundled and provisioned models of one model directory.

    File hashes are remembered for the process by (path, size, mtime), so building a
    registry per job is cheap.
    """

    def __init__(self, model_dir: Path, *, allow_non_commercial: bool = False) -> None:
        self.model_dir = model_dir
        self.allow_non_commercial = allow_non_commercial

    # -- what exists -------------------------------------------------------------------

    def specs(self) -> list[ModelSpec]:
        """Every known model: bundled first, then provisioned, by name."""
        manifest = read_manifest(self.model_dir)
        bundled = [model.spec(manifest.materialised.get(model.name)) for model in BUNDLED_MODELS]
        return bundled + [manifest.provisioned[name] for name in sorted(manifest.provisioned)]

    def get(self, name: str) -> ModelSpec:
        """The spec of ``name``; ``ModelNotFoundError`` lists the names that do exist."""
        return self._spec(name, read_manifest(self.model_dir))

    def has(self, name: str) -> bool:
        """Whether ``name`` is provisioned here or bundled with its package installed."""
        bundled = find_bundled(name)
        if bundled is not None:
            try:
                for source in bundled.sources:
                    locate_source(source)
            except ModelNotFoundError:
                return False
            return True
        spec = read_manifest(self.model_dir).provisioned.get(name)
        return spec is not None and all((self.model_dir / f.name).is_file() for f in spec.files)

    # -- using a model -----------------------------------------------------------------

    def paths(self, name: str) -> tuple[Path, ...]:
        """The verified files of ``name``, materialising a bundled model first if needed.

        Raises ``ModelLicenceError`` for a non-commercial model without acknowledgement,
        ``ModelNotFoundError`` for a missing file and ``ModelIntegrityError`` for a file
        whose SHA-256 differs from the manifest.
        """
        manifest = read_manifest(self.model_dir)
        spec = self._spec(name, manifest)
        self._check_licence(spec)
        bundled = find_bundled(name)
        if bundled is not None and self._needs_materialising(bundled, manifest):
            spec = self._materialise(bundled)
        paths = []
        for file in spec.files:
            path = self.model_dir / file.name
            self._check_file(spec, path, file.sha256)
            paths.append(path)
        return tuple(paths)

    def path(self, name: str) -> Path:
        """The first (usually only) verified file of ``name``."""
        return self.paths(name)[0]

    # -- operator actions --------------------------------------------------------------

    def add(
        self,
        file: Path,
        *,
        task: ModelTask,
        kind: str,
        name: str | None = None,
        licence: str,
        source: str = "provisioned by operator",
        commercial_use: bool = False,
    ) -> ModelSpec:
        """Copy an operator's model file into the model directory and record its hash."""
        defaults = KINDS.get(kind)
        if defaults is None:
            raise InputError(f"unknown model kind {kind!r}; known kinds: {', '.join(KINDS)}")
        if defaults.task != task:
            raise InputError(
                f"a {kind!r} model performs task {defaults.task.value!r}, not {task.value!r}"
            )
        if not file.is_file():
            raise InputError(f"model file {file} does not exist or is not a regular file")
        name = name or defaults.default_name or file.stem
        if not _NAME_PATTERN.match(name):
            raise InputError(
                f"model name {name!r} must be 1-64 characters of a-z, 0-9, '_', '.', '-'"
            )
        if find_bundled(name) is not None:
            raise InputError(f"{name!r} is a bundled model; choose another --name")
        if not licence.strip():
            raise InputError("a model's licence must be stated (e.g. --licence 'Apache-2.0')")
        stored_name = name + file.suffix.lower()
        bundled_files = {f for model in BUNDLED_MODELS for f in model.files}
        if stored_name in bundled_files or stored_name == "manifest.json":
            raise InputError(f"file name {stored_name!r} is taken; choose another --name")
        check_contract(kind, file)
        destination = self.model_dir / stored_name
        try:
            self.model_dir.mkdir(parents=True, exist_ok=True)
            digest = copy_with_hash(file, destination)
        except OSError as error:
            raise ModelError(
                f"cannot copy {file} into {self.model_dir}: {error.strerror or error}"
            ) from error
        spec = ModelSpec(
            name=name,
            task=task,
            kind=kind,
            files=(ModelFile(stored_name, digest),),
            source=source,
            licence=licence.strip(),
            commercial_use=commercial_use,
            bundled=False,
            input_size=defaults.input_size,
        )
        with locked_manifest(self.model_dir) as manifest:
            replaced = manifest.provisioned.get(name)
            manifest.provisioned[name] = spec
        if replaced is not None and replaced.files[0].name != stored_name:
            (self.model_dir / replaced.files[0].name).unlink(missing_ok=True)
        logger.info("provisioned model %s (%s) sha256=%s", name, kind, digest)
        return spec

    def remove(self, name: str) -> ModelSpec:
        """Forget a provisioned model and delete its files (bundled models cannot be removed)."""
        if find_bundled(name) is not None:
            raise InputError(f"{name!r} is bundled and cannot be removed")
        with locked_manifest(self.model_dir) as manifest:
            spec = manifest.provisioned.pop(name, None)
        if spec is None:
            raise ModelNotFoundError(self._unknown_message(name, read_manifest(self.model_dir)))
        for file in spec.files:
            (self.model_dir / file.name).unlink(missing_ok=True)
        return spec

    def prepare(self) -> list[ModelSpec]:
        """Materialise every bundled model that is not already in place and verified."""
        prepared = []
        for model in BUNDLED_MODELS:
            manifest = read_manifest(self.model_dir)
            unrecorded = model.name not in manifest.materialised
            if unrecorded or self._needs_materialising(model, manifest):
                spec = self._materialise(model)
            else:
                spec = model.spec(manifest.materialised.get(model.name))
            for file in spec.files:
                self._check_file(spec, self.model_dir / file.name, file.sha256)
            prepared.append(spec)
        return prepared

    def verify(self) -> list[VerificationResult]:
        """Hash every file of every model; never changes the directory."""
        return verify_model_dir(self.model_dir, read_manifest(self.model_dir))

    # -- internals ---------------------------------------------------------------------

    def _spec(self, name: str, manifest: InstalledManifest) -> ModelSpec:
        bundled = find_bundled(name)
        if bundled is not None:
            return bundled.spec(manifest.materialised.get(name))
        spec = manifest.provisioned.get(name)
        if spec is None:
            raise ModelNotFoundError(self._unknown_message(name, manifest))
        return spec

    def _unknown_message(self, name: str, manifest: InstalledManifest) -> str:
        known = [model.name for model in BUNDLED_MODELS] + sorted(manifest.provisioned)
        return (
            f"unknown model {name!r} in {self.model_dir}; known models: {', '.join(known)} "
            "(add one with `enclave models add FILE --task ... --kind ... --licence ...`)"
        )

    def _check_licence(self, spec: ModelSpec) -> None:
        if spec.commercial_use or self.allow_non_commercial:
            return
        raise ModelLicenceError(
            f"model {spec.name!r} is licensed {spec.licence!r}, which is not cleared for "
            "commercial use; to load it anyway the operator must acknowledge the licence "
            "(--allow-non-commercial-models or ENCLAVE_ALLOW_NON_COMMERCIAL_MODELS=1)"
        )

    def _needs_materialising(self, model: BundledModel, manifest: InstalledManifest) -> bool:
        if any(not (self.model_dir / name).is_file() for name in model.files):
            return True
        if model.recipe is Recipe.COPY:
            return False  # an existing copy is checked against the pinned hash, never rewritten
        record = manifest.materialised.get(model.name)
        return record is None or record.recipe != model.recipe_id

    def _materialise(self, model: BundledModel) -> ModelSpec:
        try:
            with locked_manifest(self.model_dir) as manifest:
                # another process may have finished the same work while we waited for the lock
                if self._needs_materialising(model, manifest):
                    logger.info("materialising bundled model %s in %s", model.name, self.model_dir)
                    manifest.materialised[model.name] = materialise(model, self.model_dir)
                elif model.name not in manifest.materialised:
                    manifest.materialised[model.name] = model.pinned_record()
                return model.spec(manifest.materialised[model.name])
        except OSError as error:
            raise ModelError(
                f"cannot write bundled model {model.name!r} into {self.model_dir}: "
                f"{error.strerror or error}; run `enclave models prepare` as a user who may "
                "write there, or point --model-dir / ENCLAVE_MODEL_DIR at a writable directory"
            ) from error

    def _check_file(self, spec: ModelSpec, path: Path, expected: str) -> None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise ModelNotFoundError(
                f"model {spec.name!r}: file {path} is missing; "
                + (
                    "run `enclave models prepare`"
                    if spec.bundled
                    else "add it again with `enclave models add`"
                )
            ) from None
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with _HASHES_LOCK:
            actual = _HASHES_SEEN.get(key)
        if actual is None:
            actual = sha256_of(path)
            with _HASHES_LOCK:
                _HASHES_SEEN[key] = actual
        if actual != expected:
            raise ModelIntegrityError(
                f"model {spec.name!r}: file {path} has SHA-256 {actual}, expected {expected}; "
                "it was changed after it was recorded and will not be loaded. "
                + (
                    "Delete it and run `enclave models prepare` to re-create it from the "
                    "verified package."
                    if spec.bundled
                    else "Restore the original file, or add the correct one again with "
                    "`enclave models add`."
                )
            )
