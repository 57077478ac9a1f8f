"""Codecs: one definition of how raw robot signals become model features and model actions become robot commands.

A :class:`Codec` pairs an :class:`ObservationEncoder` with an :class:`AbsolutePoseAction` and serves three uses:

- conversion: :meth:`Codec.project_episode` turns a raw episode into per-frame feature values on a uniform time
  grid, lazily (camera frames are decoded and letterboxed only as they are consumed);
- inference: :meth:`Codec.encode` turns one live observation (raw signals) into the same feature values;
- execution: :meth:`Codec.decode` turns one model action vector into a wire-form robot command.

Both encoding paths call the same functions, so a frame encodes to identical values at training and at inference.

Feature values: ``observation.state`` float32 (S,); each camera uint8 (H, W, 3) RGB letterboxed to the codec's
image size; ``task`` a str; ``action`` float32 (8,) = ``[x, y, z, qw, qx, qy, qz, target_grip]``.
"""

import reprlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from positronic import geom, keys
from positronic.command import UsageError
from positronic.dataset import Episode, Signal, episode_label
from positronic.dataset.signal import time_grid
from positronic.dataset.transforms import concat, letterbox, letterboxed
from positronic.dataset.video import is_image
from positronic.policy.action import InvalidActionError, cartesian_action

OBSERVATION_STATE = 'observation.state'
ACTION = 'action'
TASK = 'task'
"""The model's instruction feature (LeRobot's frame key); its value is the raw ``keys.TASK`` passed through."""
IMAGE_FEATURE_PREFIX = 'observation.images.'

POSE_NAMES = ('x', 'y', 'z', 'qw', 'qx', 'qy', 'qz')
JOINT_NAMES = tuple(f'q{i}' for i in range(7))
GRIP_NAME = 'grip'
ACTION_NAMES = (*POSE_NAMES, keys.TARGET_GRIP)
IMAGE_AXES = ['height', 'width', 'channels']
GRIP_RANGE = (0.0, 1.0)
"""Gripper closure (``grip``, ``target_grip``): 0 open, 1 closed. Decoded actions are clamped to it."""
OBSERVED_GRIP_LIMITS = (-0.1, 1.1)
"""The measured ``grip`` a live observation may carry: :data:`GRIP_RANGE` with a margin, since a gripper computed
from a finger joint without clipping (Positronic's sim: ``grip = finger_qpos / 0.04``) reads slightly past the
ends under MuJoCo's soft joint limits. Values inside pass unchanged, as conversion records them; others are refused."""
REAL_NUMBER_KINDS = 'iuf'
"""numpy dtype kinds a state value may have: ints and floats (bools, complex numbers and objects are refused)."""


class MissingSignalError(KeyError):
    """A raw observation or episode lacks a signal the codec needs."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else super().__str__()


class CodecMismatchError(ValueError):
    """A codec does not fit a dataset, checkpoint or another codec it must agree with."""


class UnknownCodecError(CodecMismatchError):
    """A dataset or checkpoint records a codec name that is not a registered (built-in) codec."""


class InvalidObservationError(ValueError):
    """A live observation's signal has the wrong type, shape or values (the message names the key)."""


def canonical_poses(poses: np.ndarray) -> np.ndarray:
    """Poses (..., 7) ``[x, y, z, qw, qx, qy, qz]`` with canonical quaternion signs (see :data:`geom.DOWNWARD_QUAT`)."""
    poses = np.array(poses, copy=True)
    poses[..., 3:7] = geom.canonical_quaternions(poses[..., 3:7])
    return poses


def image_size_pair(image_size: int | Sequence[int]) -> tuple[int, int]:
    """``(width, height)`` from an int (square) or a ``[width, height]`` pair; raises UsageError (a ValueError)
    otherwise."""
    if isinstance(image_size, int | np.integer) and not isinstance(image_size, bool):
        size = (int(image_size), int(image_size))
    elif isinstance(image_size, Sequence) and not isinstance(image_size, str) and len(image_size) == 2:
        try:
            size = (int(image_size[0]), int(image_size[1]))
        except (TypeError, ValueError):
            raise ValueError(f'image_size must be an int or [width, height], got {image_size!r}') from None
    else:
        raise UsageError(f'image_size must be an int or [width, height], got {image_size!r}')
    if min(size) <= 0 or any(s % 2 for s in size):
        raise UsageError(f'image_size must be positive and even (H.264 needs even sizes), got {image_size!r}')
    return size


