"""Videos stream through decode → process → encode keeping frame count, rate, duration and
sound; failures and cancellation leave no output and no threads behind."""

import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from pipeline.errors import (
    CorruptMediaError,
    InputError,
    MediaTooLargeError,
    PipelineError,
    ProcessingCanceled,
    UnsupportedMediaError,
)
from pipeline.options import Limits
from pipeline.video import (
    FALLBACK_FPS,
    TwoStageProcessor,
    VideoEncoding,
    VideoInfo,
    iter_frames,
    probe_video,
    transcode_video,
)
from tests.pipeline.media_fixtures import (
    MEGAMIND,
    audio_samples,
    beep,
    clip_facts,
    first_loud_second,
    make_audio_only,
    make_clip,
    panning_frames,
    require_media,
)
from tests.pipeline.photos import astronaut, read, t1_path

LIMITS = Limits()
NTSC = Fraction(30000, 1001)


def identity(frame: np.ndarray, _index: int) -> np.ndarray:
    return frame


class ModelCrashError(RuntimeError):
    pass


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def clip(media) -> Path:
    """40 frames of 320x240 at 29.97 fps panning across t1.jpg, with a sine soundtrack."""
    return make_clip(media / "t1.mp4", panning_frames(read(t1_path()), 40), fps=NTSC)


@pytest.fixture(scope="module")
def beeping_clip(media) -> Path:
    """50 frames at 25 fps (2 s) of the astronaut; the audio beeps from 1.0 s to 1.2 s."""
    frames = panning_frames(astronaut(), 50)
    return make_clip(media / "beep.mp4", frames, fps=Fraction(25), tone=beep(1.0, 1.2))


def _assert_same_timing(output: Path, frames: int, fps: Fraction) -> None:
    facts = clip_facts(output)
    assert facts.frames == frames
    assert abs(float(facts.fps) - float(fps)) < 0.01
    assert abs(facts.duration - frames / float(fps)) <= 1 / float(fps)


def _stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("enclave-video")]


def _mark_parity(frame: np.ndarray, index: int) -> np.ndarray:
    """Paint a corner white on odd frames, black on even ones (in place, as swappers do)."""
    frame[:16, :16] = 255 if index % 2 else 0
    return frame


def _parities_are_in_order(output: Path, frames: int) -> bool:
    marks = [frame[:16, :16].mean() > 128 for frame in iter_frames(output, LIMITS)]
    return marks == [index % 2 == 1 for index in range(frames)]


