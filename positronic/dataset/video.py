"""Image signals: H.264 video in ``<name>.mp4`` plus the frame index ``<name>.frames.parquet``.

- ``<name>.mp4``: one H.264 stream (libx264, yuv420p), nominal stream rate :data:`NOMINAL_RATE` (not the
  capture rate), keyframe every :data:`GOP_SIZE` frames, frame ``pts`` = frame index in units of
  ``1/NOMINAL_RATE`` s. Frames are RGB uint8 (H, W, 3) with even H and W, all of the first frame's size.
- ``<name>.frames.parquet``: column ``ts_ns`` int64, one row per frame (row i = frame i), written at close.

Reading decodes a frame only when it is accessed. The decoder stays open between accesses and decodes
forward when the requested frame lies ahead of its position, either within :data:`FORWARD_LIMIT` frames or
with no keyframe in between; otherwise (backwards, or far ahead past a keyframe) it seeks to the keyframe at
or before the requested frame. So iterating, slicing or sampling on an ascending time grid decodes the
frames in order and never seeks (unless the grid skips more than a GOP at a time, where one seek per jump
beats decoding the skipped frames).
"""

import contextlib
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from positronic.dataset.errors import CorruptSignalError, SignalValueError
from positronic.dataset.signal import LazySequence, Signal, SignalWriter
from positronic.dataset.timeline import primary_time_column

VIDEO_SUFFIX = '.mp4'
"""File name suffix of an image signal's video: ``<name>.mp4``."""
FRAMES_SUFFIX = '.frames.parquet'
"""File name suffix of an image signal's frame index: ``<name>.frames.parquet``."""
FRAME_TS_COLUMN = 'ts_ns'
"""Column of the frame index with each frame's timestamp, int64 ns."""
CODEC = 'h264'
PIXEL_FORMAT = 'yuv420p'
NOMINAL_RATE = 100
"""Stream rate written into the mp4 (frames per second); frame i is presented at i / NOMINAL_RATE s."""
GOP_SIZE = 30
FORWARD_LIMIT = GOP_SIZE
"""A frame at most this far ahead of the decoder is reached by decoding forward, never by seeking."""
"""Frames between keyframes."""
ENCODER_OPTIONS = {'preset': 'veryfast'}
"""libx264 options: 'veryfast' encodes 480x480 at well over 100 frames/s on one core at similar quality."""
DECODER_THREADS = 'AUTO'
"""FFmpeg decoder threading (frame and slice threads)."""


def is_image(value: Any) -> bool:
    """Whether ``value`` is stored as video: an ndarray of dtype uint8 and shape (H, W, 3)."""
    return isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim == 3 and value.shape[2] == 3


def frames_path(video_path: Path) -> Path:
    """The frame index file beside ``<name>.mp4``: ``<name>.frames.parquet``."""
    return video_path.with_name(video_path.name[: -len(VIDEO_SUFFIX)] + FRAMES_SUFFIX)


