"""Reading mp4 files: the ``info`` description of a video feature and sequential decoding of a time range.

Frames are matched to query times the way LeRobot does: a frame answers a query when
``|frame_pts - query| < tolerance_s`` (strict); a query without such a frame raises FrameTimestampError.
"""

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import numpy as np

from positronic.vendors.lerobot.lerobot_dataset.errors import MP4_FILE, FrameTimestampError, reading
from positronic.vendors.lerobot.lerobot_dataset.format import DEFAULT_TOLERANCE_S
from positronic.vendors.lerobot.lerobot_dataset.video_encode import RGB24

SINGLE_CHANNEL_FORMATS = ('gray', 'depth')
FOUR_CHANNEL_FORMATS = ('rgba', 'bgra', 'argb', 'abgr', 'yuva')


def _channels(pix_fmt: str) -> int:
    if pix_fmt.startswith(SINGLE_CHANNEL_FORMATS):
        return 1
    if pix_fmt.startswith(FOUR_CHANNEL_FORMATS):
        return 4
    return 3


def probe_video_info(source: bytes | Path) -> dict[str, Any]:
    """The ``info`` sub-object of a video feature in info.json, read from an mp4 (bytes or path)."""
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), 'r') as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        pix_fmt = ctx.format.name if ctx.format is not None else ctx.pix_fmt
        info: dict[str, Any] = {
            'video.height': ctx.height,
            'video.width': ctx.width,
            'video.codec': stream.codec.canonical_name,
            'video.pix_fmt': pix_fmt,
            'video.is_depth_map': False,
            'video.fps': int(stream.base_rate),
            'video.channels': _channels(pix_fmt),
            'has_audio': False,
        }
        if container.streams.audio:
            audio = container.streams.audio[0]
            info.update(
                {
                    'audio.channels': audio.channels,
                    'audio.codec': audio.codec.canonical_name,
                    'audio.bit_rate': audio.bit_rate,
                    'audio.sample_rate': audio.sample_rate,
                    'audio.bit_depth': audio.format.bits,
                    'audio.channel_layout': audio.layout.name,
                    'has_audio': True,
                }
            )
        return info


def decode_frames(
    path: Path,
    query_s: np.ndarray,
    *,
    episode_index: int | None = None,
    size: tuple[int, int] | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> Iterator[np.ndarray]:
    """Yield, for each increasing query time (seconds in the file), the uint8 RGB frame shown at that time.

    Decoding is sequential from the key frame before the first query. Frames are (H, W, 3), or
    ``(size[0], size[1], 3)`` = (height, width, 3) when ``size`` is given (bilinear resize). Raises
    FrameTimestampError naming the file, episode and time of the first query with no frame within tolerance.
    """
    if len(query_s) == 0:
        return
    where = f'{path}' + (f' (episode {episode_index})' if episode_index is not None else '')
    with reading(path, MP4_FILE), av.open(str(path), 'r') as container:
        stream = container.streams.video[0]
        time_base = float(stream.time_base)
        first = float(query_s[0])
        if first > tolerance_s:
            container.seek(max(0, int((first - tolerance_s) / time_base)), stream=stream, backward=True)
        q = 0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = frame.pts * time_base
            if query_s[q] <= t - tolerance_s:
                raise FrameTimestampError(
                    f'{where}: no frame within {tolerance_s} s of t={query_s[q]:.6f} s (next frame at {t:.6f} s)'
                )
            if abs(t - query_s[q]) < tolerance_s:
                if size is None:
                    yield frame.to_ndarray(format=RGB24)
                else:
                    yield frame.to_ndarray(format=RGB24, height=size[0], width=size[1], interpolation='BILINEAR')
                q += 1
                if q == len(query_s):
                    return
        raise FrameTimestampError(
            f'{where}: no frame within {tolerance_s} s of t={query_s[q]:.6f} s (the video ends before it)'
        )