def _leftovers(directory: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# --- probing --------------------------------------------------------------------------------


def test_probe_describes_the_clip(clip):
    info = probe_video(clip, LIMITS)
    assert info == VideoInfo(
        width=320,
        height=240,
        fps=NTSC,
        frame_count=40,
        duration=pytest.approx(40 / float(NTSC), abs=0.001),
        has_audio=True,
        video_codec="h264",
    )


def test_iter_frames_yields_every_frame_as_bgr(clip):
    frames = list(iter_frames(clip, LIMITS))
    assert len(frames) == 40
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    expected = next(panning_frames(read(t1_path()), 40))
    assert cv2.PSNR(frames[0], expected) > 30


def test_portrait_phone_video_is_turned_upright(tmp_path):
    landscape = np.zeros((48, 96, 3), np.uint8)
    landscape[:16, :16] = 255  # a white mark in the stored top-left corner
    clip = make_clip(tmp_path / "phone.mp4", [landscape] * 6, size=(96, 48), display_rotation=90)
    info = probe_video(clip, LIMITS)
    assert (info.width, info.height, info.rotation) == (48, 96, 90)
    upright = next(iter_frames(clip, LIMITS))
    assert upright.shape == (96, 48, 3)
    # Turned a quarter counterclockwise for display, the mark ends up bottom-left.
    assert upright[-8:, :8].mean() > 200 and upright[:8, :8].mean() < 50

    output = tmp_path / "out.mp4"
    transcode_video(clip, output, identity, VideoEncoding(), LIMITS)
    written = probe_video(output, LIMITS)
    assert (written.width, written.height, written.rotation) == (48, 96, 0)
    assert next(iter_frames(output, LIMITS))[-8:, :8].mean() > 200


def test_audio_only_file_has_no_video_stream(tmp_path):
    sound = make_audio_only(tmp_path / "voice.m4a")
    with pytest.raises(UnsupportedMediaError, match="has no video stream"):
        probe_video(sound, LIMITS)
    with pytest.raises(UnsupportedMediaError, match="has no video stream"):
        transcode_video(sound, tmp_path / "out.mp4", identity, VideoEncoding(), LIMITS)
    assert _leftovers(tmp_path, {"voice.m4a"}) == []


def test_video_over_the_limits_is_refused(clip, tmp_path):
    with pytest.raises(MediaTooLargeError, match="320x240"):
        probe_video(clip, Limits(max_video_pixels=320 * 240 - 1))
    with pytest.raises(MediaTooLargeError, match=r"lasts 1\.3 s"):
        transcode_video(
            clip, tmp_path / "out.mp4", identity, VideoEncoding(), Limits(max_video_seconds=1)
        )
    assert list(tmp_path.iterdir()) == []


def test_truncated_video_is_corrupt(clip, tmp_path):
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: gone
    with pytest.raises(CorruptMediaError):
        transcode_video(cut, tmp_path / "out.mp4", identity, VideoEncoding(), LIMITS)
    assert _leftovers(tmp_path, {"cut.mp4"}) == []


def test_video_cut_short_after_its_index_is_corrupt(tmp_path):
    clip = make_clip(tmp_path / "clip.avi", encoder="mpeg4", with_audio=False)
    cut = tmp_path / "cut.avi"
    # AVI keeps its frame count in the header; losing the second half loses half the frames.
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with pytest.raises(CorruptMediaError, match="truncated"):
        transcode_video(cut, tmp_path / "out.mp4", identity, VideoEncoding(), LIMITS)
    assert not (tmp_path / "out.mp4").exists()
    assert _stage_threads() == []


def test_text_named_like_a_video_is_corrupt_and_missing_file_is_an_input_error(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("definitely not a video\n")
    with pytest.raises(CorruptMediaError, match=r"fake\.mp4"):
        probe_video(fake, LIMITS)
    with pytest.raises(InputError, match="cannot read"):
        probe_video(tmp_path / "absent.mp4", LIMITS)


# --- transcoding keeps what a viewer notices ------------------------------------------------


def test_identity_transcode_keeps_frames_rate_duration_audio_and_picture(clip, tmp_path):
    seen: list[int] = []
    progress: list[tuple[int, int]] = []

    def record(frame: np.ndarray, index: int) -> np.ndarray:
        seen.append(index)
        return frame

    output = tmp_path / "out.mp4"
    result = transcode_video(
        clip, output, record, VideoEncoding(), LIMITS, on_progress=lambda *p: progress.append(p)
    )
    assert seen == list(range(40))
    assert progress[-1] == (40, 40)
    assert (result.frames_in, result.frames_out, result.fps, result.has_audio) == (
        40,
        40,
        NTSC,
        True,
    )
    _assert_same_timing(output, 40, NTSC)
    facts = clip_facts(output)
    assert facts.audio_codec == "aac"
    assert facts.audio_duration == pytest.approx(facts.duration, abs=1 / 30)
    before, after = next(iter_frames(clip, LIMITS)), next(iter_frames(output, LIMITS))
    assert cv2.PSNR(before, after) > 30
    assert _leftovers(tmp_path, {"out.mp4"}) == []


def test_megamind_keeps_frames_rate_duration_and_its_ac3_audio(tmp_path):
    source = require_media(MEGAMIND)
    info = probe_video(source, LIMITS)
    assert info.has_audio
    output = tmp_path / "megamind.mp4"
    result = transcode_video(source, output, identity, VideoEncoding(preset="ultrafast"), LIMITS)
    source_facts = clip_facts(source)
    assert result.frames_out == source_facts.frames == 270
    _assert_same_timing(output, source_facts.frames, source_facts.fps)
    facts = clip_facts(output)
    assert abs(facts.duration - source_facts.duration) <= 1 / float(source_facts.fps)
    # MP4 takes AC-3 as it is, so the sound is copied, not re-encoded.
    assert facts.audio_codec == "ac3"


def test_container_metadata_such_as_location_is_not_carried_over(tmp_path):
    tags = {"location": "+48.8584+002.2945/", "title": "family holiday"}
    source = make_clip(tmp_path / "phone.mp4", size=(64, 48), metadata=tags)
    with av.open(str(source)) as container:
        assert container.metadata["location"] == tags["location"]
    output = tmp_path / "out.mp4"
    transcode_video(source, output, identity, VideoEncoding(), LIMITS)
    with av.open(str(output)) as container:
        assert not {"location", "location-eng", "title"} & set(container.metadata)


def test_output_appears_only_when_complete(clip, tmp_path):
    output = tmp_path / "out.mp4"

    def check(frame: np.ndarray, index: int) -> np.ndarray:
        assert not output.exists()
        return frame

    transcode_video(clip, output, check, VideoEncoding(), LIMITS)
    assert output.exists()


def test_trim_keeps_the_window_and_its_sound_in_sync(beeping_clip, tmp_path):
    seen: list[int] = []

    def record(frame: np.ndarray, index: int) -> np.ndarray:
        seen.append(index)
        return frame

    output = tmp_path / "trimmed.mp4"
    encoding = VideoEncoding(trim_frame_start=10, trim_frame_end=45)
    result = transcode_video(beeping_clip, output, record, encoding, LIMITS)
    assert seen == list(range(10, 45))
    assert result.frames_out == 35
    _assert_same_timing(output, 35, Fraction(25))
    samples, rate = audio_samples(output)
    # The beep at 1.0 s in the source must sound at 1.0 - 10/25 = 0.6 s in the output...
    assert first_loud_second(samples, rate) == pytest.approx(0.6, abs=0.01)
    # ...and the sound must stop with the picture.
    assert len(samples) / rate == pytest.approx(1.4, abs=0.05)


@pytest.mark.parametrize("trim_start", [None, 10])
def test_sound_stays_in_sync_when_the_video_starts_late_in_the_container(tmp_path, trim_start):
    # MPEG-TS gives the video a start time after the audio's; the output starts both at zero.
    frames = panning_frames(astronaut(), 50)
    source = make_clip(tmp_path / "broadcast.ts", frames, fps=Fraction(25), tone=beep(1.0, 1.2))
    output = tmp_path / "out.mp4"
    encoding = VideoEncoding(trim_frame_start=trim_start)
    transcode_video(source, output, identity, encoding, LIMITS)
    samples, rate = audio_samples(output)
    expected = 1.0 - (trim_start or 0) / 25
    assert first_loud_second(samples, rate) == pytest.approx(expected, abs=0.01)


def test_megamind_trimmed_keeps_a_cut_of_its_sound(tmp_path):
    source = require_media(MEGAMIND)
    output = tmp_path / "cut.mp4"
    encoding = VideoEncoding(preset="ultrafast", trim_frame_start=100, trim_frame_end=160)
    result = transcode_video(source, output, identity, encoding, LIMITS)
    assert result.frames_out == 60
    fps = probe_video(source, LIMITS).fps
    _assert_same_timing(output, 60, fps)
    facts = clip_facts(output)
    assert facts.audio_codec == "aac"  # cutting means re-encoding
    assert facts.audio_duration == pytest.approx(60 / float(fps), abs=0.05)


@pytest.mark.parametrize(
    ("suffix", "fps", "count", "start"),
    [(".mp4", Fraction(25), 300, 263), (".mkv", NTSC, 330, 305)],  # starts past 10 s
)
def test_a_far_trim_start_gives_exactly_the_frames_decoding_from_the_start_gives(
    tmp_path, suffix, fps, count, start
):
    # A keyframe every second and B-frames: a start past 10 s is reached by seeking.
    frames = panning_frames(astronaut(), count, (64, 48))
    options = {"preset": "veryfast", "g": "25", "crf": "30"}
    source = make_clip(
        tmp_path / f"long{suffix}",
        frames,
        fps=fps,
        size=(64, 48),
        with_audio=False,
        video_options=options,
    )
    expected = list(iter_frames(source, LIMITS))[start : start + 20]
    seen: list[tuple[int, np.ndarray]] = []

    def record(frame: np.ndarray, index: int) -> np.ndarray:
        seen.append((index, frame.copy()))
        return frame

    encoding = VideoEncoding(trim_frame_start=start, trim_frame_end=start + 20)
    transcode_video(source, tmp_path / "out.mp4", record, encoding, LIMITS)
    assert [index for index, _ in seen] == list(range(start, start + 20))
    assert all(np.array_equal(got, want) for (_, got), want in zip(seen, expected, strict=True))


def test_a_far_trim_start_in_megamind_gives_the_right_frames(tmp_path):
    # AVI stores no presentation times (and Megamind's first frame is stamped 1, not 0).
    source = require_media(MEGAMIND)
    expected = list(iter_frames(source, LIMITS))[250:256]
    seen: list[np.ndarray] = []

    def record(frame: np.ndarray, _index: int) -> np.ndarray:
        seen.append(frame.copy())
        return frame

    encoding = VideoEncoding(preset="ultrafast", trim_frame_start=250, trim_frame_end=256)
    transcode_video(source, tmp_path / "out.mp4", record, encoding, LIMITS)
    assert all(np.array_equal(got, want) for got, want in zip(seen, expected, strict=True))


def test_trim_end_past_the_last_frame_means_to_the_end(clip, tmp_path):
    result = transcode_video(
        clip,
        tmp_path / "o.mp4",
        identity,
        VideoEncoding(trim_frame_start=30, trim_frame_end=99),
        LIMITS,
    )
    assert result.frames_out == 10


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [(40, None, "past the end"), (10, 10, "must be after"), (-1, None, "negative")],
)
def test_impossible_trim_is_refused(clip, tmp_path, start, end, message):
    encoding = VideoEncoding(trim_frame_start=start, trim_frame_end=end)
    with pytest.raises(InputError, match=message):
        transcode_video(clip, tmp_path / "o.mp4", identity, encoding, LIMITS)
    assert list(tmp_path.iterdir()) == []


def test_without_keep_fps_the_output_is_25_fps_with_the_same_duration(
    beeping_clip, media, tmp_path
):
    source = make_clip(media / "ntsc.mp4", panning_frames(astronaut(), 60), fps=NTSC)
    output = tmp_path / "25.mp4"
    result = transcode_video(source, output, identity, VideoEncoding(keep_fps=False), LIMITS)
    assert result.fps == FALLBACK_FPS == Fraction(25)
    source_seconds = 60 / float(NTSC)
    facts = clip_facts(output)
    assert facts.fps == Fraction(25)
    assert facts.frames == result.frames_out == 51  # ceil(2.002 s x 25)
    assert abs(facts.duration - source_seconds) <= 1 / 25


def test_repeated_frames_are_separate_copies_for_processors_that_paint_in_place(tmp_path):
    grey = np.full((48, 64, 3), 100, np.uint8)
    source = make_clip(tmp_path / "slow.mp4", [grey] * 10, fps=Fraction(10), size=(64, 48))

    def brighten_in_place(frame: np.ndarray, _index: int) -> np.ndarray:
        np.add(frame, 50, out=frame)
        return frame

    output = tmp_path / "25.mp4"
    result = transcode_video(
        source, output, brighten_in_place, VideoEncoding(keep_fps=False), LIMITS
    )
    assert result.frames_in == 10 and result.frames_out == 25
    original = float(next(iter_frames(source, LIMITS)).mean())
    levels = [float(frame.mean()) for frame in iter_frames(output, LIMITS)]
    assert levels == pytest.approx([original + 50] * 25, abs=3)


def test_a_processor_that_upscales_sets_the_output_size(clip, tmp_path):
    output = tmp_path / "x2.mp4"

    def upscale(frame: np.ndarray, _index: int) -> np.ndarray:
        return cv2.resize(frame, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)

    transcode_video(clip, output, upscale, VideoEncoding(), LIMITS)
    facts = clip_facts(output)
    assert (facts.width, facts.height) == (640, 480)
    _assert_same_timing(output, 40, NTSC)


def test_a_processor_may_return_a_view(clip, tmp_path):
    output = tmp_path / "mirror.mp4"
    transcode_video(clip, output, lambda f, _i: f[:, ::-1], VideoEncoding(), LIMITS)
    mirrored = next(iter_frames(clip, LIMITS))[:, ::-1]
    assert cv2.PSNR(next(iter_frames(output, LIMITS)), np.ascontiguousarray(mirrored)) > 30


def test_odd_sizes_are_padded_to_even_by_one_pixel(clip, tmp_path):
    output = tmp_path / "odd.mp4"
    transcode_video(clip, output, lambda f, _i: f[:121, :161], VideoEncoding(), LIMITS)
    facts = clip_facts(output)
    assert (facts.width, facts.height) == (162, 122)
    first = next(iter_frames(output, LIMITS))
    assert cv2.PSNR(first[:121, :161], next(iter_frames(clip, LIMITS))[:121, :161]) > 30


SWATCHES = [  # BGR: primaries, skin, greys
    [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 255)],
    [(0, 0, 0), (128, 128, 128), (80, 120, 200), (200, 150, 40)],
    [(0, 255, 255), (255, 0, 255), (255, 255, 0), (30, 60, 90)],
]


