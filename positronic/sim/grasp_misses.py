"""Missed grasps and how the expert gets them back (DART for the gripper).

A policy that closes its gripper a moment early, above the green cube, closes on air. The scripted expert never
does, so its demonstrations never show what to do next, and the policy holds its empty gripper closed until the
episode ends (docs/results.md: most failures of the recipe's weaker training run). With ``GraspMisses`` the
recorder closes the executed gripper early in a share of the episodes, while the recorded command stays the
expert's (open until its planned close). Whenever the fingers then close past the cube (``MISSED_GRIP``), the
expert plans anew from where the arm and the cubes are: it opens where it is and moves straight to the grasp pose
to close again. The observations show a gripper closed on nothing; the labels open it and grasp again. (A re-plan
that first rose to the approach point taught the policy to back off whenever its gripper was partly closed near the
cube: it hovered there, docs/results.md.)
"""

from dataclasses import dataclass

import numpy as np

MISS_STREAM = 0x6A5B
"""Second word of the generator's seed for the early closes, so they never share draws with the plan or the noise."""
REPLAN_STREAM = 0x6A5C
"""Second word of the seed of a re-planned expert's generator (the third word counts the re-plans)."""
MISSED_GRIP = 0.8
"""Measured closure above which the fingers hold nothing: the 4 cm cube stops them at 0.5, askew at 0.3."""
MAX_REPLANS = 2
"""Re-plans an episode may make; a third miss ends in a failed (discarded) demonstration."""


@dataclass(frozen=True)
class GraspMisses:
    """A share ``rate`` of the episodes closes the executed gripper ``lead_s`` (uniform range) before the expert's
    planned grasp; ``rate == 0`` means none, and the expert then never re-plans either (the recording is the one
    without this option, bit for bit)."""

    rate: float = 0.0
    lead_s: tuple[float, float] = (0.2, 0.5)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.rate) and 0.0 <= self.rate <= 1.0):
            raise ValueError(f'grasp miss rate must be in [0, 1], got {self.rate!r}')
        low, high = self.lead_s
        if not (np.isfinite(low) and np.isfinite(high) and 0.0 < low <= high):
            raise ValueError(f'grasp miss lead must be a range 0 < low <= high seconds, got {self.lead_s!r}')

    @property
    def enabled(self) -> bool:
        return self.rate > 0.0

    def early_close_s(self, seed: int, planned_close_s: float) -> float | None:
        """When (s from the episode's start) episode ``seed`` closes its executed gripper, or None when it closes
        as planned; the same seed always gives the same answer."""
        if not self.enabled:
            return None
        rng = np.random.default_rng([seed, MISS_STREAM])
        if rng.uniform() >= self.rate:
            return None
        return max(0.0, planned_close_s - float(rng.uniform(*self.lead_s)))


def missed(executed_grip: float, measured_grip: float) -> bool:
    """Whether a gripper commanded closed (``executed_grip`` above 0.5) has closed past where a cube would stop it."""
    return executed_grip > 0.5 and measured_grip > MISSED_GRIP


def replan_rng(seed: int, replans: int) -> np.random.Generator:
    """The generator of the expert planned after ``replans`` misses of episode ``seed``."""
    return np.random.default_rng([seed, REPLAN_STREAM, replans])