class VideoWriter(SignalWriter):
    """Encodes one image signal into ``<name>.mp4`` as frames arrive; writes the frame index at close."""

    def __init__(self, video_path: Path, name: str):
        super().__init__(name)
        self.video_path = video_path
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._shape: tuple[int, ...] = ()
        self._timestamps: list[int] = []

    def append(self, value: Any, ts_ns: int) -> None:
        """Encode one RGB frame, uint8 (H, W, 3), taken at ``ts_ns`` (int ns)."""
        ts = self._checked_ts(ts_ns)
        if self._container is None:
            self._open(value)
        elif not is_image(value) or value.shape != self._shape:
            raise SignalValueError(
                f'signal {self.name!r}: expected a uint8 {self._shape} frame like the first one, got {_describe(value)}'
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(value), format='rgb24')
        frame.pts = len(self._timestamps)
        frame.time_base = Fraction(1, NOMINAL_RATE)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._timestamps.append(ts)
        self._last_ts = ts

    def _open(self, first: np.ndarray) -> None:
        height, width = first.shape[:2]
        if not is_image(first) or height % 2 or width % 2 or height == 0 or width == 0:
            raise SignalValueError(
                f'signal {self.name!r}: H.264 {PIXEL_FORMAT} frames must be uint8 (H, W, 3) with even, non-zero '
                f'H and W; got {_describe(first)}'
            )
        self._container = av.open(str(self.video_path), mode='w')
        self._stream = self._container.add_stream(CODEC, rate=NOMINAL_RATE, options=dict(ENCODER_OPTIONS))
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = PIXEL_FORMAT
        self._stream.codec_context.gop_size = GOP_SIZE
        self._shape = first.shape

    def close(self) -> None:
        if self._container is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
        table = pa.table({FRAME_TS_COLUMN: pa.array(self._timestamps, type=pa.int64())})
        pq.write_table(table, frames_path(self.video_path))

    def abort(self) -> None:
        if self._container is not None:
            with contextlib.suppress(av.FFmpegError):
                self._container.close()
            self._container = None
        self.video_path.unlink(missing_ok=True)
        frames_path(self.video_path).unlink(missing_ok=True)


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f'ndarray {value.dtype} {value.shape}'
    return type(value).__name__


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn an FFmpeg failure to open, seek or decode ``path`` into CorruptSignalError naming the file."""
    try:
        yield
    except av.FFmpegError as e:
        raise CorruptSignalError(f'{path}: cannot decode the video ({e.strerror or e}); expected an mp4 video') from e


class FrameDecoder:
    """Decodes frames of one video by index, keeping the decoder open between calls.

    On first use it reads the packet headers (no decoding) to learn each frame's pts and the keyframes.
    Returned frames are read-only RGB uint8 (H, W, 3) arrays; asking for the same index twice in a row
    returns the same array.
    """

    def __init__(self, path: Path):
        self.path = path
        self._container: av.container.InputContainer | None = None
        self._frames = None
        self._position = -1
        self._last_index = -1
        self._last_frame: np.ndarray | None = None
        self._pts: np.ndarray | None = None
        self._index_of_pts: dict[int, int] = {}
        self._keyframes: np.ndarray | None = None
        self._size: tuple[int, int] = (0, 0)
        self.seek_count = 0
        """Seeks performed so far (sequential access performs none)."""

    def _build_index(self) -> None:
        with _decoding(self.path), av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            self._size = (stream.codec_context.height, stream.codec_context.width)
            packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None]
        packets.sort()
        self._pts = np.array([pts for pts, _ in packets], dtype=np.int64)
        self._index_of_pts = {int(pts): i for i, pts in enumerate(self._pts)}
        self._keyframes = np.flatnonzero([key for _, key in packets])
        if len(self._keyframes) == 0 or self._keyframes[0] != 0:
            self._keyframes = np.concatenate(([0], self._keyframes))

    @property
    def frame_count(self) -> int:
        """Number of frames in the video."""
        if self._pts is None:
            self._build_index()
        return len(self._pts)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of the frames, from the stream header (no packet is read)."""
        if self._size == (0, 0):
            with _decoding(self.path), av.open(str(self.path)) as container:
                context = container.streams.video[0].codec_context
                self._size = (context.height, context.width)
        return (*self._size, 3)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the open file and decoder state (e.g. to hand a signal to a worker process)."""
        state = self.__dict__.copy()
        state.update(_container=None, _frames=None, _position=-1, _last_index=-1, _last_frame=None)
        return state

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (0-based, in presentation order) as read-only RGB uint8 (H, W, 3)."""
        if index == self._last_index:
            return self._last_frame
        if not 0 <= index < self.frame_count:
            raise IndexError(f'{self.path}: frame {index} out of range for {self.frame_count} frames')
        keyframe = int(self._keyframes[np.searchsorted(self._keyframes, index, side='right') - 1])
        ahead = index - self._position
        if self._frames is None or not (ahead > 0 and (ahead <= FORWARD_LIMIT or keyframe <= self._position + 1)):
            self._seek(keyframe)
        while True:
            try:
                with _decoding(self.path):
                    decoded = next(self._frames)
            except StopIteration:
                self._frames = None
                raise CorruptSignalError(f'{self.path}: the video ended before frame {index}') from None
            position = self._index_of_pts.get(decoded.pts)
            if position is None:
                raise CorruptSignalError(f'{self.path}: decoded a frame with unknown pts {decoded.pts}')
            self._position = position
            if position == index:
                break
            if position > index:
                raise CorruptSignalError(f'{self.path}: frame {index} was not produced by the decoder')
        image = decoded.to_ndarray(format='rgb24')
        image.flags.writeable = False
        self._last_index, self._last_frame = index, image
        return image

    def _seek(self, keyframe: int) -> None:
        """Restart decoding at ``keyframe``: a freshly opened file starting at frame 0 needs no seek."""
        fresh = self._container is None
        with _decoding(self.path):
            if fresh:
                self._container = av.open(str(self.path))
                self._container.streams.video[0].thread_type = DECODER_THREADS
            stream = self._container.streams.video[0]
            if keyframe > 0 or not fresh:
                self.seek_count += 1
                self._container.seek(int(self._pts[keyframe]), stream=stream, backward=True, any_frame=False)
        self._frames = self._container.decode(stream)
        self._position = keyframe - 1

    def close(self) -> None:
        """Close the file; a later access reopens it."""
        if self._container is not None:
            self._container.close()
        self._container = None
        self._frames = None
        self._position = -1


