"""The source's audio carried into a transcoded video: copied when possible, re-encoded when cut.

Packets are copied untouched when the output container takes the codec and nothing is
trimmed; otherwise the audio is decoded, cut to the video's window with sample precision and
encoded to AAC (Opus for WebM). Either way it is read from its own demuxer and written in
step with the video, so the muxer never holds more than a moment of audio in memory, and it
ends where the video ends (FFmpeg's ``-shortest``).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.error
import av.stream
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.packet import Packet

from pipeline.errors import PipelineError

# Codecs each container family takes as copied packets without extra muxer flags.
_COPYABLE = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
    "matroska": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac", "vorbis", "pcm_s16le"},
    "webm": {"opus", "vorbis"},
}
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000}


class Soundtrack:
    """The first audio stream of ``source`` written into an output alongside the video.

    ``video_start`` is the source time (seconds from the video's first frame) that the
    output's first frame shows; audio before it is dropped and the rest shifted to match.
    """

    def __init__(self, source: Path, container_format: str, video_start: float) -> None:
        self._input = av.open(str(source), mode="r")
        self._stream: AudioStream = self._input.streams.audio[0]
        video = self._input.streams.video[0]
        origin = 0.0
        if video.start_time is not None and video.time_base is not None:
            origin = float(video.start_time * video.time_base)
        self._offset = origin + video_start  # the source second that becomes output zero
        copyable = _COPYABLE.get(container_format, set())
        codec = self._stream.codec_context.codec.canonical_name  # "mp3", not "mp3float"
        self._copy = video_start == 0.0 and codec in copyable
        self._encoder_name = "libopus" if container_format == "webm" else "aac"
        self._packets = self._input.demux(self._stream)
        self._copy_stream: av.stream.Stream | None = None
        self._encoder: AudioStream | None = None
        self._resampler: AudioResampler | None = None
        self._rate = 0
        self._written_until = 0.0  # output seconds covered by what was written so far
        self._position: int | None = None  # output sample index of the next encoded sample
        self._done = False

    def add_to(self, output: av.container.OutputContainer) -> None:
        """Declare the audio stream; call before the first packet is muxed."""
        if self._copy:
            self._copy_stream = output.add_stream_from_template(self._stream)
            return
        source = self._stream.codec_context
        channels = source.layout.nb_channels
        # Named layouts only ("2 channels" is refused by the encoders); more than two
        # channels are mixed down to stereo when the sound has to be re-encoded.
        layout = "mono" if channels == 1 else "stereo"
        if self._encoder_name == "libopus":
            self._rate = 48000  # the only rate Opus takes that every source resamples to
        else:
            self._rate = source.sample_rate if source.sample_rate in _AAC_RATES else 48000
        stream = output.add_stream(self._encoder_name, rate=self._rate)
        if not isinstance(stream, AudioStream):
            raise PipelineError(f"{self._encoder_name} did not create an audio stream")
        stream.codec_context.layout = layout
        stream.codec_context.bit_rate = 96_000 * min(channels, 2)
        self._resampler = AudioResampler(format="fltp", layout=layout, rate=self._rate)
        self._encoder = stream

    def write_until(self, output: av.container.OutputContainer, seconds: float) -> None:
        """Write the audio that plays before output time ``seconds``."""
        self._pump(output, seconds, end=None)

    def finish(self, output: av.container.OutputContainer, video_seconds: float) -> None:
        """Write the rest, up to the end of the video; flush the encoder; close the input."""
        try:
            self._pump(output, video_seconds, end=video_seconds)
            if self._encoder is not None:
                output.mux(self._encoder.encode(None))
        finally:
            self.close()

    def close(self) -> None:
        self._input.close()

    def _pump(self, output: av.container.OutputContainer, until: float, end: float | None) -> None:
        while not self._done and self._written_until < until:
            packet = next(self._packets, None)
            if packet is None:
                self._done = True
                if self._resampler is not None:
                    tail = [r for f in self._decode(None) for r in self._resample(f)]
                    self._encode(output, tail + self._resampler.resample(None), end)
                return
            # Some muxers (AVI, MPEG-PS) stamp audio with a decode time only.
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.time_base is None or packet.size == 0:
                continue
            start = float(stamp * packet.time_base) - self._offset
            if self._copy:
                self._copy_packet(output, packet, start, end)
            else:
                frames = [r for f in self._decode(packet) for r in self._resample(f)]
                self._encode(output, frames, end)

    def _decode(self, packet: Packet[AudioStream] | None) -> list[AudioFrame]:
        try:
            return self._stream.codec_context.decode(packet)
        except av.error.InvalidDataError:
            # FFmpeg skips an undecodable audio packet (an AVI often starts mid-frame) and so
            # do we; the video decides whether the file as a whole is usable.
            return []

    def _copy_packet(
        self,
        output: av.container.OutputContainer,
        packet: Packet[AudioStream],
        start: float,
        end: float | None,
    ) -> None:
        time_base = packet.time_base
        stamp = packet.pts if packet.pts is not None else packet.dts
        if time_base is None or stamp is None:
            return
        duration = float(packet.duration * time_base) if packet.duration else 0.0
        self._written_until = start + duration
        if end is not None and start >= end:
            self._done = True
            return
        if start + duration <= 0:
            return  # plays before the output's first frame
        shift = round(self._offset / time_base)
        packet.pts = stamp - shift
        if packet.dts is not None:
            packet.dts -= shift
        if self._copy_stream is not None:
            packet.stream = self._copy_stream  # type: ignore[assignment] # retargets the copy
            output.mux(packet)

    def _resample(self, frame: AudioFrame) -> list[AudioFrame]:
        if self._resampler is None:
            return []
        if self._position is None and frame.pts is not None and frame.time_base is not None:
            # Place the first sample on the output clock; later samples follow contiguously,
            # so timestamp jitter in the source never opens gaps or overlaps.
            source_seconds = float(frame.pts * frame.time_base)
            self._position = round((source_seconds - self._offset) * self._rate)
        return self._resampler.resample(frame)

    def _encode(
        self, output: av.container.OutputContainer, frames: list[AudioFrame], end: float | None
    ) -> None:
        if self._encoder is None:
            return
        last = None if end is None else round(end * self._rate)
        for frame in frames:
            first = self._position or 0
            samples = frame.to_ndarray()
            self._position = first + samples.shape[1]
            self._written_until = self._position / self._rate
            if last is not None and first >= last:
                self._done = True
                return
            keep_from = max(0, -first)  # samples before the window's start are dropped
            keep_to = samples.shape[1] if last is None else min(samples.shape[1], last - first)
            if keep_to <= keep_from:
                continue
            cut = AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[:, keep_from:keep_to], dtype=np.float32),
                format="fltp",
                layout=frame.layout.name,
            )
            cut.sample_rate = self._rate
            cut.pts = first + keep_from
            cut.time_base = Fraction(1, self._rate)
            output.mux(self._encoder.encode(cut))
