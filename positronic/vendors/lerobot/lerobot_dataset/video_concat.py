"""One camera's mp4 file assembled from encoded episodes by stream copy (no re-encoding).

Episode ``e`` placed after ``F`` frames of the file starts at ``from_timestamp = F / fps``; its frame ``k`` has
presentation time ``from_timestamp + k / fps``, so timestamps are continuous across the episodes of a file.
"""

import io
from fractions import Fraction
from pathlib import Path

import av

from positronic.vendors.lerobot.lerobot_dataset.episodes import VideoSpan
from positronic.vendors.lerobot.lerobot_dataset.format import MB, FileIndex, video_path
from positronic.vendors.lerobot.lerobot_dataset.video_encode import MP4, EncodedVideo

FASTSTART = {'movflags': 'faststart'}


class VideoFileAppender:
    """An mp4 file being written; ``append`` adds one episode, ``close`` finishes the file (required)."""

    def __init__(self, path: Path, fps: int):
        self.path = path
        self.fps = fps
        self.num_frames = 0
        self.size_bytes = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None

    @property
    def size_mb(self) -> float:
        """Bytes of encoded frames appended so far, in MiB (the container overhead is negligible)."""
        return self.size_bytes / MB

    def append(self, video: EncodedVideo) -> tuple[float, float]:
        """Copy an episode's packets to the end of the file; returns its (from_timestamp, to_timestamp) in seconds."""
        from_frame = self.num_frames
        with av.open(io.BytesIO(video.data), 'r', format=MP4) as source:
            src = source.streams.video[0]
            if self._container is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._container = av.open(str(self.path), 'w', format=MP4, options=FASTSTART)
                self._stream = self._container.add_stream_from_template(src, opaque=True)
            offset = Fraction(from_frame, self.fps) / src.time_base
            if offset.denominator != 1:
                raise ValueError(f'{self.path}: frame offset {from_frame} at {self.fps} fps is not a whole tick')
            ticks = int(offset)
            for packet in source.demux(src):
                if packet.size == 0:
                    continue
                packet.pts += ticks
                packet.dts += ticks
                packet.stream = self._stream
                self.size_bytes += packet.size
                self._container.mux(packet)
        self.num_frames += video.num_frames
        return from_frame / self.fps, self.num_frames / self.fps

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


class CameraFiles:
    """The mp4 files of one camera: appends each episode to the open file, or starts the next file (from
    ``first_file`` on, rolling over chunks after ``chunks_size`` files) when the file would reach ``size_limit_mb``."""

    def __init__(
        self, root: Path, video_key: str, fps: int, first_file: FileIndex, chunks_size: int, size_limit_mb: float
    ):
        self._root = root
        self._key = video_key
        self._fps = fps
        self._file = first_file
        self._chunks_size = chunks_size
        self._limit_mb = size_limit_mb
        self._open: VideoFileAppender | None = None
        self.written_paths: list[str] = []

    @property
    def is_empty(self) -> bool:
        """True until the first episode is placed."""
        return not self.written_paths

    def place(self, video: EncodedVideo) -> VideoSpan:
        """Append an episode; returns its file and time range in that file."""
        if self._open is not None and self._open.size_mb + len(video.data) / MB >= self._limit_mb:
            self._open.close()
            self._open = None
            self._file = self._file.next(self._chunks_size)
        if self._open is None:
            relative = video_path(self._key, self._file)
            self._open = VideoFileAppender(self._root / relative, self._fps)
            self.written_paths.append(relative)
        from_s, to_s = self._open.append(video)
        return VideoSpan(self._file, from_s, to_s)

    def close(self) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None
