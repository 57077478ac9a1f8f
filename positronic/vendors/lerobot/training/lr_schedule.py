"""The learning rate over a run: LeRobot's ACT preset keeps it constant; ``cosine`` anneals it to zero.

The rate of a step is a function of the step alone (no scheduler state), so a resumed run continues the curve where
an unbroken one would be, and checkpoints stay LeRobot's.
"""

import math
from collections.abc import Sequence

import torch

LR_SCHEDULES = ('constant', 'cosine')
"""The values ``--lr_schedule`` accepts."""


def lr_factor(schedule: str, step: int, num_steps: int) -> float:
    """The fraction of the base learning rate that step ``step`` (1 .. ``num_steps``) trains with.

    ``constant``: 1. ``cosine``: half a cosine from 1 at step 1 down towards 0 after step ``num_steps``, so the last
    steps take the smallest updates and the final weights are not one noisy step away from a good point.
    """
    if schedule == 'constant':
        return 1.0
    if schedule == 'cosine':
        progress = min(max(step - 1, 0), num_steps) / num_steps
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f'learning rate schedule must be one of {", ".join(LR_SCHEDULES)}, got {schedule!r}')


class LearningRate:
    """Sets each parameter group's rate for a step: its base rate (the one the optimizer was built with) times
    :func:`lr_factor`. Take the base rates before a resume loads the saved groups, which hold decayed rates."""

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: str, num_steps: int):
        lr_factor(schedule, 1, num_steps)  # refuses an unknown schedule before any step
        self._optimizer = optimizer
        self._schedule = schedule
        self._num_steps = num_steps
        self.base: Sequence[float] = tuple(group['lr'] for group in optimizer.param_groups)

    def set_for(self, step: int) -> None:
        """Give every parameter group its rate for ``step``."""
        factor = lr_factor(self._schedule, step, self._num_steps)
        for group, base in zip(self._optimizer.param_groups, self.base, strict=True):
            group['lr'] = base * factor