def _swatch_frame(width: int, height: int) -> np.ndarray:
    frame = np.zeros((height, width, 3), np.uint8)
    rows, columns = len(SWATCHES), len(SWATCHES[0])
    for row, colours in enumerate(SWATCHES):
        for column, colour in enumerate(colours):
            frame[
                row * height // rows : (row + 1) * height // rows,
                column * width // columns : (column + 1) * width // columns,
            ] = colour
    return frame


@pytest.mark.parametrize("size", [(161, 121), (320, 240)])
def test_colours_come_back_as_they_went_in(clip, tmp_path, size):
    """Matrix and range of the frames handed to the encoder: BT.709 instead of BT.601 or
    full instead of limited range would move these swatches by 10-40 levels."""
    width, height = size
    swatches = _swatch_frame(width, height)
    output = tmp_path / "swatches.mp4"
    transcode_video(clip, output, lambda _f, _i: swatches.copy(), VideoEncoding(), LIMITS)
    decoded = next(iter_frames(output, LIMITS))[:height, :width]
    rows, columns = len(SWATCHES), len(SWATCHES[0])
    for row, colours in enumerate(SWATCHES):
        for column, colour in enumerate(colours):
            y1, y2 = row * height // rows + 8, (row + 1) * height // rows - 8
            x1, x2 = column * width // columns + 8, (column + 1) * width // columns - 8
            mean = decoded[y1:y2, x1:x2].reshape(-1, 3).mean(axis=0)
            assert np.abs(mean - colour).max() < 4, (colour, mean.round(1))


