"""A small real model source for server tests: checkpoint-like numeric ids and a deterministic policy.

The policy's chunk walks up from the measured end-effector pose by 1 cm per step and closes the gripper
by the mean brightness of the wrist image, so every answer can be checked against its observation.
"""

import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from positronic import keys
from positronic.offboard import protocol
from positronic.offboard.models import ModelNotFoundError
from positronic.policy.action import cartesian_action

DELAY_KEY = 'test.delay_s'
"""Observation key: seconds the policy sleeps before answering (to hold a request in flight)."""
STEP_M = 0.01


def observation(
    x: float = 0.4, image_side: int = 480, brightness: int = 128, delay_s: float | None = None
) -> dict[str, Any]:
    """A raw observation: ee pose at ``x`` (pointing down), two square RGB frames, state, task."""
    obs = {
        keys.ROBOT_Q: np.linspace(-1, 1, 7, dtype=np.float32),
        keys.ROBOT_EE_POSE: np.array([x, -0.1, 0.5, 0.0, 1.0, 0.0, 0.0]),
        keys.GRIP: 0.25,
        keys.IMAGE_WRIST: np.full((image_side, image_side, 3), brightness, dtype=np.uint8),
        keys.IMAGE_EXTERIOR: np.zeros((image_side, image_side, 3), dtype=np.uint8),
        keys.TASK: keys.STACK_CUBES_TASK,
    }
    if delay_s is not None:
        obs[DELAY_KEY] = delay_s
    return obs


def expected_translations(x: float, chunk_size: int) -> np.ndarray:
    """The translations of the chunk the policy answers for ``observation(x)``."""
    return np.array([[x, -0.1, 0.5 + STEP_M * k] for k in range(chunk_size)])


class StepPolicyModel:
    """The ``LoadedModel`` of ``StepSource``: deterministic actions from the observation."""

    def __init__(self, model_id: str, chunk_size: int, source: 'StepSource'):
        self.model_id = model_id
        self.chunk_size = chunk_size
        self._source = source
        self.warmed_up = False

    @property
    def meta(self) -> Mapping[str, Any]:
        meta = {'type': 'step', 'model_id': self.model_id, 'chunk_size': self.chunk_size, 'features': {'state': [8]}}
        return {**meta, **self._source.meta_extra}

    def warm_up(self) -> None:
        self._source.events.append(('warm_up', self.model_id))
        self.warmed_up = True

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        if not self.warmed_up:
            raise RuntimeError('inference before warm-up')
        pose = observation[keys.ROBOT_EE_POSE]
        image = observation[keys.IMAGE_WRIST]
        if pose.shape != (7,):
            raise ValueError(f'{keys.ROBOT_EE_POSE} must have shape (7,), got {pose.shape}')
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f'{keys.IMAGE_WRIST} must be (H, W, 3), got {image.shape}')
        self._source.received_shapes = {k: v.shape for k, v in observation.items() if isinstance(v, np.ndarray)}
        time.sleep(float(observation.get(DELAY_KEY, 0.0)))
        grip = float(image.mean()) / 255.0
        chunk = []
        for k in range(self.chunk_size):
            target = np.array(pose, dtype=np.float64)
            target[2] += STEP_M * k
            chunk.append(cartesian_action(target, grip))
        return chunk

    def unload(self) -> None:
        self._source.events.append(('unload', self.model_id))
        self._source.loaded.discard(self.model_id)


class StepSource:
    """A ``ModelSource`` with numeric ids; ``load_gate`` (when set to an Event) holds every load until set.

    ``meta_extra`` is added to every model's meta."""

    def __init__(
        self,
        ids: tuple[str, ...] = ('1000', '2000', '10000'),
        chunk_size: int = 4,
        fail_ids=(),
        meta_extra: Mapping[str, Any] | None = None,
    ):
        self.ids = ids
        self.meta_extra = dict(meta_extra or {})
        self.chunk_size = chunk_size
        self.fail_ids = set(fail_ids)
        self.load_gate: threading.Event | None = None
        self.events: list[tuple[str, str]] = []
        self.loaded: set[str] = set()
        self.max_loaded = 0
        self.received_shapes: dict[str, tuple[int, ...]] = {}

    def model_ids(self) -> list[str]:
        return sorted(self.ids, key=int)

    def resolve(self, model_id: str | None) -> str:
        if model_id is None:
            if not self.ids:
                raise ModelNotFoundError('no checkpoints to serve', protocol.REASON_NO_MODELS)
            return self.model_ids()[-1]
        if model_id not in self.ids:
            raise ModelNotFoundError(f'no checkpoint {model_id!r}; available: {self.model_ids()}')
        return model_id

    def load(self, model_id: str) -> StepPolicyModel:
        self.events.append(('load', model_id))
        if self.load_gate is not None and not self.load_gate.wait(10):
            raise TimeoutError('test load gate never opened')
        if model_id in self.fail_ids:
            raise OSError(f'checkpoint {model_id} is corrupt')
        self.loaded.add(model_id)
        self.max_loaded = max(self.max_loaded, len(self.loaded))
        return StepPolicyModel(model_id, self.chunk_size, self)
