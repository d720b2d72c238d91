"""Video I/O with PyAV: probe, and stream decode → process → encode with the audio kept.

Three stages overlap: a decoder thread fills a small bounded queue, the caller's thread
runs the frame processor, and an encoder thread drains a second bounded queue into the
muxer. Only a handful of frames are ever in memory and no frame touches the disk, so memory
stays flat however long the video is. The output is written beside its final path and moved
into place only when complete; on any error or cancellation it is deleted and both threads
are stopped and joined before the error reaches the caller.

Timing: every decoded frame becomes one output frame at the source's average frame rate
(a variable-rate source comes out constant-rate with the same frame count and duration).
``keep_fps=False`` resamples to 25 fps instead, FaceFusion's historical default, keeping
the duration. Trim bounds are frame indices, start inclusive and end exclusive, like
FFmpeg's ``trim=start_frame:end_frame`` that FaceFusion uses.
"""

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.error
import av.video.stream
import numpy as np

from pipeline.errors import (
    CorruptMediaError,
    InputError,
    MediaTooLargeError,
    ProcessingCanceled,
    UnsupportedMediaError,
)
from pipeline.media import atomic_output
from pipeline.options import Limits
from pipeline.stages import END, Channel, End, StageStopped, StageThread
from pipeline.types import VisionFrame
from pipeline.video_encoder import VideoWriter, output_format

FrameProcessor = Callable[[VisionFrame, int], VisionFrame]
"""(BGR frame, source frame index) -> BGR frame; may change the size (upscalers)."""

FALLBACK_FPS = Fraction(25)  # keep_fps=False: FaceFusion's historical extraction rate
QUEUE_FRAMES = 4  # frames buffered between two stages: enough to overlap them, flat in length
_MAX_SANE_FPS = 1000
_PROBE_PACKETS = 500  # a first frame that needs more packets than this is not coming


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frame_count: int  # from the container when it records one, else estimated from duration
    duration: float  # seconds
    has_audio: bool
    video_codec: str
    rotation: int = 0  # degrees counterclockwise applied to decoded frames (display matrix)


@dataclass(frozen=True)
class VideoEncoding:
    """How to write the output; names follow FaceFusion's ``--output-video-*`` flags.

    ``quality`` 0-100 maps to CRF for x264/x265/VP9 (FaceFusion's mapping) and to a bit
    rate for other encoders. A ``.webm`` output always uses a WebM codec (libvpx-vp9 when
    ``encoder`` is not one). Odd frame sizes are padded by one replicated pixel row/column,
    because yuv420p needs even dimensions.
    """

    encoder: str = "libx264"
    quality: int = 80
    preset: str = "veryfast"
    keep_fps: bool = True
    trim_frame_start: int | None = None
    trim_frame_end: int | None = None


@dataclass(frozen=True)
class VideoResult:
    frames_in: int  # source frames decoded inside the trim window
    frames_out: int
    fps: Fraction  # of the output
    seconds: float  # duration of the output video
    has_audio: bool  # the output carries an audio stream


def probe_video(path: Path, limits: Limits) -> VideoInfo:
    """Describe the first video stream, refusing files without one or over the limits."""
    with _opened(path) as container:
        return _describe(container, path.name, limits)


def iter_frames(path: Path, limits: Limits) -> Iterator[VisionFrame]:
    """Yield every frame of ``path`` as BGR, upright, one at a time."""
    info = probe_video(path, limits)
    with _opened(path) as container:
        for _, frame in _decoded_frames(container, info, path.name):
            yield frame


