"""The encoding end of a transcode: container and encoder choice, options, and the writer.

The writer is configured from the first processed frame (a processor may upscale), writes
frames at exactly ``1/fps`` apart so frame count and duration match the source, and muxes
the audio in step with the video.
"""

import contextlib
import io
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.error
import cv2
import numpy as np
from av.video.stream import VideoStream

from pipeline.errors import CorruptMediaError, InputError, PipelineError, UnsupportedMediaError
from pipeline.soundtrack import Soundtrack
from pipeline.stages import Channel, End
from pipeline.types import VisionFrame

_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}
_WEBM_ENCODERS = {"libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1"}
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
# libvpx has no x264-style presets: (deadline, cpu-used) by the same speed ladder.
_VPX_SPEED = {
    "ultrafast": ("realtime", "8"),
    "superfast": ("realtime", "8"),
    "veryfast": ("realtime", "7"),
    "faster": ("good", "5"),
    "fast": ("good", "4"),
    "medium": ("good", "3"),
    "slow": ("good", "2"),
    "slower": ("good", "1"),
    "veryslow": ("good", "0"),
}


def output_format(path: Path, encoder: str) -> tuple[str, str]:
    """The container (from the suffix) and the encoder that will really be used."""
    container_format = _CONTAINERS.get(path.suffix.lower())
    if container_format is None:
        raise UnsupportedMediaError(
            f"cannot write {path.name}: the suffix must be one of {', '.join(_CONTAINERS)}"
        )
    if container_format == "webm" and encoder not in _WEBM_ENCODERS:
        encoder = "libvpx-vp9"  # WebM carries only VP8/VP9/AV1
    try:
        codec = av.Codec(encoder, "w")
    except ValueError as error:
        raise InputError(f"the video encoder {encoder!r} is not available here") from error
    if codec.type != "video":
        raise InputError(f"{encoder!r} is not a video encoder")
    with av.open(io.BytesIO(), mode="w", format=container_format) as empty:
        supported = empty.supported_codecs
    if encoder not in supported:
        raise InputError(f"{path.suffix} files cannot hold {encoder} video")
    return container_format, encoder


# x264's veryfast still searches inter sub-partitions (p8x8, b8x8); at the CRFs Enclave
# writes that is 20-27% of the encoder's CPU for 1-2% of file size and no PSNR (720p and
# 1080p, CRF 10 and 23; docs/performance.md). Enclave's veryfast keeps superfast's
# partitions and everything else of veryfast.
_X264_PARAMS = {"veryfast": "partitions=i8x8,i4x4"}


def encoder_options(encoder: str, quality: int, preset: str) -> dict[str, str]:
    """FFmpeg options for ``encoder`` at ``quality`` (0-100) and an x264-style ``preset``."""
    if preset not in PRESETS:
        raise InputError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    quality = min(100, max(0, quality))
    if encoder in ("libx264", "libx265"):
        options = {"crf": str(round(51 - quality * 0.51)), "preset": preset}
        if encoder == "libx265":
            options["x265-params"] = "log-level=error"
        elif preset in _X264_PARAMS:
            options["x264-params"] = _X264_PARAMS[preset]
        return options
    if encoder == "libvpx-vp9":
        deadline, cpu_used = _VPX_SPEED[preset]
        crf = str(round(63 - quality * 0.63))
        return {"crf": crf, "b": "0", "deadline": deadline, "cpu-used": cpu_used, "row-mt": "1"}
    return {}


def _bit_rate(width: int, height: int, fps: Fraction, quality: int) -> int:
    """A bit rate for encoders without a constant-quality mode: 0.02-0.3 bits per pixel."""
    bits_per_pixel = 0.02 + 0.28 * min(100, max(0, quality)) / 100
    return int(width * height * float(fps) * bits_per_pixel)


