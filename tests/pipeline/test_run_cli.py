"""`enclave run` end to end: real photos and clips in, swapped files out, clean failures."""

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from tests.pipeline.media_fixtures import (
    MEGAMIND,
    clip_facts,
    make_audio_only,
    make_clip,
    panning_frames,
    require_media,
)
from tests.pipeline.photos import astronaut, read, t1_path, write_astronaut


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_astronaut(tmp_path)


def run(model_dir: Path, *args: str | Path) -> int:
    return main(["run", "--model-dir", str(model_dir), "--no-progress", *map(str, args)])


def test_image_swap_writes_the_output_and_a_summary(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "swapped.jpg"
    assert run(model_dir, "-s", source, "-t", t1_path(), "-o", output) == 0
    summary = capsys.readouterr().out
    assert "6 face(s) found, 6 processed" in summary
    assert "providers cpu" in summary
    swapped, original = read(output), read(t1_path())
    assert swapped.shape == original.shape
    assert np.abs(swapped.astype(int) - original.astype(int)).mean() > 1


@pytest.mark.parametrize("suffix", [".png", ".webp"])
def test_image_formats(model_dir: Path, source: Path, tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"target{suffix}"
    cv2.imwrite(str(target), read(t1_path()))
    output = tmp_path / f"out{suffix}"
    assert run(model_dir, "-s", source, "-t", target, "-o", output) == 0
    assert read(output).shape == read(t1_path()).shape


def test_unavailable_providers_fall_back_and_are_reported(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.png"
    code = run(
        model_dir,
        "-s",
        source,
        "-t",
        t1_path(),
        "-o",
        output,
        "--execution-providers",
        "cuda",
        "tensorrt",
        "cpu",
    )
    assert code == 0
    assert "providers cpu" in capsys.readouterr().out


def test_obsolete_temp_frame_flags_are_accepted_and_explained(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.jpg"
    code = run(
        model_dir,
        "-s",
        source,
        "-t",
        t1_path(),
        "-o",
        output,
        "--temp-frame-format",
        "png",
        "--temp-frame-quality",
        "90",
    )
    assert code == 0
    assert "--temp-frame-format is accepted" in capsys.readouterr().err


def test_video_keeps_frame_count_fps_duration_and_audio(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = make_clip(
        tmp_path / "clip.mp4",
        panning_frames(read(t1_path()), 24, (640, 360)),
        fps=Fraction(30000, 1001),
        size=(640, 360),
    )
    output = tmp_path / "out.mp4"
    assert run(model_dir, "-s", source, "-t", target, "-o", output) == 0
    before, after = clip_facts(target), clip_facts(output)
    assert after.frames == before.frames == 24
    assert abs(float(after.fps) - float(before.fps)) < 0.01
    assert abs(after.duration - before.duration) <= 1 / float(before.fps)
    assert after.audio_codec is not None
    assert "24 frame(s)" in capsys.readouterr().out


def test_video_trim_keeps_only_the_window(model_dir: Path, source: Path, tmp_path: Path) -> None:
    target = make_clip(tmp_path / "clip.mp4", panning_frames(astronaut(), 20, (320, 240)))
    output = tmp_path / "out.mp4"
    code = run(
        model_dir,
        "-s",
        source,
        "-t",
        target,
        "-o",
        output,
        "--trim-frame-start",
        "5",
        "--trim-frame-end",
        "15",
    )
    assert code == 0
    assert clip_facts(output).frames == 10


def test_megamind_swap_keeps_timing_and_audio(
    model_dir: Path, source: Path, tmp_path: Path
) -> None:
    target = require_media(MEGAMIND)
    output = tmp_path / "megamind.mp4"
    code = run(
        model_dir,
        "-s",
        source,
        "-t",
        target,
        "-o",
        output,
        "--trim-frame-start",
        "0",
        "--trim-frame-end",
        "48",
    )
    assert code == 0
    facts = clip_facts(output)
    assert facts.frames == 48
    assert abs(float(facts.fps) - float(clip_facts(target).fps)) < 0.01
    assert facts.audio_codec is not None


def failure(model_dir: Path, capsys: pytest.CaptureFixture[str], *args: str | Path) -> str:
    code = run(model_dir, *args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("enclave: error: ")
    assert "Traceback" not in err
    return err


def test_bad_inputs_fail_cleanly_without_output(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.jpg"
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert "notes.jpg" in failure(model_dir, capsys, "-s", source, "-t", text, "-o", output)

    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(t1_path().read_bytes()[:20000])
    failure(model_dir, capsys, "-s", source, "-t", truncated, "-o", output)

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 127, np.uint8))
    err = failure(model_dir, capsys, "-s", blank, "-t", t1_path(), "-o", output)
    assert "no face found in the source image blank.png" in err
    err = failure(model_dir, capsys, "-s", source, "-t", blank, "-o", output)
    assert "no face found in the target" in err

    err = failure(
        model_dir, capsys, "-s", source, "-t", t1_path(), "-o", output, "--max-pixels", "100000"
    )
    assert "pixel" in err

    failure(model_dir, capsys, "-s", source, "-t", t1_path(), "-o", tmp_path / "out.txt")
    assert not output.exists()


def test_bad_videos_fail_cleanly_without_output(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out.mp4"
    audio_only = make_audio_only(tmp_path / "voice.mp4")
    assert "no video stream" in failure(
        model_dir, capsys, "-s", source, "-t", audio_only, "-o", output
    )
    faceless = make_clip(
        tmp_path / "wall.mp4",
        (np.full((240, 320, 3), value, np.uint8) for value in range(0, 80, 8)),
    )
    assert "no face found" in failure(model_dir, capsys, "-s", source, "-t", faceless, "-o", output)
    assert not output.exists()
    assert list(tmp_path.glob("*.tmp*")) == []


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_run_works_with_no_network_at_all(model_dir: Path, source: Path, tmp_path: Path) -> None:
    """The acceptance check: a fresh process in an empty network namespace swaps an image."""
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("network namespaces are not permitted here")
    output = tmp_path / "offline.jpg"
    enclave = Path(sys.executable).with_name("enclave")
    completed = subprocess.run(
        [
            "unshare",
            "-n",
            str(enclave),
            "run",
            "-s",
            str(source),
            "-t",
            str(t1_path()),
            "-o",
            str(output),
            "--model-dir",
            str(tmp_path / "fresh-models"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert completed.returncode == 0, completed.stderr
    assert "6 face(s) found" in completed.stdout
    assert read(output).shape == read(t1_path()).shape


def test_an_unwritable_output_is_one_clear_line(
    model_dir: Path, source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    occupied = tmp_path / "taken.jpg"
    occupied.mkdir()  # a directory where the output file should go
    code = run(model_dir, "-s", source, "-t", t1_path(), "-o", occupied)
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert err.startswith("enclave: error: ") and "Traceback" not in err
    assert occupied.is_dir() and list(occupied.iterdir()) == []