def transcode_video(
    source: Path,
    output: Path,
    process: FrameProcessor,
    encoding: VideoEncoding,
    limits: Limits,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> VideoResult:
    """Stream ``source`` through ``process`` into ``output``, keeping timing and audio.

    ``on_progress(done, total)`` is called after each output frame (``total`` is an
    estimate when the container does not record a frame count). ``should_cancel`` is
    checked before every frame; when it returns true :class:`ProcessingCanceled` is raised
    and no output is left behind. Exceptions raised by ``process`` propagate unchanged.
    """
    info = probe_video(source, limits)
    container_format, encoder = output_format(output, encoding.encoder)
    if not output.parent.is_dir():
        raise InputError(f"the output folder {output.parent} does not exist")
    start, end = _trim_window(info, encoding, source.name)
    fps = info.fps if encoding.keep_fps else FALLBACK_FPS
    window = min(end, info.frame_count) if end is not None else info.frame_count
    expected = _expected_output_frames(window - start, info.fps, fps)

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise ProcessingCanceled(f"processing of {source.name} was canceled")

    stop = threading.Event()
    decoded = Channel[tuple[int, VisionFrame]](stop, QUEUE_FRAMES)
    processed = Channel[VisionFrame](stop, QUEUE_FRAMES)
    with atomic_output(output) as partial:
        writer = VideoWriter(
            partial,
            container_format=container_format,
            encoder=encoder,
            fps=fps,
            quality=encoding.quality,
            preset=encoding.preset,
            audio_source=source if info.has_audio else None,
            video_start=float(start / info.fps),
        )
        decoder = StageThread(
            "enclave-video-decode",
            stop,
            lambda: _decode_stage(
                source, info=info, start=start, end=end, fps=fps, decoded=decoded
            ),
        )
        encoder_thread = StageThread(
            "enclave-video-encode", stop, lambda: writer.consume(processed)
        )
        try:
            decoder.start()
            encoder_thread.start()
            frames_out = 0
            # Checked per frame, and while waiting, so a slow decode (a long skip to the trim
            # start) still cancels promptly.
            while not isinstance(item := decoded.get(while_waiting=check_cancel), End):
                check_cancel()
                index, frame = item
                processed.put(process(frame, index))
                frames_out += 1
                if on_progress is not None:
                    on_progress(frames_out, max(expected, frames_out))
            processed.put(END)
            encoder_thread.join_and_raise()
            decoder.join_and_raise()
        except BaseException as error:
            stop.set()
            for thread in (decoder, encoder_thread):
                thread.wait()
            if isinstance(error, StageStopped):
                # A stage failed; its error explains more than the "stopped" seen here.
                for thread in (decoder, encoder_thread):
                    thread.raise_failure()
            raise
    frames_in = decoder.result if isinstance(decoder.result, int) else 0
    return VideoResult(
        frames_in=frames_in,
        frames_out=frames_out,
        fps=fps,
        seconds=float(frames_out / fps),
        has_audio=writer.has_audio,
    )


@contextmanager
def _opened(path: Path) -> Iterator[av.container.InputContainer]:
    try:
        container = av.open(str(path), mode="r")
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise InputError(f"cannot read {path.name}: {error.strerror or error}") from error
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise CorruptMediaError(f"{path.name} is not a readable video: {error}") from error
    try:
        with container:
            yield container
    except av.error.FFmpegError as error:
        raise CorruptMediaError(f"{path.name} could not be decoded: {error}") from error


def _describe(container: av.container.InputContainer, name: str, limits: Limits) -> VideoInfo:
    if not container.streams.video:
        raise UnsupportedMediaError(f"{name} has no video stream")
    stream = container.streams.video[0]
    width, height = stream.codec_context.width, stream.codec_context.height
    if width <= 0 or height <= 0:
        raise CorruptMediaError(f"{name} declares an empty {width}x{height} video")
    fps = _frame_rate(stream)
    if fps is None:
        raise CorruptMediaError(f"{name} has no usable frame rate")
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = stream.frames / float(fps)
    frame_count = stream.frames or round(duration * fps)
    if width * height > limits.max_video_pixels:
        raise MediaTooLargeError(
            f"{name} is {width}x{height} ({width * height:,} pixels per frame); "
            f"the limit is {limits.max_video_pixels:,}"
        )
    if duration > limits.max_video_seconds:
        raise MediaTooLargeError(
            f"{name} lasts {duration:.1f} s; the limit is {limits.max_video_seconds:.0f} s"
        )
    rotation = _display_rotation(container, name)
    if rotation % 180:
        width, height = height, width
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration=duration,
        has_audio=bool(container.streams.audio),
        video_codec=stream.codec_context.name,
        rotation=rotation,
    )