def test_enclaves_veryfast_reaches_x264_with_its_partitions(clip, tmp_path):
    """x264 writes the settings it encoded with into the stream (an SEI message)."""
    output = tmp_path / "settings.mp4"
    transcode_video(clip, output, identity, VideoEncoding(quality=80), LIMITS)
    written = output.read_bytes()
    assert b"crf=10.0" in written
    assert b"analyse=0x3:0x3" in written  # i8x8 and i4x4 only; x264's veryfast: 0x3:0x113
    transcode_video(clip, output, identity, VideoEncoding(preset="medium"), LIMITS)
    assert b"analyse=0x3:0x113" in output.read_bytes()


def test_the_output_says_its_colours_are_bt601_limited_range(clip, tmp_path):
    """The pixels are BT.601 (yuv420p_frame); untagged HD output would be shown as BT.709."""
    output = tmp_path / "tagged.mp4"
    transcode_video(clip, output, identity, VideoEncoding(), LIMITS)
    with av.open(str(output)) as container:
        context = container.streams.video[0].codec_context
        tags = (context.colorspace, context.color_primaries, context.color_trc)
        assert tags == (6, 6, 6)  # SMPTE 170M, i.e. BT.601
        assert context.color_range == 1  # limited ("MPEG") range


@pytest.mark.parametrize(
    ("suffix", "encoder", "video_codec", "audio_codec"),
    [
        (".webm", "libx264", "vp9", "opus"),  # WebM cannot carry H.264: VP9 is used
        (".mkv", "libx265", "hevc", "aac"),
        (".mov", "mpeg4", "mpeg4", "aac"),
    ],
)
def test_containers_and_encoders(clip, tmp_path, suffix, encoder, video_codec, audio_codec):
    output = tmp_path / f"out{suffix}"
    transcode_video(clip, output, identity, VideoEncoding(encoder=encoder), LIMITS)
    info = probe_video(output, LIMITS)
    assert info.video_codec == video_codec
    assert clip_facts(output).audio_codec == audio_codec
    _assert_same_timing(output, 40, NTSC)


