"""Augmentation of training batches (image shifts, robot-state noise), on the device they train on (no host sync,
seeded per step).

Only the training batch changes: checkpoints stay LeRobot's, and serving sees unaugmented observations.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def step_generator(device: torch.device, seed: int, rank: int, step: int) -> torch.Generator:
    """A generator on ``device`` seeded by ``(seed, rank, step)``, so a resumed run draws what an unbroken one did."""
    state = int(np.random.SeedSequence([seed, rank, step]).generate_state(1, np.uint64)[0])
    return torch.Generator(device=device).manual_seed(state & 0x7FFF_FFFF_FFFF_FFFF)


def random_shift(images: Tensor, pad: int, generator: torch.Generator) -> Tensor:
    """Each image of ``images`` (B, C, H, W) moved by a whole number of pixels in [-pad, pad] along each axis, its
    own draw per image, the edge pixels repeated into the uncovered border (DrQ's random shift). ``pad=0``
    returns ``images`` as they are."""
    if pad < 0:
        raise ValueError(f'random shift pad must be >= 0 pixels, got {pad}')
    if pad == 0:
        return images
    batch, _, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad), mode='replicate')
    shift = torch.randint(0, 2 * pad + 1, (batch, 2), device=images.device, generator=generator)
    rows = shift[:, :1] + torch.arange(height, device=images.device)  # (B, H)
    cols = shift[:, 1:] + torch.arange(width, device=images.device)  # (B, W)
    samples = torch.arange(batch, device=images.device)[:, None, None]
    return padded[samples, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)


def state_noise(state: Tensor, std: float, generator: torch.Generator) -> Tensor:
    """``state`` (B, S), normalized to zero mean and unit standard deviation per dimension, plus Gaussian noise of
    standard deviation ``std`` (in those units), its own draw per value: the state no longer gives the commanded
    pose away to within less than that, so the images must place it. ``std=0`` returns ``state`` as it is."""
    if not std >= 0:
        raise ValueError(f'state noise must be >= 0 standard deviations, got {std}')
    if std == 0:
        return state
    noise = torch.randn(state.shape, device=state.device, dtype=state.dtype, generator=generator)
    return state + std * noise
