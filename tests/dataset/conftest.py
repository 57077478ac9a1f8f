"""Small real recordings for the dataset tests."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from positronic.dataset import LocalDataset, LocalDatasetWriter


def frame_image(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """An RGB uint8 (height, width, 3) frame, flat colours that survive H.264, distinct for index < 320."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[..., 0] = (index % 32) * 8 + 4
    image[..., 1] = (index // 32) * 24 % 240 + 8
    image[..., 2] = 255 - (index % 32) * 8
    return image


def matching_frame(frame: np.ndarray, count: int) -> int:
    """Index ``i < count`` whose ``frame_image(i)`` is closest to ``frame`` (mean absolute difference)."""
    h, w = frame.shape[:2]
    errors = [np.abs(frame.astype(int) - frame_image(i, h, w)).mean() for i in range(count)]
    return int(np.argmin(errors))


def assert_frame(frame: np.ndarray, index: int, count: int) -> None:
    """``frame`` decodes ``frame_image(index)`` within codec tolerance and is closer to it than to any other."""
    h, w = frame.shape[:2]
    assert frame.dtype == np.uint8 and frame.shape == (h, w, 3)
    assert np.abs(frame.astype(int) - frame_image(index, h, w)).mean() < 3
    assert matching_frame(frame, count) == index


def tree_state(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root`` with its sha256 and mtime (ns), to detect any modification."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob('*'))
        if p.is_file()
    }


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """Two finished episodes with a float32 vector, a scalar, a video and statics (see values below).

    Episode e (0 or 1): ``q`` float32 (7,) = arange(7) + i at 1000 + 10*i (i < 20); ``grip`` float at
    1005 + 10*i = i / 20 (i < 20); ``cam`` frame_image(i) at 1000 + 20*i (i < 10); static ``task`` = f'task {e}'.
    """
    root = tmp_path / 'ds'
    writer = LocalDatasetWriter(root)
    for e in range(2):
        with writer.new_episode() as ep:
            for i in range(20):
                ep.append('q', np.arange(7, dtype=np.float32) + i + e, 1000 + 10 * i)
                ep.append('grip', i / 20, 1005 + 10 * i)
            for i in range(10):
                ep.append('cam', frame_image(i + e), 1000 + 20 * i)
            ep.set_static('task', f'task {e}')
    return root


@pytest.fixture
def episode(small_dataset: Path):
    """The first episode of ``small_dataset``."""
    return LocalDataset(small_dataset)[0]
