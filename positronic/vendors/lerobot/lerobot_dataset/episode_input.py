"""Validation of what ``DatasetWriter.add_episode`` receives, at the boundary where it enters.

Every error is a FeatureMismatchError naming the feature, the frame where relevant, and what was expected.
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from positronic.vendors.lerobot.lerobot_dataset.errors import FeatureMismatchError
from positronic.vendors.lerobot.lerobot_dataset.features import Feature

EpisodeFrames = Mapping[str, np.ndarray | Iterable[np.ndarray]]
"""Feature name -> the episode's T values: a numeric array (T,) / (T, N), or camera frames as a uint8 array
(T, H, W, 3) or an iterable of T uint8 (H, W, 3) RGB frames. Iterables are consumed once, each from its own worker
thread (so an iterable may decode video or resize while the other cameras encode)."""


def check_keys(frames: Mapping[str, Any], features: Mapping[str, Feature]) -> None:
    """Every declared feature is given, and nothing else."""
    missing, unknown = sorted(set(features) - set(frames)), sorted(set(frames) - set(features))
    if missing or unknown:
        raise FeatureMismatchError(
            f'episode frames: missing features {missing}, unknown features {unknown}; expected {sorted(features)}'
        )


def _known_length(values: Any) -> int | None:
    if isinstance(values, np.ndarray):
        return len(values) if values.ndim else None
    return len(values) if hasattr(values, '__len__') else None


def episode_length(frames: Mapping[str, Any]) -> int:
    """T, the number of frames, from the features given as arrays (or sized sequences); they must agree."""
    lengths = {name: n for name, values in frames.items() if (n := _known_length(values)) is not None}
    if not lengths:
        raise FeatureMismatchError('cannot tell the episode length: give at least one feature as an array')
    if len(set(lengths.values())) != 1:
        raise FeatureMismatchError(f'features have different numbers of frames: {lengths}')
    length = next(iter(lengths.values()))
    if length < 1:
        raise FeatureMismatchError(f'an episode needs at least one frame, got {lengths}')
    return length


def numeric_values(feature: Feature, raw: Any, length: int) -> np.ndarray:
    """One numeric feature's values cast to its dtype: (T,) for shape [1] (also given as (T, 1)), else (T, N).

    Float features accept any real numbers (finite only); integer features accept integers only.
    """
    values = np.asarray(raw)
    scalar = feature.shape == (1,)
    if scalar and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    want = (length,) if scalar else (length, feature.shape[0])
    if values.shape != want:
        expected = f'({length},) or ({length}, 1)' if scalar else str(want)
        raise FeatureMismatchError(f'feature {feature.name!r}: expected shape {expected}, got {values.shape}')
    if values.dtype.kind not in ('iu' if feature.is_integer else 'fiu'):
        raise FeatureMismatchError(
            f'feature {feature.name!r}: expected {feature.dtype}-compatible values, got dtype {values.dtype}'
        )
    if values.dtype.kind == 'f' and not np.isfinite(values).all():
        bad = int(np.argwhere(~np.isfinite(values.reshape(length, -1)))[0, 0])
        raise FeatureMismatchError(f'feature {feature.name!r}: non-finite value at frame {bad}')
    return values.astype(feature.dtype, copy=False)


def check_video_array(feature: Feature, frames: np.ndarray, length: int) -> None:
    """A whole episode of one camera given as an array must be uint8 (T, H, W, 3)."""
    expected = (length, *feature.shape)
    if frames.shape != expected or frames.dtype != np.uint8:
        raise FeatureMismatchError(
            f'feature {feature.name!r}: expected uint8 frames of shape {expected}, got {frames.dtype} {frames.shape}'
        )


def checked_frames(feature: Feature, frames: Iterable[np.ndarray], length: int) -> Iterator[tuple[int, np.ndarray]]:
    """(index, frame) pairs of exactly ``length`` uint8 (H, W, 3) frames; raises at the first frame that is not."""
    count = 0
    for frame in frames:
        if count == length:
            raise FeatureMismatchError(f'feature {feature.name!r}: more than {length} frames')
        if not isinstance(frame, np.ndarray) or frame.shape != feature.shape or frame.dtype != np.uint8:
            got = f'{frame.dtype} {frame.shape}' if isinstance(frame, np.ndarray) else type(frame).__name__
            raise FeatureMismatchError(
                f'feature {feature.name!r} frame {count}: expected uint8 array of shape {feature.shape}, got {got}'
            )
        yield count, frame
        count += 1
    if count != length:
        raise FeatureMismatchError(f'feature {feature.name!r}: {count} frames, expected {length}')