@dataclass(frozen=True)
class StatePart:
    """One raw signal's contribution to ``observation.state``: ``key`` (a vector or scalar signal) and the
    names of its dimensions; ``is_pose`` marks a 7-vector pose whose quaternion sign is canonicalized;
    ``limits`` (low, high), when given, bounds every value of a live observation (inclusive)."""

    key: str
    names: tuple[str, ...]
    is_pose: bool = False
    limits: tuple[float, float] | None = None

    def checked(self, value: Any) -> np.ndarray:
        """float64 (n,) of one live value, or InvalidObservationError naming the key: real numbers (ints or floats,
        not bools), n of them (a scalar for a one-name part), finite, within ``limits``, a pose's quaternion
        non-zero."""
        array = np.asarray(value)
        if array.dtype.kind not in REAL_NUMBER_KINDS:
            raise InvalidObservationError(
                f'observation {self.key!r}: expected real numbers, got {type(value).__name__} {reprlib.repr(value)}'
            )
        n = len(self.names)
        if array.shape != (n,) and not (n == 1 and array.shape == ()):
            raise InvalidObservationError(f'observation {self.key!r}: expected {n} values, got shape {array.shape}')
        array = array.astype(np.float64).reshape(n)
        if not np.all(np.isfinite(array)):
            raise InvalidObservationError(f'observation {self.key!r}: values must be finite, got {array.tolist()}')
        if self.limits is not None and not np.all((array >= self.limits[0]) & (array <= self.limits[1])):
            low, high = self.limits
            raise InvalidObservationError(
                f'observation {self.key!r}: expected values in [{low}, {high}], got {array.tolist()}'
            )
        if self.is_pose:
            try:
                geom.normalize_quat(array[3:7])
            except ValueError:
                raise InvalidObservationError(
                    f'observation {self.key!r}: quaternion [qw, qx, qy, qz] = {array[3:7].tolist()} has zero norm'
                ) from None
        return array


GRIP_PART = StatePart(keys.GRIP, (GRIP_NAME,), limits=OBSERVED_GRIP_LIMITS)
"""The measured gripper as one state value (see :data:`OBSERVED_GRIP_LIMITS`)."""


def checked_image(key: str, value: Any) -> np.ndarray:
    """``value`` if it is a uint8 (H, W, 3) image with H, W >= 1; else InvalidObservationError naming ``key``."""
    if is_image(value) and min(value.shape[:2]) >= 1:
        return value
    got = f'{value.dtype} array of shape {value.shape}' if isinstance(value, np.ndarray) else type(value).__name__
    raise InvalidObservationError(f'observation {key!r}: expected a uint8 (H, W, 3) image with H, W >= 1, got {got}')


