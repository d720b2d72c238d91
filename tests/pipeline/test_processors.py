"""Frame processors and face selection working together through the engine and the CLI."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from pipeline.engine import build_engine, render_threads_for, usable_cpus
from pipeline.models import ModelRegistry, ModelTask
from pipeline.options import FaceSelectorMode, FrameProcessor, RunOptions
from tests.pipeline.contract_models import make_gfpgan
from tests.pipeline.photos import astronaut, read, t1_path, write_astronaut


def face_crop(image: np.ndarray, box: np.ndarray, margin: float = 0.6) -> np.ndarray:
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    left, top = int(max(0, x1 - margin * w)), int(max(0, y1 - margin * h))
    right, bottom = int(x2 + margin * w), int(y2 + margin * h)
    return np.ascontiguousarray(image[top:bottom, left:right])


def test_reference_mode_swaps_only_the_person_in_the_reference_image(
    model_dir: Path, tmp_path: Path
) -> None:
    target = read(t1_path())
    probe = build_engine(RunOptions(model_dir=model_dir))
    faces = sorted(probe.analyse(target), key=lambda face: face.box[0])
    chosen = faces[2]
    reference = tmp_path / "reference.png"
    cv2.imwrite(str(reference), face_crop(target, chosen.box))

    engine = build_engine(
        RunOptions(
            model_dir=model_dir,
            face_selector_mode=FaceSelectorMode.REFERENCE,
            reference_face_path=reference,
            reference_face_distance=0.4,
        )
    )
    engine.set_reference(read(reference), "the reference image")
    source = engine.prepare_source([(Path("astronaut.png"), astronaut())])
    result = engine.process_frame(target.copy(), source)

    assert result.faces_found == 6
    assert result.faces_swapped == 1
    (patch,) = result.patches
    center_x = (chosen.box[0] + chosen.box[2]) / 2
    assert patch.x1 < center_x < patch.x2


def test_reference_position_picks_a_face_of_the_target(model_dir: Path) -> None:
    target = read(t1_path())
    engine = build_engine(
        RunOptions(
            model_dir=model_dir,
            face_selector_mode=FaceSelectorMode.REFERENCE,
            reference_face_position=4,
            reference_face_distance=0.4,
        )
    )
    engine.set_reference(target, "t1.jpg")
    result = engine.process_frame(
        target.copy(), engine.prepare_source([(Path("astronaut.png"), astronaut())])
    )
    assert result.faces_swapped == 1
    fifth = sorted(engine.analyse(target), key=lambda face: face.box[0])[4]
    assert result.patches[0].x1 < fifth.box[0] < result.patches[0].x2


def test_face_enhancer_runs_after_the_swap_only_on_face_regions(
    model_dir: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    registry = ModelRegistry(models)
    registry.prepare()
    registry.add(
        make_gfpgan(tmp_path / "gfpgan.onnx"),
        task=ModelTask.FACE_ENHANCE,
        kind="gfpgan",
        licence="Apache-2.0",
        commercial_use=True,
    )
    target = read(t1_path())
    source_image = [(Path("astronaut.png"), astronaut())]

    plain = build_engine(RunOptions(model_dir=models))
    swapped = plain.process_frame(target.copy(), plain.prepare_source(source_image)).frame
    both = build_engine(
        RunOptions(
            model_dir=models,
            frame_processors=(FrameProcessor.FACE_SWAPPER, FrameProcessor.FACE_ENHANCER),
        )
    )
    assert "gfpgan_1.4" in both.model_names
    assert both.render_threads == 1  # enhancers render one frame at a time
    assert plain.render_threads == render_threads_for(usable_cpus(), enhancing=False)
    enhanced = both.process_frame(target.copy(), both.prepare_source(source_image)).frame

    changed = np.any(enhanced != swapped, axis=2)
    assert changed.sum() > 1000
    boxes = np.zeros(changed.shape, bool)
    for face in plain.analyse(target):
        x1, y1, x2, y2 = face.box.astype(int)
        w, h = x2 - x1, y2 - y1
        boxes[max(0, y1 - h) : y2 + h, max(0, x1 - w) : x2 + w] = True
    assert not changed[~boxes].any()


@pytest.mark.slow
def test_frame_enhancer_upscales_the_swapped_image(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), read(t1_path())[240:420, 20:260])  # one face, 240x180
    output = tmp_path / "big.png"
    code = main(
        [
            "run",
            "--model-dir",
            str(model_dir),
            "--no-progress",
            "-s",
            str(write_astronaut(tmp_path)),
            "-t",
            str(small),
            "-o",
            str(output),
            "--frame-processors",
            "face_swapper",
            "frame_enhancer",
        ]
    )
    assert code == 0
    assert read(output).shape == (720, 960, 3)
    assert "realesrgan_x4plus" in capsys.readouterr().out
