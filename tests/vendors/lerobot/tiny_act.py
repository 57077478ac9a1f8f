"""Tiny ACT experiments for serving tests: real ACTPolicy weights, processors and codec records, laid out by the
trainer's own ``save_checkpoint`` (``checkpoints/<step>/{pretrained_model,training_state}`` and ``last``)."""

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from positronic import keys
from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy
from positronic.vendors.lerobot.act.normalize import save_processors
from positronic.vendors.lerobot.codec import Codec
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.training.checkpoint import (
    CHECKPOINTS_DIR,
    PRETRAINED_DIR,
    save_checkpoint,
    step_dir_name,
    write_codec_record,
)

IMAGE_SIDE = 32
CHUNK_SIZE = 6
N_ACTION_STEPS = 4
STEPS = (10, 20)
LEROBOT_ACT_TINY = Path(__file__).parent / 'act' / 'fixtures' / 'act_tiny'
"""A pretrained_model dir written by LeRobot 0.4.4 (96x96 cameras, chunk 10, no codec record)."""
LEROBOT_ACT_TINY_STEP = 30

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)
POSE_MEAN = np.array([0.45, 0.0, 0.25, 0.0, 1.0, 0.0, 0.0, 0.5], dtype=np.float32)
POSE_STD = np.array([0.1, 0.1, 0.05, 0.02, 0.01, 0.02, 0.02, 0.4], dtype=np.float32)


def tiny_codec(image_side: int = IMAGE_SIDE) -> Codec:
    return eepose_absolute.override(image_size=image_side).instantiate()


def tiny_config(image_side: int = IMAGE_SIDE) -> ACTConfig:
    camera = {'type': 'VISUAL', 'shape': [3, image_side, image_side]}
    return ACTConfig(
        input_features={
            'observation.state': {'type': 'STATE', 'shape': [8]},
            'observation.images.left': camera,
            'observation.images.side': camera,
        },
        output_features={'action': {'type': 'ACTION', 'shape': [8]}},
        chunk_size=CHUNK_SIZE,
        n_action_steps=N_ACTION_STEPS,
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_decoder_layers=1,
        latent_dim=4,
        n_vae_encoder_layers=1,
        pretrained_backbone_weights=None,
    )


def tiny_stats() -> dict[str, dict[str, np.ndarray]]:
    """Dataset stats as the trainer passes them: ImageNet mean/std for cameras, pose-like state and action."""

    def image() -> dict[str, np.ndarray]:
        return {'mean': IMAGENET_MEAN.copy(), 'std': IMAGENET_STD.copy()}

    def pose() -> dict[str, np.ndarray]:
        return {'mean': POSE_MEAN.copy(), 'std': POSE_STD.copy()}

    return {
        'observation.state': pose(),
        'observation.images.left': image(),
        'observation.images.side': image(),
        'action': pose(),
    }


def write_tiny_experiment(root: Path, steps: Sequence[int] = STEPS, image_side: int = IMAGE_SIDE) -> Path:
    """An experiment dir with one tiny checkpoint per step (different random weights each), codec recorded."""
    config = tiny_config(image_side)
    for step in steps:
        torch.manual_seed(step)
        policy = ACTPolicy(config)

        def write_pretrained(directory: Path, policy: ACTPolicy = policy) -> None:
            policy.save_pretrained(directory)
            save_processors(directory, tiny_stats(), config)
            write_codec_record(directory, tiny_codec(image_side))

        save_checkpoint(root, step, write_pretrained, torch.optim.AdamW(policy.parameters()))
    return root


def add_lerobot_checkpoint(root: Path, step: int = LEROBOT_ACT_TINY_STEP) -> Path:
    """Make LeRobot's act_tiny checkpoint ``step`` of the experiment ``root`` (a symlink); returns its dir."""
    target = root / CHECKPOINTS_DIR / step_dir_name(step) / PRETRAINED_DIR
    target.parent.mkdir(parents=True)
    os.symlink(LEROBOT_ACT_TINY.resolve(), target)
    return target


def raw_observation(seed: int = 0, image_hw: tuple[int, int] = (48, 64)) -> dict[str, Any]:
    """A raw robot observation near the stats' mean pose, with random camera frames of ``image_hw``."""
    rng = np.random.default_rng(seed)
    pose = POSE_MEAN[:7].astype(np.float64) + rng.normal(0, 0.01, 7)
    pose[3:] /= np.linalg.norm(pose[3:])
    return {
        keys.ROBOT_Q: rng.standard_normal(7).astype(np.float32),
        keys.ROBOT_EE_POSE: pose,
        keys.GRIP: float(rng.uniform()),
        keys.IMAGE_WRIST: rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8),
        keys.IMAGE_EXTERIOR: rng.integers(0, 256, (*image_hw, 3), dtype=np.uint8),
        keys.TASK: keys.STACK_CUBES_TASK,
    }
