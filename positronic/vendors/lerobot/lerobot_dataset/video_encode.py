"""Encoding one episode of one camera into an mp4 held in memory.

The encoded episode is later appended to the camera's current file by stream copy (``video_concat``), so every
episode starts with a key frame and its frame ``k`` has presentation time ``k / fps``.
"""

import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

from positronic.vendors.lerobot.lerobot_dataset.errors import InvalidVideoEncodingError

MP4 = 'mp4'
RGB24 = 'rgb24'
SVT_LOG_ENV = 'SVT_LOG'
SVT_LOG_ERRORS_ONLY = '1'
"""SVT-AV1 prints ~20 info lines per encoder (one per camera per episode) unless SVT_LOG says otherwise."""
CRF_RANGES = {'libx264': (0, 51), 'libx265': (0, 51), 'libsvtav1': (0, 63), 'libaom-av1': (0, 63)}
"""Constant rate factors each encoder accepts (inclusive; 8-bit). FFmpeg clamps or ignores a value outside them
without an error, so a typo such as ``--video.crf=999`` would silently encode at the worst quality."""


@dataclass(frozen=True)
class VideoEncoding:
    """FFmpeg encoder settings for the dataset's mp4 files.

    ``encoder`` is an FFmpeg encoder name (``libx264``, ``libsvtav1``, ...); ``crf`` the constant rate factor
    (lower = better quality, larger files); ``gop`` the key-frame interval in frames (2, as LeRobot, keeps random
    access cheap for training-time seeks); ``preset`` the encoder speed preset; ``options`` extra encoder options.
    """

    encoder: str = 'libx264'
    crf: int = 23
    gop: int = 2
    preset: str | None = 'veryfast'
    pix_fmt: str = 'yuv420p'
    options: Mapping[str, str] = field(default_factory=lambda: {'bframes': '0'})

    def __post_init__(self) -> None:
        low, high = CRF_RANGES.get(self.encoder, (-(2**31), 2**31 - 1))
        if isinstance(self.crf, bool) or not isinstance(self.crf, int) or not low <= self.crf <= high:
            raise InvalidVideoEncodingError(
                f'--video.crf={self.crf!r} is out of range: {self.encoder} takes an integer CRF in [{low}, {high}]'
            )
        if isinstance(self.gop, bool) or not isinstance(self.gop, int) or self.gop < 1:
            raise InvalidVideoEncodingError(f'--video.gop={self.gop!r}: expected an integer key-frame interval >= 1')

    @property
    def codec_name(self) -> str:
        """Canonical codec name as info.json's ``video.codec`` stores it (``h264``, ``av1``, ``hevc``)."""
        return av.Codec(self.encoder, 'w').canonical_name

    def codec_options(self) -> dict[str, str]:
        """Options passed to the FFmpeg encoder."""
        opts = {'g': str(self.gop), 'crf': str(self.crf)}
        if self.preset is not None:
            opts['preset'] = str(self.preset)
        opts.update({k: str(v) for k, v in self.options.items()})
        return opts

    def to_json(self) -> dict[str, Any]:
        return {
            'encoder': self.encoder,
            'crf': self.crf,
            'gop': self.gop,
            'preset': self.preset,
            'pix_fmt': self.pix_fmt,
            'options': dict(self.options),
        }

    @classmethod
    def from_json(cls, content: Mapping[str, Any]) -> 'VideoEncoding':
        return cls(
            encoder=content['encoder'],
            crf=int(content['crf']),
            gop=int(content['gop']),
            preset=content.get('preset'),
            pix_fmt=content.get('pix_fmt', 'yuv420p'),
            options=dict(content.get('options', {})),
        )


H264 = VideoEncoding()
"""Default: H.264 (libx264, preset veryfast, CRF 23, GOP 2, no B-frames, yuv420p): faster to write than LeRobot's
AV1 default, at a somewhat larger file; LeRobot 0.4.4 (torchcodec) decodes both. Measurements: docs/codecs.md."""
AV1_LEROBOT = VideoEncoding(encoder='libsvtav1', crf=30, gop=2, preset='12', options={})
"""LeRobot 0.4.4's recording default: AV1 (libsvtav1, preset 12, CRF 30, GOP 2, yuv420p)."""
ENCODINGS_BY_CODEC = {'h264': H264, 'av1': AV1_LEROBOT}
"""Encoder settings assumed for an existing dataset that does not record its own (by info.json ``video.codec``)."""


@dataclass(frozen=True)
class EncodedVideo:
    """One episode of one camera: a complete mp4 file in memory with ``num_frames`` frames at ``k / fps``."""

    data: bytes
    num_frames: int


def encode_episode(
    frames: Iterable[np.ndarray], *, fps: int, height: int, width: int, encoding: VideoEncoding
) -> EncodedVideo:
    """Encode uint8 RGB frames of shape (height, width, 3) into an mp4 (in memory) at ``fps`` frames per second.

    ``frames`` is consumed once; an exception raised by it propagates and nothing is kept.
    """
    if encoding.encoder == 'libsvtav1':
        os.environ.setdefault(SVT_LOG_ENV, SVT_LOG_ERRORS_ONLY)
    buffer = io.BytesIO()
    count = 0
    with av.open(buffer, 'w', format=MP4) as container:
        stream = container.add_stream(encoding.encoder, rate=fps, options=encoding.codec_options())
        stream.width, stream.height, stream.pix_fmt = width, height, encoding.pix_fmt
        for frame in frames:
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=RGB24)
            picture.pts = count
            container.mux(stream.encode(picture))
            count += 1
        container.mux(stream.encode(None))
    return EncodedVideo(buffer.getvalue(), count)