class VideoWriter:
    """Writes processed frames (and the source's audio) into ``path``."""

    def __init__(
        self,
        path: Path,
        *,
        container_format: str,
        encoder: str,
        fps: Fraction,
        quality: int,
        preset: str,
        audio_source: Path | None,
        video_start: float,
    ) -> None:
        self._path = path
        self._format = container_format
        self._encoder = encoder
        self._fps = fps
        self._quality = quality
        self._audio_source = audio_source
        self._video_start = video_start
        self._options = encoder_options(encoder, quality, preset)
        self._container: av.container.OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._soundtrack: Soundtrack | None = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    @property
    def has_audio(self) -> bool:
        return self._soundtrack is not None

    def consume(self, frames: Channel[VisionFrame]) -> int:
        """Encode frames until the channel ends; returns how many were written."""
        try:
            while not isinstance(frame := frames.get(), End):
                self.write(frame)
            self.finish()
        finally:
            self.abort()
        return self.frames

    def write(self, frame: VisionFrame) -> None:
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3:
            raise ValueError(f"processed frame {self.frames} is not an HxWx3 uint8 image")
        if frame.shape[2] != 3 or frame.size == 0:
            raise ValueError(f"processed frame {self.frames} is not an HxWx3 uint8 image")
        if self._container is None:
            self._open(frame)
        if self._stream is None or self._container is None or self._size is None:
            raise RuntimeError("the writer was not opened")
        width, height = self._size
        if (frame.shape[1], frame.shape[0]) != (width, height):
            raise ValueError(
                f"processed frame {self.frames} is {frame.shape[1]}x{frame.shape[0]}, "
                f"but the first was {width}x{height}"
            )
        video_frame = yuv420p_frame(_even(frame))
        video_frame.pts = self.frames
        video_frame.time_base = 1 / self._fps
        with _writing_video(f"could not encode {width}x{height} frames with {self._encoder}"):
            self._container.mux(self._stream.encode(video_frame))
        self.frames += 1
        if self._soundtrack is not None:
            with _reading_audio(self._audio_source):
                self._soundtrack.write_until(self._container, float(self.frames / self._fps))

    def finish(self) -> None:
        if self._container is None or self._stream is None:
            return
        with _writing_video("could not flush the video encoder"):
            self._container.mux(self._stream.encode(None))
        if self._soundtrack is not None:
            with _reading_audio(self._audio_source):
                self._soundtrack.finish(self._container, float(self.frames / self._fps))
        with _writing_video("could not finish the output video"):
            self._container.close()
        self._container = None

    def abort(self) -> None:
        """Release everything; a no-op after :meth:`finish`."""
        if self._soundtrack is not None:
            self._soundtrack.close()
        if self._container is not None:
            with contextlib.suppress(av.error.FFmpegError):
                self._container.close()
            self._container = None

    def _open(self, frame: VisionFrame) -> None:
        self._size = (frame.shape[1], frame.shape[0])
        width, height = frame.shape[1] + frame.shape[1] % 2, frame.shape[0] + frame.shape[0] % 2
        with _writing_video("could not create the output video"):
            container = av.open(str(self._path), mode="w", format=self._format)
        self._container = container
        stream = container.add_stream(self._encoder, rate=self._fps, options=self._options)
        if not isinstance(stream, VideoStream):
            raise InputError(f"{self._encoder!r} is not a video encoder")
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = 1 / self._fps
        _tag_bt601(stream)
        if not self._options:
            stream.bit_rate = _bit_rate(width, height, self._fps, self._quality)
        if self._encoder == "libx265" and self._format in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # the tag Apple players require for HEVC
        self._stream = stream
        if self._audio_source is not None:
            with _reading_audio(self._audio_source):
                self._soundtrack = Soundtrack(self._audio_source, self._format, self._video_start)
                self._soundtrack.add_to(container)


# FFmpeg's AVColorSpace / AVColorPrimaries / AVColorTransferCharacteristic / AVColorRange.
SMPTE170M = 6  # BT.601 (525 lines); the 625-line primaries differ only slightly
LIMITED_RANGE = 1


def _tag_bt601(stream: VideoStream) -> None:
    """Say in the stream what its pixels are (``yuv420p_frame``: BT.601, limited range).

    Untagged, players guess by size and take HD as BT.709, which shifts colours a little.
    """
    context = stream.codec_context
    context.colorspace = SMPTE170M
    context.color_primaries = SMPTE170M
    context.color_trc = SMPTE170M
    context.color_range = LIMITED_RANGE


def yuv420p_frame(frame: VisionFrame) -> av.VideoFrame:
    """An even-sized BGR frame as the yuv420p frame every encoder here is opened with.

    OpenCV's BGR→I420 (BT.601, limited range: what swscale assumes for these untagged
    frames) instead of handing PyAV a bgr24 frame for the encoder to convert: at 720p it
    costs ≈ 1.1 CPU ms per frame against ≈ 2.5 ms for swscale's bgr24 path (≈ 2.4 vs 6.2 ms
    at 1080p), and it rounds where swscale's fast path truncates, so luma is within half a
    level of the exact BT.601 value (swscale's is up to one level low).
    """
    height, width = frame.shape[:2]
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs an even size, not {width}x{height}")
    i420 = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    return av.VideoFrame.from_ndarray(np.asarray(i420, dtype=np.uint8), format="yuv420p")


def _even(frame: VisionFrame) -> VisionFrame:
    """Pad an odd width or height by one replicated pixel: yuv420p needs even sizes."""
    height, width = frame.shape[:2]
    if width % 2 == 0 and height % 2 == 0:
        return np.ascontiguousarray(frame)
    padded = cv2.copyMakeBorder(frame, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
    return np.asarray(padded, dtype=np.uint8)


@contextlib.contextmanager
def _writing_video(doing: str) -> Iterator[None]:
    try:
        yield
    except av.error.FFmpegError as error:
        raise PipelineError(f"{doing}: {error}") from error


@contextlib.contextmanager
def _reading_audio(source: Path | None) -> Iterator[None]:
    try:
        yield
    except av.error.FFmpegError as error:
        name = source.name if source else "the source"
        raise CorruptMediaError(f"the audio of {name} could not be read: {error}") from error
