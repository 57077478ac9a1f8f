"""Small synthetic episodes for the dataset tests: smooth moving scenes at 64x64, sine-wave state and action."""

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from positronic.vendors.lerobot.lerobot_dataset import DatasetWriter

from .scenes import CAMERAS, FPS, HEIGHT, STATE_DIM, WIDTH, scene

VIDEO_TOLERANCE = 12.0
"""Mean absolute difference (0-255) allowed between written and decoded frames of these small scenes."""


def video_feature(height: int = HEIGHT, width: int = WIDTH) -> dict:
    return {'dtype': 'video', 'shape': [height, width, 3], 'names': ['height', 'width', 'channels']}


def features(cameras: tuple[str, ...] = CAMERAS) -> dict:
    """State and action float32 (4,), a float64 scalar reward, an int64 phase, and the given cameras."""
    return {
        'observation.state': {'dtype': 'float32', 'shape': [STATE_DIM], 'names': [f's{i}' for i in range(STATE_DIM)]},
        'action': {'dtype': 'float32', 'shape': [STATE_DIM], 'names': [f'a{i}' for i in range(STATE_DIM)]},
        'next.reward': {'dtype': 'float64', 'shape': [1], 'names': None},
        'phase': {'dtype': 'int64', 'shape': [1], 'names': None},
        **{cam: video_feature() for cam in cameras},
    }


def episode(num_frames: int, seed: int, cameras: tuple[str, ...] = CAMERAS, iterators: bool = False) -> dict:
    """One episode's frames for ``features(cameras)``; camera frames as arrays or as one-shot iterators."""
    t = np.arange(num_frames)[:, None] / FPS
    state = np.sin(t * (1 + np.arange(STATE_DIM)) + seed)
    frames: dict = {
        'observation.state': state,
        'action': np.cos(t * (1 + np.arange(STATE_DIM)) + seed).astype(np.float32),
        'next.reward': np.linspace(0, 1, num_frames),
        'phase': (np.arange(num_frames) // 5).astype(np.int64),
    }
    for i, cam in enumerate(cameras):
        video = scene(num_frames, seed * 10 + i)
        frames[cam] = iter(video) if iterators else video
    return frames


def frames_raising_at(frames: np.ndarray, index: int, error: Exception) -> Iterator[np.ndarray]:
    """Yield frames, then raise ``error`` when frame ``index`` is requested (an interrupted source)."""
    for k, frame in enumerate(frames):
        if k == index:
            raise error
        yield frame


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


LENGTHS = (12, 20, 9)
TASKS = ('pick the cube', 'place the cube', 'pick the cube')


def write_dataset(root: Path, lengths=LENGTHS, tasks=TASKS, seed0: int = 0, **kwargs) -> list[dict]:
    """Create a dataset of ``features()`` episodes; returns the episodes written (camera frames as arrays)."""
    episodes = [episode(n, seed=seed0 + e) for e, n in enumerate(lengths)]
    with DatasetWriter.create(root, features(), FPS, robot_type='test_robot', **kwargs) as writer:
        for frames, task in zip(episodes, tasks, strict=True):
            writer.add_episode(frames, task)
    return episodes


def snapshot(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under root (to prove a dataset was left untouched)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob('*') if p.is_file()
    }
