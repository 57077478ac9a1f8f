"""Each evaluation iteration as a raw episode: the data-collection signals plus the task scores."""

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from positronic import keys
from positronic.dataset import EpisodeWriter


def json_static(value: Any) -> Any:
    """``value`` as a static item the episode writer accepts: numpy scalars and arrays become Python numbers
    and lists, non-finite floats and anything else that is not JSON become their ``str``; None stays None
    (the caller leaves it out)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else str(float(value))
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, np.ndarray):
        return json_static(value.tolist())
    if isinstance(value, list | tuple):
        return [json_static(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): json_static(v) for k, v in value.items() if v is not None}
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        return str(value)


class EpisodeRecorder:
    """Writes one iteration through ``writer``: per control tick every observed signal (robot state, camera
    frames; not the task) with ``stacking_success`` and ``box_distance``; per executed action
    ``robot_commands.pose`` and ``target_grip``; the statics at ``finalize``. Timestamps are sim ns."""

    def __init__(self, writer: EpisodeWriter):
        self._writer = writer
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether the episode was finalized or aborted (or its finalizing failed)."""
        return self._closed

    @property
    def path(self) -> str:
        return str(self._writer.path)

    def record_tick(self, time_ns: int, observation: Mapping[str, Any], stacking_success: float, box_distance: float):
        """The observation at ``time_ns`` (arrays as they are, numbers as float64) and the two scores."""
        for name, value in observation.items():
            if name == keys.TASK:
                continue
            self._writer.append(name, value if isinstance(value, np.ndarray) else float(value), time_ns)
        self._writer.append(keys.STACKING_SUCCESS, float(stacking_success), time_ns)
        self._writer.append(keys.BOX_DISTANCE, float(box_distance), time_ns)

    def record_command(self, time_ns: int, pose: np.ndarray, grip: float) -> None:
        """An action the robot executes from ``time_ns``: pose float64 (7,) ``[x, y, z, qw, qx, qy, qz]``,
        gripper closure in [0, 1]."""
        self._writer.append(keys.COMMAND_POSE, np.asarray(pose, dtype=np.float64), time_ns)
        self._writer.append(keys.TARGET_GRIP, float(grip), time_ns)

    def finalize(self, statics: Mapping[str, Any]) -> None:
        """Store ``statics`` (None values left out, others made JSON) and finish the episode on disk."""
        try:
            for name, value in statics.items():
                value = json_static(value)
                if value is not None:
                    self._writer.set_static(name, value)
            self._writer.finalize()
        except BaseException:
            self.abort()
            raise
        self._closed = True

    def abort(self) -> None:
        """Delete the episode (a discarded or interrupted iteration); harmless once closed."""
        if not self._closed:
            self._closed = True
            self._writer.abort()