class VideoSignal(Signal):
    """An image signal read lazily: the frame index on first access to timestamps, a frame when accessed.

    Values are RGB uint8 (H, W, 3) frames; ``values`` and multi-record access give lazy sequences.
    """

    def __init__(self, video_path: Path, name: str):
        self.video_path = video_path
        self.name = name
        self._decoder = FrameDecoder(video_path)
        self._timestamps: np.ndarray | None = None
        self._frame_count_checked = False

    @property
    def timestamps(self) -> np.ndarray:
        if self._timestamps is None:
            path = frames_path(self.video_path)
            try:
                parquet = pq.ParquetFile(path)
            except (OSError, pa.ArrowInvalid) as e:
                raise CorruptSignalError(f'signal {self.name!r}: cannot read frame index {path}: {e}') from e
            column = primary_time_column(parquet.schema_arrow.names, FRAME_TS_COLUMN, path)
            timestamps = parquet.read(columns=[column]).column(column)
            if timestamps.type != pa.int64() or timestamps.null_count:
                raise CorruptSignalError(f'{path}: frame timestamps must be int64 without nulls, got {timestamps.type}')
            self._timestamps = timestamps.to_numpy()
            self._timestamps.flags.writeable = False
        return self._timestamps

    def _frame(self, index: int) -> np.ndarray:
        if not self._frame_count_checked:
            if self._decoder.frame_count != len(self.timestamps):
                raise CorruptSignalError(
                    f'signal {self.name!r}: {self.video_path} has {self._decoder.frame_count} frames but its '
                    f'frame index lists {len(self.timestamps)}'
                )
            self._frame_count_checked = True
        return self._decoder.frame(index)

    def _value_at(self, index: int) -> np.ndarray:
        return self._frame(index)

    def _values_at(self, indices: np.ndarray) -> LazySequence:
        return LazySequence(len(indices), lambda i: self._frame(int(indices[i])))

    @property
    def dtype(self) -> np.dtype | None:
        return np.dtype(np.uint8) if len(self) else None

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._decoder.frame_shape if len(self) else None

    @property
    def seek_count(self) -> int:
        """Seeks the decoder has performed so far; sequential access (ascending frames) performs none."""
        return self._decoder.seek_count

    def close(self) -> None:
        """Release the open video file (reopened on the next access)."""
        self._decoder.close()
