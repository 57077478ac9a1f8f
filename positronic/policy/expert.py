"""``ExpertPolicy``: the scripted stacking demonstrator as a policy (``--policy=.expert``).

It reads the true cube poses from the simulator, so it runs only inside the simulated evaluation loop,
which hands it the world after every reset (``attach_world``). Useful to validate the loop and the success
measure without a trained model.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

from positronic.policy.action import cartesian_action
from positronic.sim import StackingExpert, World

META_TYPE = 'expert'


class ExpertPolicyError(RuntimeError):
    """The expert was used outside the simulator (no world attached)."""


class ExpertPolicy:
    """The scripted ``StackingExpert`` planned at each ``reset`` from the attached world's cube poses.

    Each ``select_action`` returns one action: the expert's command at the current sim time (seconds since
    ``reset``). Its random choices are seeded by the iteration's seed; ``blend`` is ``StackingExpert``'s.
    """

    def __init__(self, blend: float = 0.0):
        self._blend = blend
        self._world: World | None = None
        self._seed = 0
        self._expert: StackingExpert | None = None
        self._start_ns = 0

    def attach_world(self, world: World, seed: int) -> None:
        """Called by the simulated loop after each world reset, before ``reset``."""
        self._world = world
        self._seed = seed

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        """Plan a new demonstration from the cube poses of the attached world (``context`` is not needed)."""
        del context
        world = self._attached_world()
        self._expert = StackingExpert.for_world(world, np.random.default_rng(self._seed), blend=self._blend)
        self._start_ns = world.time_ns

    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        """A one-action chunk: the expert's pose and gripper command at the world's current time."""
        del observation
        world = self._attached_world()
        if self._expert is None:
            raise ExpertPolicyError('ExpertPolicy.reset must be called before select_action')
        pose, grip = self._expert.command((world.time_ns - self._start_ns) / 1e9)
        return [cartesian_action(pose, grip)]

    @property
    def meta(self) -> dict[str, Any]:
        return {'type': META_TYPE}

    def close(self) -> None:
        self._expert = None
        self._world = None

    def _attached_world(self) -> World:
        if self._world is None:
            raise ExpertPolicyError(
                'the expert policy reads the true cube poses from the simulator: use it with '
                '`positronic-inference sim --policy=.expert`, not with a real robot or a server'
            )
        return self._world