@dataclass(frozen=True)
class ObservationEncoder:
    """``observation.state`` = the state parts concatenated (float32); each camera feature = its raw image signal
    letterboxed to ``image_size`` = (width, height); ``task`` passed through when present."""

    state: tuple[StatePart, ...]
    cameras: Mapping[str, str]
    """LeRobot feature name -> raw image signal name."""
    image_size: tuple[int, int]

    @property
    def state_dim(self) -> int:
        return sum(len(part.names) for part in self.state)

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (*(part.key for part in self.state), *self.cameras.values())

    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot feature declarations of the encoded observation."""
        width, height = self.image_size
        names = [name for part in self.state for name in part.names]
        features: dict[str, dict[str, Any]] = {
            OBSERVATION_STATE: {'dtype': 'float32', 'shape': [self.state_dim], 'names': names}
        }
        for feature in self.cameras:
            features[feature] = {'dtype': 'video', 'shape': [height, width, 3], 'names': list(IMAGE_AXES)}
        return features

    def encode_state(self, values: Sequence[Any]) -> np.ndarray:
        """float32 (..., S) from one value per state part (each (..., n) or, for scalars, (...))."""
        columns = []
        for part, value in zip(self.state, values, strict=True):
            array = np.asarray(value, dtype=np.float64)
            if len(part.names) == 1 and (array.ndim == 0 or array.shape[-1] != 1):
                array = array[..., None]
            if array.shape[-1] != len(part.names):
                raise ValueError(f'signal {part.key!r}: expected {len(part.names)} values, got shape {array.shape}')
            columns.append(canonical_poses(array) if part.is_pose else array)
        return np.concatenate(columns, axis=-1).astype(np.float32)

    def encode(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """Feature values of one live observation (raw signals keyed as in ``positronic.keys``).

        The observation is checked first: MissingSignalError for an absent signal, InvalidObservationError (naming
        the key) for a state value that is not the right number of finite real values within its part's limits or
        a pose with a zero quaternion, and for a camera frame that is not a non-empty uint8 (H, W, 3) image.
        """
        self._check_keys(observation.keys(), 'observation')
        state = [part.checked(observation[part.key]) for part in self.state]
        images = {feature: checked_image(raw, observation[raw]) for feature, raw in self.cameras.items()}
        encoded: dict[str, Any] = {OBSERVATION_STATE: self.encode_state(state)}
        for feature, image in images.items():
            encoded[feature] = letterbox(image, *self.image_size)
        if keys.TASK in observation:
            encoded[TASK] = str(observation[keys.TASK])
        return encoded

    def _check_keys(self, available: Iterable[str], where: str) -> None:
        available = set(available)
        missing = [k for k in self.raw_keys if k not in available]
        if missing:
            raise MissingSignalError(
                f'{where} lacks {missing} needed by the codec; it has {sorted(available)}; '
                f'the codec reads {list(self.raw_keys)}'
            )


@dataclass(frozen=True)
class AbsolutePoseAction:
    """``action`` = commanded end-effector pose (7, canonical quaternion sign) ‖ commanded gripper (1), absolute;
    decoded into a ``cartesian_pos`` robot command with the quaternion normalized and the gripper target clamped
    to :data:`GRIP_RANGE` [0, 1] (a model predicts slightly past the ends, e.g. 1.0128)."""

    pose_key: str = keys.COMMAND_POSE
    grip_key: str = keys.TARGET_GRIP

    @property
    def raw_keys(self) -> tuple[str, ...]:
        return (self.pose_key, self.grip_key)

    def features(self) -> dict[str, dict[str, Any]]:
        return {ACTION: {'dtype': 'float32', 'shape': [len(ACTION_NAMES)], 'names': list(ACTION_NAMES)}}

    def encode(self, pose: np.ndarray, grip: np.ndarray | float) -> np.ndarray:
        """float32 (..., 8) from poses (..., 7) and gripper targets (...)."""
        grip = np.asarray(grip, dtype=np.float64)[..., None]
        return np.concatenate([canonical_poses(np.asarray(pose, dtype=np.float64)), grip], axis=-1).astype(np.float32)

    def decode(self, action: np.ndarray) -> dict[str, Any]:
        """Wire-form robot command of one model action (8,), the quaternion normalized and ``target_grip`` clamped
        to [0, 1]; raises InvalidActionError on a wrong shape, non-finite values or a zero quaternion."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (len(ACTION_NAMES),):
            raise InvalidActionError(
                f'action must have {len(ACTION_NAMES)} values {list(ACTION_NAMES)}, got {action.shape}'
            )
        if not np.all(np.isfinite(action)):
            raise InvalidActionError(f'action has non-finite values: {action.tolist()}')
        try:
            quat = geom.normalize_quat(action[3:7])
        except ValueError as e:
            raise InvalidActionError(f'action {action.tolist()}: {e}') from None
        grip = float(np.clip(action[7], *GRIP_RANGE))
        return cartesian_action(np.concatenate([action[:3], quat]), grip)


@dataclass(frozen=True)
class ProjectedEpisode:
    """One raw episode projected by a codec on a uniform grid: ``ts_ns`` (T,) int64 sample times, ``frames``
    (feature -> (T, ...) numeric array, or a lazy sequence of T uint8 frames for cameras) and the ``task``."""

    ts_ns: np.ndarray
    frames: dict[str, Any]
    task: str

    def __len__(self) -> int:
        return len(self.ts_ns)