@pytest.mark.parametrize(
    ("audio_encoder", "suffix", "kept_as"),
    [
        ("libmp3lame", ".mp4", "mp3"),  # MP4 holds MP3: copied
        ("libopus", ".mp4", "opus"),
        ("pcm_s16le", ".mov", "pcm_s16le"),  # QuickTime holds PCM: copied
        ("pcm_s16le", ".mp4", "aac"),  # MP4 does not: re-encoded
        ("libmp3lame", ".webm", "opus"),  # WebM holds only Opus/Vorbis
    ],
)
def test_sound_is_copied_when_the_container_holds_it_else_re_encoded(
    tmp_path, audio_encoder, suffix, kept_as
):
    source = make_clip(tmp_path / "source.mkv", size=(64, 48), audio_encoder=audio_encoder)
    output = tmp_path / f"out{suffix}"
    transcode_video(source, output, identity, VideoEncoding(preset="ultrafast"), LIMITS)
    facts = clip_facts(output)
    assert facts.audio_codec == kept_as
    assert facts.audio_duration == pytest.approx(facts.duration, abs=0.05)


@pytest.mark.parametrize("encoder", ["libx264", "mpeg4"])  # CRF, and a bit rate for mpeg4
def test_quality_changes_the_size(clip, tmp_path, encoder):
    low, high = tmp_path / "low.mp4", tmp_path / "high.mp4"
    transcode_video(clip, low, identity, VideoEncoding(encoder=encoder, quality=10), LIMITS)
    transcode_video(clip, high, identity, VideoEncoding(encoder=encoder, quality=95), LIMITS)
    assert low.stat().st_size * 1.5 < high.stat().st_size


