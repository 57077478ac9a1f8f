"""Small synthetic raw episodes with every signal the codecs read, written through the real dataset writer.

Signals follow DESIGN.md's contract: robot state every ``state_period_ns``, commands at the same times, cameras at
``camera_fps`` with frames that encode their own index (a bright square that moves with time), and a static task.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np

from positronic import keys
from positronic.dataset import LocalDatasetWriter

TASK = 'stack the synthetic cubes'


def pose_at(t_s: float) -> np.ndarray:
    """A smooth end-effector pose at time ``t_s``: gripper down (qw ~ 0), yawing slowly so qw changes sign."""
    yaw = 0.3 * np.sin(t_s)
    half = (np.pi + 0.2 * np.sin(2 * t_s)) / 2
    quat = np.array([np.cos(half), np.sin(half) * np.cos(yaw), np.sin(half) * np.sin(yaw), 0.0])
    return np.array([0.5 + 0.05 * t_s, 0.1 * np.sin(t_s), 0.4, *quat])


def frame_at(index: int, height: int, width: int, channel: int) -> np.ndarray:
    frame = np.full((height, width, 3), 40, dtype=np.uint8)
    x = (index * 4) % (width - 16)
    frame[height // 3 : height // 3 + 16, x : x + 16, channel] = 230
    return frame


def write_episode(
    writer: LocalDatasetWriter,
    *,
    duration_s: float = 1.0,
    state_period_ns: int = 10_000_000,
    camera_fps: int = 30,
    height: int = 48,
    width: int = 64,
    start_ns: int = 0,
    camera_offset_ns: int = 0,
    task: str | None = TASK,
    skip: tuple[str, ...] = (),
) -> None:
    """One episode from ``start_ns``; cameras start ``camera_offset_ns`` later; signals in ``skip`` are left out."""
    with writer.new_episode() as ep:
        for i, ts in enumerate(range(start_ns, start_ns + int(duration_s * 1e9), state_period_ns)):
            t = (ts - start_ns) / 1e9
            q = (np.arange(7) * 0.1 + t).astype(np.float32)
            values = {
                keys.ROBOT_Q: q,
                keys.ROBOT_DQ: np.full(7, 0.5, dtype=np.float32),
                keys.ROBOT_EE_POSE: pose_at(t),
                keys.GRIP: float(min(1.0, t)),
                keys.COMMAND_POSE: pose_at(t + 0.05),
                keys.TARGET_GRIP: float(i % 2),
            }
            for name, value in values.items():
                if name not in skip:
                    ep.append(name, value, ts)
        period = int(1e9 / camera_fps)
        for i, ts in enumerate(range(start_ns + camera_offset_ns, start_ns + int(duration_s * 1e9), period)):
            for channel, name in enumerate((keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR)):
                if name not in skip:
                    ep.append(name, frame_at(i, height, width, channel), ts)
        if task is not None:
            ep.set_static(keys.TASK, task)


def write_dataset(root: Path, num_episodes: int = 2, **kwargs) -> Path:
    """A raw dataset of ``num_episodes`` episodes (see :func:`write_episode`); returns ``root``."""
    writer = LocalDatasetWriter(root)
    for i in range(num_episodes):
        write_episode(writer, start_ns=i * 5_000_000_000, **kwargs)
    return root


INTERRUPTED_RECORDING = """
import os, sys
import numpy as np
from positronic.dataset import LocalDatasetWriter

episode = LocalDatasetWriter(sys.argv[1]).new_episode()
episode.append('robot_state.q', np.zeros(7, np.float32), 0)
os._exit(3)  # the recorder dies: no finalize, no abort
"""


def leave_interrupted_episode(root: Path) -> Path:
    """Record into ``root`` from a child process that dies mid-episode; returns the episode it left unfinished."""
    before = set(root.glob('*/*')) if root.exists() else set()
    result = subprocess.run([sys.executable, '-c', INTERRUPTED_RECORDING, str(root)], capture_output=True, text=True)
    assert result.returncode == 3, result.stderr
    [left] = set(root.glob('*/*')) - before
    return left