def _display_rotation(container: av.container.InputContainer, name: str) -> int:
    """The rotation phones record in the display matrix, read from the first frame.

    FFmpeg's command line turns such videos upright; so do we, or a portrait clip would be
    processed (and its faces searched) lying on its side.
    """
    stream = container.streams.video[0]
    for index, packet in enumerate(container.demux(stream)):
        if index >= _PROBE_PACKETS:
            break
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue
        if frames:
            return round(frames[0].rotation / 90) * 90 % 360
    raise CorruptMediaError(f"{name} has no decodable video frame")


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and 0 < rate <= _MAX_SANE_FPS:
            # Some encoders (mpeg4) refuse time bases over 16 bits; common rates fit exactly.
            return Fraction(rate).limit_denominator(65535)
    return None


def _trim_window(info: VideoInfo, encoding: VideoEncoding, name: str) -> tuple[int, int | None]:
    start = encoding.trim_frame_start or 0
    end = info.frame_count if encoding.trim_frame_end is None else encoding.trim_frame_end
    if start < 0 or end < 0:
        raise InputError("trim frame numbers must not be negative")
    if start >= info.frame_count:
        raise InputError(
            f"trim start {start} is past the end of {name} ({info.frame_count} frames)"
        )
    if end <= start:
        raise InputError(f"trim end {end} must be after trim start {start}")
    # No end, or one past the last frame, means "to the end" (the count may be an estimate).
    return start, encoding.trim_frame_end


def _expected_output_frames(window: int, source_fps: Fraction, fps: Fraction) -> int:
    return math.ceil(window * fps / source_fps)


def _decode_stage(
    source: Path,
    *,
    info: VideoInfo,
    start: int,
    end: int | None,
    fps: Fraction,
    decoded: Channel[tuple[int, VisionFrame]],
) -> int:
    """Decode the window into ``decoded``; returns how many source frames it read."""
    ratio = fps / info.fps  # output frames per source frame
    count = 0
    with _opened(source) as container:
        for index, frame in _decoded_frames(container, info, source.name, start, end):
            local = index - start
            # Output frame n shows source frame floor(n / ratio): repeat or drop to resample.
            repeats = math.ceil((local + 1) * ratio) - math.ceil(local * ratio)
            # A processor may paint on its input: each repeat gets its own copy, made before
            # the first one is handed over.
            copies = [frame] + [frame.copy() for _ in range(repeats - 1)] if repeats else []
            for copy in copies:
                decoded.put((index, copy))
            count += 1
    if count == 0:
        raise InputError(f"trim start {start} is past the end of {source.name}")
    decoded.put(END)
    return count


def _upright_bgr(frame: av.VideoFrame, info: VideoInfo) -> VisionFrame:
    turns = info.rotation // 90
    width, height = (info.height, info.width) if turns % 2 else (info.width, info.height)
    # Scaling to the probed size keeps a stream whose resolution changes encodable.
    array: VisionFrame = np.asarray(
        frame.to_ndarray(format="bgr24", width=width, height=height), dtype=np.uint8
    )
    return np.ascontiguousarray(np.rot90(array, turns)) if turns else array


def _decoded_frames(
    container: av.container.InputContainer,
    info: VideoInfo,
    name: str,
    start: int = 0,
    end: int | None = None,
) -> Iterator[tuple[int, VisionFrame]]:
    """(source index, BGR frame) for frames ``start`` to ``end`` (exclusive), upright.

    Frames before ``start`` are decoded (frame-accurate) but never converted to BGR.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    declared = stream.frames
    index = 0
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            continue  # one damaged packet costs a frame, as with FFmpeg; the count below tells
        for frame in frames:
            if end is not None and index >= end:
                return
            if index >= start:
                yield index, _upright_bgr(frame, info)
            index += 1
    if index == 0:
        raise CorruptMediaError(f"{name} has no decodable video frame")
    # FFmpeg stops quietly at the end of a cut file; the container's own count tells.
    if declared and index < declared - max(2, declared // 100):
        raise CorruptMediaError(
            f"{name} is truncated: {index} of its {declared} frames could be decoded"
        )


__all__ = [
    "FrameProcessor",
    "VideoEncoding",
    "VideoInfo",
    "VideoResult",
    "iter_frames",
    "probe_video",
    "transcode_video",
]