def test_video_without_audio_stays_silent(tmp_path):
    source = make_clip(tmp_path / "silent.mkv", size=(64, 48), with_audio=False)
    result = transcode_video(source, tmp_path / "out.mp4", identity, VideoEncoding(), LIMITS)
    assert not result.has_audio
    assert clip_facts(tmp_path / "out.mp4").audio_codec is None


@pytest.mark.parametrize(
    ("name", "encoding", "error", "message"),
    [
        ("out.avi", VideoEncoding(), UnsupportedMediaError, "suffix must be one of"),
        ("out.mp4", VideoEncoding(encoder="no-such-encoder"), InputError, "not available"),
        ("out.mp4", VideoEncoding(encoder="aac"), InputError, "not a video encoder"),
        ("out.mp4", VideoEncoding(preset="warp"), InputError, "unknown preset"),
        ("out.mp4", VideoEncoding(encoder="rawvideo"), InputError, "cannot hold rawvideo"),
    ],
)
def test_bad_output_settings_are_refused_before_any_work(
    clip, tmp_path, name, encoding, error, message
):
    calls: list[int] = []

    def count(frame: np.ndarray, index: int) -> np.ndarray:
        calls.append(index)
        return frame

    with pytest.raises(error, match=message):
        transcode_video(clip, tmp_path / name, count, encoding, LIMITS)
    assert calls == []
    assert list(tmp_path.iterdir()) == []