@dataclass(frozen=True)
class Codec:
    """An observation encoder and an action decoder under one name.

    ``name`` is what datasets and checkpoints record (with the image size, see
    ``positronic.vendors.lerobot.codec_spec``): a built-in codec's registered name (``eepose_absolute``), or for a
    codec of your own the import path of its configuronic config (what ``--codec=@<path>`` names). A recorded name
    is rebuilt only when it is registered (``positronic.vendors.lerobot.codecs.REGISTRY``), never imported; another
    codec must be named again on the command line. Every codec config accepts ``image_size``, and the size is also
    visible in the declared camera features.
    """

    name: str
    observation: ObservationEncoder
    action: AbsolutePoseAction = field(default_factory=AbsolutePoseAction)

    @property
    def raw_keys(self) -> tuple[str, ...]:
        """Raw signals conversion needs (observation and action)."""
        return (*self.observation.raw_keys, *self.action.raw_keys)

    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot feature declarations (observation first, then action)."""
        return {**self.observation.features(), **self.action.features()}

    def encode(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """Feature values (no ``action``) of one live observation."""
        return self.observation.encode(observation)

    def decode(self, action: np.ndarray) -> dict[str, Any]:
        """Wire-form robot command of one model action vector (8,)."""
        return self.action.decode(action)

    def decode_chunk(self, actions: np.ndarray) -> list[dict[str, Any]]:
        """Wire-form robot commands of an action chunk (T, 8), oldest first."""
        return [self.decode(a) for a in np.asarray(actions)]

    def project_episode(self, episode: Episode, fps: float, task: str | None = None) -> ProjectedEpisode:
        """Sample ``episode`` at ``fps`` from the latest first sample of the signals this codec reads, up to (not
        including) the episode's last timestamp, taking values at or before each grid time.

        ``task`` overrides the episode's static ``task`` (else ``''`` when it has none). Camera frames come back as
        lazy sequences: decoding and letterboxing happen as they are iterated, in time order.
        """
        if fps <= 0:
            raise ValueError(f'fps must be positive, got {fps}')
        self.observation._check_keys(episode.keys(), f'episode {episode_label(episode)}')
        self._check_action_keys(episode)
        signals: dict[str, Signal] = {k: episode[k] for k in self.raw_keys}
        start = max(int(s.first_ts) for s in signals.values())
        grid = time_grid(start, int(episode.last_ts), 1e9 / fps)
        if len(grid) == 0:
            raise ValueError(
                f'episode {episode_label(episode)} is too short to sample at {fps} fps: its signals overlap only '
                f'from {start} ns to {episode.last_ts} ns'
            )
        state_signal = concat(*(signals[part.key] for part in self.observation.state), dtype=np.float64)
        state_values = state_signal.time[grid].values
        state = self._split_and_encode_state(state_values)
        action = self.action.encode(
            signals[self.action.pose_key].time[grid].values, signals[self.action.grip_key].time[grid].values
        )
        frames: dict[str, Any] = {OBSERVATION_STATE: state, ACTION: action}
        width, height = self.observation.image_size
        for feature, raw in self.observation.cameras.items():
            frames[feature] = letterboxed(signals[raw], width, height).time[grid].values
        if task is None:
            task = episode.static.get(keys.TASK, '')
        return ProjectedEpisode(ts_ns=grid, frames=frames, task=str(task))

    def _split_and_encode_state(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
        parts, offset = [], 0
        for part in self.observation.state:
            parts.append(values[:, offset : offset + len(part.names)])
            offset += len(part.names)
        return self.observation.encode_state(parts)

    def _check_action_keys(self, episode: Episode) -> None:
        missing = [k for k in self.action.raw_keys if k not in episode]
        if missing:
            raise MissingSignalError(
                f'episode {episode_label(episode)} lacks {missing} needed by codec {self.name!r} for the action; '
                f'it has {sorted(episode.keys())}'
            )


def channel_first(shape: Sequence[int]) -> list[int]:
    """A camera feature's shape as the policy declares it, ``[3, H, W]``, from the dataset's ``[H, W, 3]``: the one
    place the two layouts are converted."""
    height, width, channels = shape
    return [int(channels), int(height), int(width)]


def _is_channel_first(feature: Mapping[str, Any]) -> bool:
    """Whether a camera feature is declared policy-style (``type`` VISUAL, or a shape ``[3, H, W]``)."""
    shape = list(feature['shape'])
    return feature.get('type') == 'VISUAL' or (len(shape) == 3 and shape[0] == 3 and shape[2] != 3)


def image_size_of(features: Mapping[str, Mapping[str, Any]]) -> tuple[int, int] | None:
    """``(width, height)`` of the camera features in LeRobot feature declarations (channel-last ``[H, W, 3]``, or
    policy-style ``{"type": "VISUAL", "shape": [3, H, W]}``); None without cameras."""
    for name, feature in features.items():
        if not name.startswith(IMAGE_FEATURE_PREFIX):
            continue
        shape = list(feature['shape'])
        height, width = shape[1:] if _is_channel_first(feature) else shape[:2]
        return int(width), int(height)
    return None


def check_features_match(codec: Codec, features: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Raise CodecMismatchError unless ``features`` (LeRobot dataset features, or policy features from a
    checkpoint's config.json) carry the same keys and shapes as the codec's."""
    expected = codec.features()
    problems = []
    for name, feature in expected.items():
        if name not in features:
            problems.append(f'{name!r} missing')
            continue
        got = list(features[name]['shape'])
        want = list(feature['shape'])
        if features[name].get('type') == 'VISUAL' and len(want) == 3:
            want = channel_first(want)
        if got != want:
            problems.append(f'{name!r} has shape {got}, codec gives {want}')
    relevant = {n for n in features if n.startswith('observation.') or n == ACTION}
    extra = sorted(relevant - set(expected))
    if extra:
        problems.append(f'unexpected features {extra}')
    if problems:
        raise CodecMismatchError(f'codec {codec.name!r} does not match {where}: ' + '; '.join(problems))
