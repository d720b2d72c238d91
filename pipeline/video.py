"""Video transcoding with PyAV: stream decode → process → encode, the audio kept.

Three stages overlap: a decoder thread fills a small bounded queue, the caller's thread
runs the frame processor, and an encoder thread drains a second bounded queue into the
muxer. A :class:`TwoStageProcessor` adds a fourth: its ``analyse`` half runs on its own
thread, ahead of ``render`` (on the caller's thread, or on ``render_threads`` threads whose
frames still come out in order), so the two overlap too. Only a
handful of frames are ever in memory and no frame touches the disk, so memory stays flat
however long the video is. The output is written beside its final path and moved into
place only when complete; on any error or cancellation it is deleted and every thread is
stopped and joined before the error reaches the caller.

Timing: every decoded frame becomes one output frame at the source's average frame rate
(a variable-rate source comes out constant-rate with the same frame count and duration).
``keep_fps=False`` resamples to 25 fps instead, FaceFusion's historical default, keeping
the duration. Trim bounds are frame indices, start inclusive and end exclusive, like
FFmpeg's ``trim=start_frame:end_frame`` that FaceFusion uses.

Carried over: the first video stream (upright) and the first audio stream. Not carried:
subtitles, data streams and container metadata, which can hold a phone's GPS position.
Colour is converted through 8-bit BGR, so HDR sources come out as plain 8-bit video.
"""

import math
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

from pipeline.errors import InputError, ProcessingCanceled
from pipeline.media import atomic_output
from pipeline.options import Limits
from pipeline.stages import END, Channel, End, OrderedPool, StageStopped, StageThread
from pipeline.types import VisionFrame
from pipeline.video_decoder import VideoInfo, iter_frames, probe_video, read_window
from pipeline.video_encoder import VideoWriter, output_format

FrameProcessor = Callable[[VisionFrame, int], VisionFrame]
"""(BGR frame, source frame index) -> BGR frame; may change the size (upscalers)."""

Analysis = TypeVar("Analysis")


@dataclass(frozen=True)
class TwoStageProcessor(Generic[Analysis]):
    """A frame processor in two halves that run on two threads, on different frames at once.

    ``analyse(frame, index)`` sees every frame in order on one thread and may keep state
    from frame to frame (a face tracker); it must not change the frame. ``render(frame,
    analysis)`` makes the output frame: on the caller's thread, or with ``render_threads``
    > 1 on that many threads at once. Model calls release the GIL, so one frame's analysis
    overlaps the rendering of earlier ones.
    """

    analyse: Callable[[VisionFrame, int], Analysis]
    render: Callable[[VisionFrame, Analysis], VisionFrame]
    render_threads: int = 1
    """How many frames ``render`` may work on at once (on that many threads; frames still
    come out in order). Only for a ``render`` that is safe to call concurrently."""


FALLBACK_FPS = Fraction(25)  # keep_fps=False: FaceFusion's historical extraction rate
QUEUE_FRAMES = 4  # frames buffered between two stages: enough to overlap them, flat in length


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


def transcode_video(
    source: Path,
    output: Path,
    process: FrameProcessor | TwoStageProcessor[Any],
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
    decoded = Channel[tuple[VisionFrame, int]](stop, QUEUE_FRAMES)
    processed = Channel[VisionFrame](stop, QUEUE_FRAMES)
    # What is rendered: (frame, what render needs), in frame order.
    inbox: Channel[tuple[VisionFrame, Any]]
    if isinstance(process, TwoStageProcessor):
        inbox = Channel(stop, QUEUE_FRAMES)
        analyse, render = process.analyse, process.render
        analyser = StageThread(
            "enclave-video-analyse", stop, lambda: _analyse_stage(analyse, decoded, inbox)
        )
        renderer = OrderedPool[tuple[VisionFrame, Any], VisionFrame](
            "enclave-video-render", lambda item: render(*item), process.render_threads
        )
    else:
        inbox, analyser = decoded, None
        plain = process
        renderer = OrderedPool("enclave-video-render", lambda item: plain(*item), 1)
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
        stages = [decoder, encoder_thread] + ([analyser] if analyser is not None else [])
        try:
            for stage in stages:
                stage.start()
            frames_out = 0

            def hand_on(rendered: list[VisionFrame]) -> None:
                nonlocal frames_out
                for frame in rendered:
                    processed.put(frame)
                    frames_out += 1
                    if on_progress is not None:
                        on_progress(frames_out, max(expected, frames_out))

            # Checked per frame, and while waiting, so a slow decode (a long skip to the trim
            # start) still cancels promptly.
            while not isinstance(item := inbox.get(while_waiting=check_cancel), End):
                check_cancel()
                hand_on(renderer.submit(item))
            hand_on(renderer.drain())
            processed.put(END)
            for stage in stages:
                stage.join_and_raise()
        except BaseException as error:
            stop.set()
            for stage in stages:
                stage.wait()
            if isinstance(error, StageStopped):
                # A stage failed; its error explains more than the "stopped" seen here.
                for stage in stages:
                    stage.raise_failure()
            raise
        finally:
            renderer.close()
    frames_in = decoder.result if isinstance(decoder.result, int) else 0
    return VideoResult(
        frames_in=frames_in,
        frames_out=frames_out,
        fps=fps,
        seconds=float(frames_out / fps),
        has_audio=writer.has_audio,
    )


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


def _analyse_stage(
    analyse: Callable[[VisionFrame, int], Any],
    decoded: Channel[tuple[VisionFrame, int]],
    analysed: Channel[tuple[VisionFrame, Any]],
) -> None:
    while not isinstance(item := decoded.get(), End):
        frame, index = item
        analysed.put((frame, analyse(frame, index)))
    analysed.put(END)


def _decode_stage(
    source: Path,
    *,
    info: VideoInfo,
    start: int,
    end: int | None,
    fps: Fraction,
    decoded: Channel[tuple[VisionFrame, int]],
) -> int:
    """Decode the window into ``decoded``; returns how many source frames it read."""
    ratio = fps / info.fps  # output frames per source frame
    count = 0
    # closing(): the file is released as soon as this stage ends, even when it is stopped.
    with closing(read_window(source, info, start, end)) as frames:
        for index, frame in frames:
            local = index - start
            # Output frame n shows source frame floor(n / ratio): repeat or drop to resample.
            repeats = math.ceil((local + 1) * ratio) - math.ceil(local * ratio)
            # A processor may paint on its input: each repeat gets its own copy, made
            # before the first one is handed over.
            copies = [frame] + [frame.copy() for _ in range(repeats - 1)] if repeats else []
            for copy in copies:
                decoded.put((copy, index))
            count += 1
    if count == 0:
        raise InputError(f"trim start {start} is past the end of {source.name}")
    decoded.put(END)
    return count


__all__ = [
    "FrameProcessor",
    "TwoStageProcessor",
    "VideoEncoding",
    "VideoInfo",
    "VideoResult",
    "iter_frames",
    "probe_video",
    "transcode_video",
]
