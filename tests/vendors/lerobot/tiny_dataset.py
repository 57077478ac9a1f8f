"""Tiny LeRobot datasets shaped by a real codec (two square cameras, 8-d state and action) for trainer tests.

The action is a smooth function of the state and the cameras show a square whose position follows the state, so a
tiny ACT can learn something in a few dozen steps.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from positronic.vendors.lerobot.codec import Codec
from positronic.vendors.lerobot.codec_spec import CodecSpec
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.lerobot_dataset import H264, DatasetReader, DatasetWriter, VideoEncoding
from positronic.vendors.lerobot.training.frame_cache import FrameCache
from positronic.vendors.lerobot.training.training_data import ChunkDataset

FPS = 15
IMAGE_SIDE = 32
LENGTHS = (14, 9, 11)


def tiny_codec(image_side: int = IMAGE_SIDE) -> Codec:
    return eepose_absolute.override(image_size=image_side).instantiate()


def _frames(state: np.ndarray, side: int, channel: int) -> np.ndarray:
    yy, xx = np.mgrid[0:side, 0:side]
    out = np.full((len(state), side, side, 3), 40, dtype=np.uint8)
    for t, s in enumerate(state):
        cx, cy = side / 2 * (1 + 0.7 * np.sin(s[0] * 3)), side / 2 * (1 + 0.7 * np.cos(s[1] * 3))
        out[t][(np.abs(xx - cx) < side / 6) & (np.abs(yy - cy) < side / 6), channel] = 220
    return out


def episode_frames(length: int, seed: int, image_side: int = IMAGE_SIDE) -> dict[str, np.ndarray]:
    """One episode: ``observation.state`` (T, 8), ``action`` (T, 8) float32 and both cameras uint8 (T, H, W, 3)."""
    t = np.arange(length)[:, None] / FPS
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=8)
    state = (0.3 * np.sin(2 * t + phase)).astype(np.float32)
    action = (0.3 * np.sin(2 * (t + 0.2) + phase) + 0.1).astype(np.float32)
    return {
        'observation.state': state,
        'action': action,
        'observation.images.left': _frames(state, image_side, 0),
        'observation.images.side': _frames(state, image_side, 2),
    }


def write_tiny_dataset(
    root: Path,
    lengths: Sequence[int] = LENGTHS,
    image_side: int = IMAGE_SIDE,
    codec: Codec | None = None,
    video: VideoEncoding = H264,
) -> Path:
    """A LeRobot dataset of ``codec``'s features (default eepose_absolute at ``image_side``) with the codec recorded."""
    codec = codec or tiny_codec(image_side)
    record = CodecSpec.of(codec).to_record()
    with DatasetWriter.create(
        root, codec.features(), FPS, robot_type='sim', video=video, positronic_codec=record
    ) as writer:
        for e, length in enumerate(lengths):
            writer.add_episode(episode_frames(length, seed=e, image_side=image_side), 'stack the cubes')
    return root


def tiny_chunk_dataset(root: Path, chunk_size: int) -> ChunkDataset:
    """The training samples (chunks of ``chunk_size`` actions) of a tiny dataset written under ``root``, with its
    frame cache built there too."""
    reader = DatasetReader(write_tiny_dataset(root / 'dataset'))
    return ChunkDataset(reader, FrameCache.open_or_build(reader, root / 'cache'), chunk_size)
