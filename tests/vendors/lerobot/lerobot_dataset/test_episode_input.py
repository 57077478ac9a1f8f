import numpy as np
import pytest

from positronic.vendors.lerobot.lerobot_dataset.episode_input import (
    check_keys,
    checked_frames,
    episode_length,
    numeric_values,
)
from positronic.vendors.lerobot.lerobot_dataset.errors import FeatureMismatchError
from positronic.vendors.lerobot.lerobot_dataset.features import parse_user_features

from .helpers import features

FEATURES = parse_user_features(features())


def test_length_comes_from_arrays_and_sized_sequences_not_iterators():
    frames = {'a': np.zeros((7, 2)), 'b': iter(range(3)), 'c': [0] * 7}
    assert episode_length(frames) == 7
    with pytest.raises(FeatureMismatchError, match='cannot tell the episode length'):
        episode_length({'b': iter(range(3))})
    with pytest.raises(FeatureMismatchError, match='at least one frame'):
        episode_length({'a': np.zeros((0, 2))})


def test_scalars_may_come_as_column_vectors_and_are_cast_to_the_declared_dtype():
    reward = numeric_values(FEATURES['next.reward'], np.ones((5, 1), np.float32), 5)
    assert reward.shape == (5,) and reward.dtype == np.float64
    state = numeric_values(FEATURES['observation.state'], np.ones((5, 4), np.int32), 5)
    assert state.dtype == np.float32
    assert numeric_values(FEATURES['phase'], np.arange(5, dtype=np.uint8), 5).dtype == np.int64


def test_keys_must_match_exactly():
    given = {name: None for name in FEATURES if name != 'phase'} | {'extra': None}
    with pytest.raises(FeatureMismatchError, match=r"missing features \['phase'\], unknown features \['extra'\]"):
        check_keys(given, FEATURES)
    check_keys(dict.fromkeys(FEATURES), FEATURES)


def test_checked_frames_stop_at_the_first_bad_frame():
    camera = FEATURES['observation.images.left']
    good = np.zeros(camera.shape, np.uint8)
    frames = checked_frames(camera, [good, good, good.astype(np.float32)], 3)
    assert [i for i, _ in zip(range(2), frames, strict=False)] == [0, 1]
    with pytest.raises(FeatureMismatchError, match='frame 2: expected uint8 array of shape'):
        next(frames)
