"""Encoding the cameras of one episode in parallel, one worker thread per camera.

Each worker pulls its camera's frames, validates them, samples them for image stats and feeds the encoder. FFmpeg
releases the GIL while it converts and encodes, so cameras use separate cores. When one camera fails (bad frame, or
an exception from its frame source) the others stop at their next frame and the first real error is raised.
"""

import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from positronic.vendors.lerobot.lerobot_dataset.episode_input import checked_frames
from positronic.vendors.lerobot.lerobot_dataset.features import Feature
from positronic.vendors.lerobot.lerobot_dataset.stats import ImageStatsAccumulator, Stats
from positronic.vendors.lerobot.lerobot_dataset.video_encode import EncodedVideo, VideoEncoding, encode_episode


class _Cancelled(Exception):
    """Stops a camera's frame loop because another camera of the same episode failed."""


@dataclass(frozen=True)
class EncodedCamera:
    """One camera of one episode: its mp4 (in memory) and its image stats."""

    video: EncodedVideo
    stats: Stats


class PendingCameras:
    """Cameras of one episode being encoded; ``wait`` returns them or raises the first failure."""

    def __init__(self, jobs: Mapping[str, Future], cancel: threading.Event):
        self._jobs = jobs
        self._cancel = cancel

    def wait(self) -> dict[str, EncodedCamera]:
        results: dict[str, EncodedCamera] = {}
        errors: list[BaseException] = []
        for key, job in self._jobs.items():
            try:
                results[key] = job.result()
            except BaseException as e:  # re-raised below, once every camera has stopped
                self._cancel.set()
                errors.append(e)
        real = [e for e in errors if not isinstance(e, _Cancelled)]
        if real or errors:
            raise (real or errors)[0]
        return results


class CameraEncoder:
    """A pool of worker threads (one per camera) encoding episodes at ``fps`` with ``encoding``."""

    def __init__(self, num_cameras: int, fps: int, encoding: VideoEncoding):
        self._fps = fps
        self._encoding = encoding
        self._pool = ThreadPoolExecutor(max_workers=max(1, num_cameras), thread_name_prefix='lerobot-camera')

    def start(
        self, features: Mapping[str, Feature], frames: Mapping[str, Iterable[np.ndarray]], length: int
    ) -> PendingCameras:
        """Begin encoding ``length`` frames of each camera in ``features``; the caller may work meanwhile."""
        cancel = threading.Event()
        jobs = {key: self._pool.submit(self._encode, f, frames[key], length, cancel) for key, f in features.items()}
        return PendingCameras(jobs, cancel)

    def _encode(
        self, feature: Feature, frames: Iterable[np.ndarray], length: int, cancel: threading.Event
    ) -> EncodedCamera:
        height, width = feature.shape[:2]
        stats = ImageStatsAccumulator(length, height, width)

        def observed() -> Iterator[np.ndarray]:
            for index, frame in checked_frames(feature, frames, length):
                if cancel.is_set():
                    raise _Cancelled()
                stats.observe(index, frame)
                yield frame

        try:
            video = encode_episode(observed(), fps=self._fps, height=height, width=width, encoding=self._encoding)
        except BaseException:
            cancel.set()
            raise
        return EncodedCamera(video, stats.result())

    def shutdown(self) -> None:
        self._pool.shutdown(cancel_futures=True)