def test_missing_output_folder_is_refused(clip, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        transcode_video(clip, tmp_path / "no" / "out.mp4", identity, VideoEncoding(), LIMITS)


# --- two-stage processors ------------------------------------------------------------------


def test_a_two_stage_processor_analyses_in_order_on_its_own_thread(clip, tmp_path):
    """Every frame is analysed once, in order, off the caller's thread, and rendered with
    its own analysis; the output holds the rendered frames in order."""
    analysed: list[int] = []
    threads: set[str] = set()

    def analyse(frame: np.ndarray, index: int) -> tuple[int, float]:
        threads.add(threading.current_thread().name)
        analysed.append(index)
        return index, float(frame.mean())

    def render(frame: np.ndarray, analysis: tuple[int, float]) -> np.ndarray:
        index, mean = analysis
        assert mean == float(frame.mean())  # the analysis of this very frame
        return _mark_parity(frame, index)

    output = tmp_path / "out.mp4"
    result = transcode_video(
        clip, output, TwoStageProcessor(analyse, render), VideoEncoding(), LIMITS
    )
    assert analysed == list(range(40)) and result.frames_out == 40
    assert threads == {"enclave-video-analyse"}
    assert _parities_are_in_order(output, 40)
    assert _stage_threads() == []


def test_frames_rendered_on_several_threads_come_out_in_order(clip, tmp_path):
    renderers: set[str] = set()

    def render(frame: np.ndarray, index: int) -> np.ndarray:
        renderers.add(threading.current_thread().name)
        time.sleep(0.02 if index % 3 == 0 else 0.0)  # some frames finish after later ones
        return _mark_parity(frame, index)

    output = tmp_path / "out.mp4"
    processor = TwoStageProcessor(lambda _frame, index: index, render, render_threads=3)
    result = transcode_video(clip, output, processor, VideoEncoding(), LIMITS)
    assert result.frames_out == 40
    assert len(renderers) == 3 and all(n.startswith("enclave-video-render") for n in renderers)
    assert _parities_are_in_order(output, 40)
    assert _stage_threads() == []


def test_an_error_in_one_of_several_renders_propagates_and_leaves_nothing(clip, tmp_path):
    def render(frame: np.ndarray, index: int) -> np.ndarray:
        if index == 9:
            raise ModelCrashError("the swapper fell over on frame 9")
        return frame

    processor = TwoStageProcessor(lambda _frame, index: index, render, render_threads=2)
    with pytest.raises(ModelCrashError, match="frame 9"):
        transcode_video(clip, tmp_path / "out.mp4", processor, VideoEncoding(), LIMITS)
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


def test_an_error_in_the_analysis_propagates_and_leaves_nothing(clip, tmp_path):
    def analyse(frame: np.ndarray, index: int) -> int:
        if index == 5:
            raise ModelCrashError("the detector fell over on frame 5")
        return index

    processor = TwoStageProcessor(analyse, lambda frame, _index: frame)
    with pytest.raises(ModelCrashError, match="frame 5"):
        transcode_video(clip, tmp_path / "out.mp4", processor, VideoEncoding(), LIMITS)
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


# --- failure and cancellation ---------------------------------------------------------------


@pytest.mark.parametrize("two_stage", [False, True], ids=["plain", "two-stage"])
def test_cancel_midway_stops_and_leaves_nothing(clip, tmp_path, two_stage):
    processed: list[int] = []

    def record(frame: np.ndarray, index: int) -> np.ndarray:
        processed.append(index)
        return frame

    processor = TwoStageProcessor(lambda _frame, index: index, record) if two_stage else record
    with pytest.raises(ProcessingCanceled):
        transcode_video(
            clip,
            tmp_path / "out.mp4",
            processor,
            VideoEncoding(),
            LIMITS,
            should_cancel=lambda: len(processed) >= 10,
        )
    assert processed == list(range(10))
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


def test_an_error_in_the_processor_propagates_and_leaves_nothing(clip, tmp_path):
    previous = tmp_path / "out.mp4"
    previous.write_bytes(b"last week's result")

    def crash(frame: np.ndarray, index: int) -> np.ndarray:
        if index == 7:
            raise ModelCrashError("the model fell over on frame 7")
        return frame

    with pytest.raises(ModelCrashError, match="frame 7"):
        transcode_video(clip, previous, crash, VideoEncoding(), LIMITS)
    assert previous.read_bytes() == b"last week's result"
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]
    assert _stage_threads() == []


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda f: f.astype(np.float32), "HxWx3 uint8"),
        (lambda f: f[:, :, 0], "HxWx3 uint8"),
        (lambda f: None, "HxWx3 uint8"),
    ],
)
def test_a_processor_returning_a_non_image_is_refused(clip, tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        transcode_video(clip, tmp_path / "o.mp4", lambda f, _i: bad(f), VideoEncoding(), LIMITS)
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


def test_a_processor_changing_size_midway_is_refused(clip, tmp_path):
    def shrink_later(frame: np.ndarray, index: int) -> np.ndarray:
        return frame if index < 5 else frame[:100, :100]

    with pytest.raises(ValueError, match="processed frame 5 is 100x100"):
        transcode_video(clip, tmp_path / "o.mp4", shrink_later, VideoEncoding(), LIMITS)
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


def test_an_encoder_failure_is_reported_and_leaves_nothing(clip, tmp_path):
    def too_wide(frame: np.ndarray, _index: int) -> np.ndarray:
        return np.zeros((16, 70_000, 3), np.uint8)  # beyond what H.264 can describe

    with pytest.raises(PipelineError, match="could not encode 70000x16 frames with libx264"):
        transcode_video(clip, tmp_path / "o.mp4", too_wide, VideoEncoding(), LIMITS)
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


def test_interrupt_during_processing_leaves_nothing(clip, tmp_path):
    def interrupt(frame: np.ndarray, index: int) -> np.ndarray:
        if index == 3:
            raise KeyboardInterrupt
        return frame

    with pytest.raises(KeyboardInterrupt):
        transcode_video(clip, tmp_path / "o.mp4", interrupt, VideoEncoding(), LIMITS)
    assert list(tmp_path.iterdir()) == []
    assert _stage_threads() == []


def _write_pixel_format_clip(path: Path, pix_fmt: str, size: tuple[int, int], frames: int) -> Path:
    """A silent x264 clip in ``pix_fmt`` (full-range ``yuvj420p`` via MJPEG in Matroska)."""
    width, height = size
    encoder = "mjpeg" if pix_fmt == "yuvj420p" else "libx264"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(encoder, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index, frame in enumerate(panning_frames(astronaut(), frames, size)):
            video_frame = av.VideoFrame.from_ndarray(frame, format="bgr24")
            video_frame.pts = index
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    ("pix_fmt", "size"),
    [
        ("yuv420p", (320, 240)),
        ("yuv444p", (161, 121)),  # odd size: no 4:2:0 shortcut applies
        ("yuv422p", (320, 240)),
        ("yuvj420p", (320, 240)),  # full range, as phones' MJPEG and some H.264
    ],
)
def test_frames_are_the_bgr_each_decoded_frame_converts_to(tmp_path, pix_fmt, size):
    """The decoder keeps one swscale context per stream: same pixels as converting each
    frame on its own, whatever the source's pixel format, range or size."""
    suffix = ".mkv" if pix_fmt == "yuvj420p" else ".mp4"
    source = _write_pixel_format_clip(tmp_path / f"clip{suffix}", pix_fmt, size, 6)
    with av.open(str(source)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == pix_fmt
        expected = [
            frame.to_ndarray(format="bgr24", width=size[0], height=size[1])
            for frame in container.decode(video=0)
        ]
    frames = list(iter_frames(source, LIMITS))
    assert len(frames) == len(expected) == 6
    for got, want in zip(frames, expected, strict=True):
        assert got.shape == (size[1], size[0], 3)
        assert np.array_equal(got, want)
