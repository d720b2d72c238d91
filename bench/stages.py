"""Per-frame cost of each stage, Enclave's and the reference loop's, at 720p and 1080p.

    python -m bench.stages            # 1 face, 15 interleaved runs per stage
    python -m bench.stages --quick    # 720p only, 3 runs (the smoke test)

Where ``bench.video`` says how fast, this says where the time goes: each stage is timed
alone on one frame of the bench clip (median of interleaved runs, so machine load hits
every stage alike). The last line is the share of Enclave's per-frame main-thread work
that the swap model itself takes: the part no pipeline change can remove on CPU.
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from bench.paste import fake_swap, insightface_paste_back
from bench.report import header, ratio_line, table
from bench.workload import ARCFACE, ONE_FACE, RESOLUTIONS, SWAPPER, drifting_frames, prepare_models
from pipeline.align import ARCFACE_112, warp_face
from pipeline.engine import build_engine
from pipeline.landmarks import to_gray
from pipeline.options import RunOptions
from pipeline.paste import blend_patch, patch_from_crop
from pipeline.swap.inswapper import InSwapper
from pipeline.track import FaceTracker
from pipeline.types import VisionFrame
from tests.pipeline.photos import astronaut


def interleaved_medians(actions: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    for action in actions.values():
        action()
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(runs):
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(times) for name, times in samples.items()}


def encoder(size: tuple[int, int]) -> Callable[[VisionFrame], None]:
    """libx264 veryfast (Enclave's default) into an in-memory MP4, one frame per call."""
    import io

    container = av.open(io.BytesIO(), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=Fraction(25))
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "18"}

    def encode(frame: VisionFrame) -> None:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
            container.mux(packet)

    return encode


def mp4v_writer(path: Path, size: tuple[int, int]) -> Callable[[VisionFrame], None]:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, size)

    def write(frame: VisionFrame) -> None:
        writer.write(frame)

    return write


def stage_costs(model_dir: Path, work: Path, resolution: str, runs: int) -> dict[str, float]:
    size = RESOLUTIONS[resolution]
    frames = list(drifting_frames(ONE_FACE, 2, size))
    engine = build_engine(
        RunOptions(
            model_dir=model_dir,
            face_swapper_model=SWAPPER,
            face_recognizer_model=ARCFACE,
            face_mask_types=("box",),
            allow_non_commercial_models=True,
        )
    )
    assert isinstance(engine.swapper, InSwapper) and engine.landmarker is not None
    swapper, landmarker = engine.swapper, engine.landmarker
    source = engine.prepare_source([(Path("astronaut.png"), astronaut())])
    frame, following = frames
    face = engine.detector.detect(frame)[0]
    face = face.with_landmarks(landmarker.predict(frame, face))
    crop, matrix = warp_face(frame, face.kps5, ARCFACE_112, 128)
    blob = (crop[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[np.newaxis]
    latent = swapper.source_latent(source)
    patch = swapper.swap(frame, face, source)
    fake = fake_swap(crop)
    target = frame.copy()
    tracker = FaceTracker(engine.detector.detect, landmarker, interval=1_000_000)
    tracker.faces(frame)
    detected = list(tracker._tracks)

    def follow() -> None:
        # the same step each time: from the detected faces in ``frame`` to ``following``
        tracker._previous_gray, tracker._tracks = to_gray(frame), list(detected)
        if not tracker.faces(following):
            raise SystemExit("the tracker lost the face: the stage timing would be a detection")

    session = swapper._session  # the model call alone
    encode = encoder(size)
    write = mp4v_writer(work / f"{resolution}.mp4", size)
    return interleaved_medians(
        {
            "detect (RetinaFace)": lambda: engine.detector.detect(frame),
            "68 landmarks (dlib, per face)": lambda: landmarker.predict(frame, face),
            "track one frame (LK flow + landmarks)": follow,
            "swap model run (inswapper contract)": lambda: session.run(
                None, {"target": blob, "source": latent}
            ),
            "swap pre/post (align, blob, patch warp)": lambda: patch_from_crop(
                frame.shape, warp_face(frame, face.kps5, ARCFACE_112, 128)[0], matrix, patch.alpha
            ),
            "enclave blend_patch (ROI)": lambda: blend_patch(target, patch),
            "reference paste_back (full frame)": lambda: insightface_paste_back(
                frame, fake, crop, matrix
            ),
            "encode libx264 veryfast (enclave)": lambda: encode(frame),
            "write mp4v cv2.VideoWriter (reference)": lambda: write(frame),
        },
        runs,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="720p only, 3 runs")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    resolutions = ["720p"] if args.quick else ["720p", "1080p"]
    with tempfile.TemporaryDirectory(prefix="enclave-bench-") as temporary:
        work = Path(temporary)
        model_dir = prepare_models(work / "models")
        costs = {res: stage_costs(model_dir, work, res, runs) for res in resolutions}
    header(
        "per-frame stage costs, one face (astronaut close-up), ms, median of interleaved runs",
        [f"{runs} runs per stage; onnxruntime default threads; box mask"],
    )
    names = list(costs[resolutions[0]])
    table(
        ["stage", *resolutions],
        [[name, *(f"{costs[r][name]:.1f}" for r in resolutions)] for name in names],
    )
    c = costs["720p"]
    interval = RunOptions(model_dir=Path()).face_detector_interval  # Enclave's default
    enclave = (
        c["detect (RetinaFace)"] / interval
        + c["68 landmarks (dlib, per face)"] / interval
        + c["track one frame (LK flow + landmarks)"] * (interval - 1) / interval
        + c["swap model run (inswapper contract)"]
        + c["swap pre/post (align, blob, patch warp)"]
        + c["enclave blend_patch (ROI)"]
    )
    print(
        f"# enclave main-thread work per 720p frame (detect every {interval} frames, track "
        f"between): {enclave:.1f} ms"
    )
    reference = (
        c["detect (RetinaFace)"]
        + c["swap model run (inswapper contract)"]
        + c["reference paste_back (full frame)"]
        + c["write mp4v cv2.VideoWriter (reference)"]
    )
    print(f"# reference work per 720p frame (without decode): {reference:.1f} ms")
    ratio_line(
        "swap model share of enclave's per-frame work at 720p",
        c["swap model run (inswapper contract)"] / enclave,
        "informational",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
