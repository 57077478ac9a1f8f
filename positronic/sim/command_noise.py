"""Smooth random offsets added to the position the robot executes, not to the one recorded (DART-style data).

A demonstrator that only ever follows its plan shows the policy states on that plan and nothing else; a policy
that drifts 2 cm off has never seen how to get back. With ``CommandNoise`` the recorder sends ``plan + offset`` to
the robot and records the plan's command as the action: the observations show the arm off its path, and the
absolute-pose labels lead back onto it. The offset is an Ornstein-Uhlenbeck process per axis: it starts at zero
(the first frame is the clean home pose), wanders with standard deviation ``std_m`` and forgets its value over
``time_constant_s``. Around each gripper change (grasp, release) the offset fades to zero over ``fade_s``: there
the scene forgives only about 1.5 cm, and a demonstration that misses its grasp is discarded, not learned from
(``fade_s=0``: no fade, the offset runs on until the last change). After the last of them (the release) the
offset stays zero: the retreat decides nothing, and it runs near the edge of the arm's reach.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

NOISE_STREAM = 0x0D_A7
"""Second word of the noise generator's seed, so the noise never shares draws with the layout or the plan."""


@dataclass(frozen=True)
class CommandNoise:
    """Ornstein-Uhlenbeck offset (metres) of the executed TCP position; ``std_m == 0`` means none."""

    std_m: float = 0.0
    time_constant_s: float = 0.5
    fade_s: float = 1.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.std_m) and 0.0 <= self.std_m <= 0.05):
            raise ValueError(f'command noise std must be in [0, 0.05] m, got {self.std_m!r}')
        if not (np.isfinite(self.time_constant_s) and self.time_constant_s > 0):
            raise ValueError(f'command noise time constant must be > 0 s, got {self.time_constant_s!r}')
        if not (np.isfinite(self.fade_s) and self.fade_s >= 0):
            raise ValueError(f'command noise fade must be >= 0 s, got {self.fade_s!r}')

    def offsets(self, seed: int, ticks: int, dt_s: float, quiet_at_s: Sequence[float] = ()) -> np.ndarray:
        """``(ticks, 3)`` offsets at ``dt_s`` spacing, zero at row 0 and from the last of the ``quiet_at_s`` times
        (seconds from row 0) on, faded to zero within ``fade_s`` of each of them; the same ``seed`` gives the same
        rows."""
        out = np.zeros((ticks, 3))
        if self.std_m == 0 or ticks < 2:
            return out
        decay = float(np.exp(-dt_s / self.time_constant_s))
        shocks = np.random.default_rng([seed, NOISE_STREAM]).normal(0.0, 1.0, size=(ticks - 1, 3))
        shocks *= self.std_m * np.sqrt(1.0 - decay * decay)
        for tick in range(1, ticks):
            out[tick] = decay * out[tick - 1] + shocks[tick - 1]
        return out * self._envelope(np.arange(ticks) * dt_s, quiet_at_s)[:, None]

    def _envelope(self, times_s: np.ndarray, quiet_at_s: Sequence[float]) -> np.ndarray:
        if not len(quiet_at_s):
            return np.ones_like(times_s)
        quiet = np.asarray(quiet_at_s, dtype=float)
        nearest = np.abs(times_s[:, None] - quiet[None, :]).min(axis=1)
        ramp = np.clip(nearest / self.fade_s, 0.0, 1.0) if self.fade_s > 0 else np.ones_like(times_s)
        return np.where(times_s < quiet.max(), ramp, 0.0)
