"""``LoopSettings``: how the robot loop runs its iterations; ``positronic-inference sim`` takes each field as a flag.

Kept apart from the loop itself so that commands can check their flags without importing the simulator.
"""

import math
from dataclasses import dataclass, fields
from typing import Any

from positronic import keys
from positronic.command import UsageError


@dataclass(frozen=True)
class LoopSettings:
    """How iterations are run. ``positronic-inference sim`` takes each field as a flag of the same name."""

    policy_fps: float = 15.0
    """Control ticks per second of sim time; one action is executed per tick."""
    task: str = keys.STACK_CUBES_TASK
    """Instruction passed to the policy (observation ``task`` and ``reset`` context)."""
    actions_per_chunk: int | None = None
    """Execute at most this many actions of each chunk before querying again (None: the whole chunk). The one
    setting for actions per query: a policy's answer (an ACT checkpoint's ``n_action_steps``) only bounds it."""
    temporal_ensemble_coeff: float | None = None
    """Query the policy every tick and execute the weighted mean of every chunk's action for that tick, weights
    ``exp(-coeff * i)`` from the oldest prediction (ACT's temporal ensembling; LeRobot's suggested 0.01; a negative
    coeff trusts the newest prediction most). None: execute chunks as they come. Excludes ``actions_per_chunk``."""
    success_threshold: float = 1.0
    """Stacking score that counts as stacked."""
    success_hold_s: float = 1.0
    """Sim seconds the score must stay at or above the threshold for the iteration to succeed."""
    realtime: bool = False
    """Pace the sim to the wall clock instead of running as fast as possible."""
    simulate_latency: bool = False
    """Advance sim time by each policy call's wall time while the robot holds its last command."""
    connect_attempts: int = 3
    """Attempts to (re)open the policy at the start of an iteration while its server is unreachable."""
    retry_delay_s: float = 2.0
    """Seconds between those attempts."""

    RECORDED = (
        'policy_fps',
        'simulate_latency',
        'realtime',
        'actions_per_chunk',
        'temporal_ensemble_coeff',
        'success_threshold',
        'success_hold_s',
    )
    """Fields that shape what an episode shows; each recording keeps them as the static ``inference.<field>``."""

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in (float, int, bool) and not isinstance(value, f.type):
                object.__setattr__(self, f.name, _as_type(f.name, value, f.type))
        if not self.policy_fps > 0:
            raise UsageError(f'--policy_fps={self.policy_fps}: expected a positive number of ticks per second')
        count = self.actions_per_chunk
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
            raise UsageError(
                f'--actions_per_chunk={count}: expected an integer of at least 1 (or None for whole chunks)'
            )
        coeff = self.temporal_ensemble_coeff
        if coeff is not None:
            if isinstance(coeff, bool) or not isinstance(coeff, int | float) or not math.isfinite(coeff):
                raise UsageError(f'--temporal_ensemble_coeff={coeff!r}: expected a finite number (or None)')
            if count is not None:
                raise UsageError(
                    f'--temporal_ensemble_coeff={coeff} queries every tick: leave --actions_per_chunk={count} unset'
                )
            object.__setattr__(self, 'temporal_ensemble_coeff', float(coeff))

    def check_actions_per_chunk(self, answered: int | None, answered_name: str) -> None:
        """UsageError when ``actions_per_chunk`` asks for more than the ``answered`` actions each query returns
        (``answered_name`` says where that number comes from; None: unknown, anything goes). The loop's setting
        is the one knob for actions per query: the policy's answer is only its upper bound."""
        if answered is not None and self.actions_per_chunk is not None and self.actions_per_chunk > answered:
            raise UsageError(f'--actions_per_chunk={self.actions_per_chunk}: expected 1..{answered_name} ({answered})')

    def recorded_statics(self) -> dict[str, Any]:
        """``{"inference.<field>": value}`` for the :attr:`RECORDED` fields."""
        return {f'inference.{name}': getattr(self, name) for name in self.RECORDED}


_EXPECTED = {float: 'a number', int: 'an integer', bool: 'True or False'}


def _as_type(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (the CLI hands ``--policy_fps=15`` over as an int); UsageError naming the flag."""
    if kind is bool or isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f'--{name}={value!r}: expected {_EXPECTED[kind]}')
    return kind(value)
