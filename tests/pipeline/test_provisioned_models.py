"""Provisioned-model code paths (inswapper_128, ArcFace, SCRFD) with generated contract files.

The real weights are not on any registry; these files have the same inputs, outputs and
initializer layout, so the real loading, alignment, emap projection and paste-back run.
"""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pipeline.engine import build_engine, render_threads_for, usable_cpus
from pipeline.errors import ModelLicenceError, ModelNotFoundError
from pipeline.models import ModelRegistry, ModelTask
from pipeline.options import FaceSelectorMode, RunOptions
from pipeline.swap.inswapper import load_emap
from tests.pipeline.contract_models import make_arcface, make_inswapper, make_scrfd
from tests.pipeline.photos import astronaut, read, t1_path, tom_hanks_path

NON_COMMERCIAL = "non-commercial (insightface)"


@pytest.fixture(scope="module")
def provisioned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("provisioned")
    work = tmp_path_factory.mktemp("contract-files")
    registry = ModelRegistry(directory)
    registry.prepare()
    registry.add(
        make_inswapper(work / "inswapper_128.onnx"),
        task=ModelTask.SWAP,
        kind="inswapper",
        licence=NON_COMMERCIAL,
    )
    registry.add(
        make_arcface(work / "w600k_r50.onnx"),
        task=ModelTask.EMBED,
        kind="arcface",
        licence=NON_COMMERCIAL,
    )
    registry.add(
        make_scrfd(work / "det_10g.onnx"),
        task=ModelTask.DETECT,
        kind="scrfd",
        licence=NON_COMMERCIAL,
    )
    return directory


def inswapper_options(model_dir: Path, **changes: object) -> RunOptions:
    settings: dict[str, object] = {
        "model_dir": model_dir,
        "face_swapper_model": "inswapper_128",
        "face_selector_mode": FaceSelectorMode.MANY,
        "allow_non_commercial_models": True,
    }
    return RunOptions(**(settings | changes))  # type: ignore[arg-type]


def test_non_commercial_models_need_an_explicit_acknowledgement(provisioned_dir: Path) -> None:
    options = inswapper_options(provisioned_dir, allow_non_commercial_models=False)
    with pytest.raises(ModelLicenceError, match="non-commercial"):
        build_engine(options)


def test_emap_is_the_last_initializer(provisioned_dir: Path) -> None:
    path = ModelRegistry(provisioned_dir, allow_non_commercial=True).path("inswapper_128")
    last = onnx.load(str(path)).graph.initializer[-1]
    assert last.name == "emap"
    np.testing.assert_array_equal(load_emap(path), numpy_helper.to_array(last))


def test_inswapper_swaps_every_face_only_inside_its_roi(provisioned_dir: Path) -> None:
    engine = build_engine(inswapper_options(provisioned_dir))
    assert engine.swapper is not None and engine.swapper.name == "inswapper_128"
    original = read(t1_path())
    source = engine.prepare_source([(Path("astronaut.png"), astronaut())])
    result = engine.process_frame(original.copy(), source)
    assert result.faces_found == 6 and result.faces_swapped == 6
    touched = np.zeros(original.shape[:2], bool)
    for patch in result.patches:
        touched[patch.y1 : patch.y2, patch.x1 : patch.x2] |= patch.alpha > 0
        inside = patch.alpha > 0.9
        before = original[patch.y1 : patch.y2, patch.x1 : patch.x2][inside].astype(int)
        after = result.frame[patch.y1 : patch.y2, patch.x1 : patch.x2][inside].astype(int)
        assert np.abs(before - after).mean() > 3
    np.testing.assert_array_equal(result.frame[~touched], original[~touched])


def test_frames_rendered_at_once_come_out_as_rendered_one_by_one(provisioned_dir: Path) -> None:
    """render_frame on several threads (as videos do) gives the very pixels it gives alone;
    the swap model then runs on one onnxruntime thread per frame."""
    engine = build_engine(inswapper_options(provisioned_dir))
    assert engine.render_threads == render_threads_for(usable_cpus(), enhancing=False)
    assert engine.swapper is not None
    if engine.render_threads > 1:
        session = engine.swapper._session
        assert session.get_session_options().intra_op_num_threads == 1
    target = read(t1_path())
    source = engine.prepare_source([(Path("astronaut.png"), astronaut())])
    faces = engine.select_faces(target)
    alone = engine.render_frame(target.copy(), faces, source).frame
    with ThreadPoolExecutor(4) as pool:
        together = list(
            pool.map(lambda _: engine.render_frame(target.copy(), faces, source).frame, range(8))
        )
    for frame in together:
        np.testing.assert_array_equal(frame, alone)


def test_the_source_identity_flows_through_emap_into_the_output(provisioned_dir: Path) -> None:
    engine = build_engine(inswapper_options(provisioned_dir))
    target = read(t1_path())
    outputs = []
    for name, image in (("astronaut.png", astronaut()), ("hanks.png", read(tom_hanks_path()))):
        source = engine.prepare_source([(Path(name), image)])
        outputs.append(engine.process_frame(target.copy(), source))
    first, second = outputs
    patch = first.patches[0]
    region = (slice(patch.y1, patch.y2), slice(patch.x1, patch.x2))
    difference = np.abs(first.frame[region].astype(int) - second.frame[region].astype(int))
    assert difference[patch.alpha > 0.9].mean() > 3


def test_inswapper_without_arcface_says_what_to_provision(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    registry.add(
        make_inswapper(tmp_path / "inswapper_128.onnx"),
        task=ModelTask.SWAP,
        kind="inswapper",
        licence=NON_COMMERCIAL,
    )
    with pytest.raises(ModelNotFoundError, match="no arcface model is provisioned"):
        build_engine(inswapper_options(tmp_path / "models"))


def test_scrfd_is_selectable_and_decodes_its_contract(provisioned_dir: Path) -> None:
    engine = build_engine(
        RunOptions(
            model_dir=provisioned_dir,
            face_detector_model="scrfd_10g",
            frame_processors=(),
            allow_non_commercial_models=True,
        )
    )
    frame = np.zeros((640, 640, 3), np.uint8)
    (face,) = engine.detector.detect(frame)
    np.testing.assert_allclose(face.box, [240, 200, 400, 420], atol=1.0)
    np.testing.assert_allclose(face.kps5[0], [285, 280], atol=1.0)
    assert face.score == pytest.approx(0.92, abs=1e-3)
