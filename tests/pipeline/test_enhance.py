"""Enhancers: Real-ESRGAN frame upscaling (bundled, ncnn) and the GFPGAN face-enhancer slot."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.align import FFHQ_512, estimate_norm
from pipeline.detect import DetectorConfig, RetinaFaceDetector
from pipeline.enhance import FaceEnhancer, FrameEnhancer
from pipeline.errors import ModelError, ModelLicenceError
from pipeline.models import ModelRegistry, ModelTask, create_session, resolve_providers
from pipeline.types import VisionFrame
from tests.pipeline.contract_models import make_gfpgan, make_inswapper
from tests.pipeline.photos import astronaut, read, t1_path

CPU = resolve_providers(["cpu"])


def _psnr(a: VisionFrame, b: VisionFrame) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if error == 0 else 10 * np.log10(255.0**2 / error)


def _detail(image: VisionFrame) -> float:
    """High-frequency energy: the variance of the Laplacian of the grey image."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


@pytest.fixture(scope="module")
def frame_enhancer(model_dir: Path) -> FrameEnhancer:
    return FrameEnhancer.from_registry(ModelRegistry(model_dir), tile_size=200, threads=2)


# -- frame enhancer -------------------------------------------------------------------


def test_frame_enhancer_restores_detail_that_bicubic_upscaling_cannot(
    frame_enhancer: FrameEnhancer,
) -> None:
    original = np.ascontiguousarray(astronaut()[40:232, 140:332])  # 192×192, her face
    small = cv2.resize(original, (48, 48), interpolation=cv2.INTER_AREA)
    enhanced = frame_enhancer.enhance(small)
    bicubic = cv2.resize(small, (192, 192), interpolation=cv2.INTER_CUBIC)
    assert enhanced.shape == (192, 192, 3) and enhanced.dtype == np.uint8
    # same picture (a GAN trades a little PSNR for sharpness, so not "better than bicubic")...
    assert _psnr(enhanced, original) > 20.0
    assert _psnr(enhanced, original) > _psnr(bicubic, original) - 4.0
    # ...but with the original's fine detail, which bicubic interpolation smears away
    assert _detail(bicubic) < 0.2 * _detail(original)
    assert 0.4 * _detail(original) < _detail(enhanced) < 2.5 * _detail(original)


def test_tiles_overlap_so_seams_do_not_show(model_dir: Path, frame_enhancer: FrameEnhancer) -> None:
    image = np.ascontiguousarray(astronaut()[60:100, 170:218])  # 40×48: 2×3 tiles of 20 / 16
    whole = frame_enhancer.enhance(image)
    registry = ModelRegistry(model_dir)
    overlapped = FrameEnhancer.from_registry(registry, tile_size=20, tile_padding=10)
    butted = FrameEnhancer.from_registry(registry, tile_size=20, tile_padding=0)
    with_margin, without = overlapped.enhance(image), butted.enhance(image)
    assert with_margin.shape == without.shape == whole.shape == (160, 192, 3)
    assert _psnr(with_margin, whole) > 35.0
    assert _psnr(with_margin, whole) > _psnr(without, whole) + 2.0


def test_output_scale_below_four_resizes_the_result(model_dir: Path) -> None:
    enhancer = FrameEnhancer.from_registry(ModelRegistry(model_dir), output_scale=2)
    image = np.ascontiguousarray(astronaut()[60:92, 170:202])
    assert enhancer.enhance(image).shape == (64, 64, 3)


def test_blend_mixes_the_network_output_with_a_plain_upscale(
    model_dir: Path, frame_enhancer: FrameEnhancer
) -> None:
    image = np.ascontiguousarray(astronaut()[60:92, 170:202])
    plain = cv2.resize(image, (128, 128), interpolation=cv2.INTER_CUBIC)
    registry = ModelRegistry(model_dir)
    none = FrameEnhancer.from_registry(registry, blend=0.0).enhance(image)
    half = FrameEnhancer.from_registry(registry, blend=0.5).enhance(image)
    full = frame_enhancer.enhance(image)
    assert _psnr(none, plain) > 45.0
    expected_half = (full.astype(np.float64) + plain.astype(np.float64)) / 2
    assert np.abs(half.astype(np.float64) - expected_half).max() <= 1.0


def test_frame_enhancer_refuses_a_model_of_another_kind(model_dir: Path) -> None:
    with pytest.raises(ModelError, match="not a frame enhancer"):
        FrameEnhancer.from_registry(ModelRegistry(model_dir), name="sface")


# -- face enhancer --------------------------------------------------------------------


@pytest.fixture
def gfpgan_registry(tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry(tmp_path / "models", allow_non_commercial=True)
    registry.add(
        make_gfpgan(tmp_path / "gfpgan_1.4.onnx"),
        task=ModelTask.FACE_ENHANCE,
        kind="gfpgan",
        licence="non-commercial (StyleGAN2 parts; see the GFPGAN model card)",
    )
    return registry


def _face_footprint(frame: VisionFrame, kps5: np.ndarray) -> np.ndarray:
    """Frame pixels the 512 FFHQ crop of a face can reach (its ROI)."""
    inverse = cv2.invertAffineTransform(estimate_norm(kps5, 512, FFHQ_512))
    ones = np.ones((512, 512), np.uint8)
    height, width = frame.shape[:2]
    reach = cv2.warpAffine(ones, inverse, (width, height), flags=cv2.INTER_NEAREST)
    return cv2.dilate(reach, np.ones((5, 5), np.uint8)) > 0


def test_face_enhancer_changes_faces_and_nothing_outside_them(
    gfpgan_registry: ModelRegistry, model_dir: Path
) -> None:
    frame = read(t1_path())
    detector = RetinaFaceDetector(
        create_session(ModelRegistry(model_dir).path("retinaface"), CPU), DetectorConfig()
    )
    faces = detector.detect(frame)
    assert len(faces) == 6
    enhancer = FaceEnhancer.from_registry(gfpgan_registry, "gfpgan_1.4", CPU)
    before = frame.copy()
    result = enhancer.enhance(frame, faces)
    assert result is frame  # in place: no full-frame copy
    outside = np.ones(frame.shape[:2], bool)
    for face in faces:
        x1, y1, x2, y2 = face.box.astype(int)
        inner = (slice(y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4), slice(x1 + 4, x2 - 4))
        change = np.abs(result[inner].astype(int) - before[inner].astype(int)).mean()
        assert change > 2.0, f"face at {face.box} was not enhanced"
        assert _detail(result[inner]) > _detail(before[inner])  # the contract model sharpens
        outside &= ~_face_footprint(frame, face.kps5)
    assert np.array_equal(result[outside], before[outside])


def test_face_enhancer_needs_licence_acknowledgement(
    gfpgan_registry: ModelRegistry,
) -> None:
    strict = ModelRegistry(gfpgan_registry.model_dir)
    with pytest.raises(ModelLicenceError):
        FaceEnhancer.from_registry(strict, "gfpgan_1.4", CPU)


def test_face_enhancer_refuses_a_model_with_another_contract(tmp_path: Path) -> None:
    session = create_session(make_inswapper(tmp_path / "inswapper.onnx"), CPU)
    with pytest.raises(ModelError, match="expected \\['input'\\]"):
        FaceEnhancer(session)
