import json

import pyarrow as pa
import pytest

from positronic.vendors.lerobot.lerobot_dataset.errors import FeatureSpecError
from positronic.vendors.lerobot.lerobot_dataset.features import (
    HF_METADATA_KEY,
    data_schema,
    parse_user_features,
    with_defaults,
)

from .helpers import features


def test_defaults_follow_user_features_in_lerobot_order():
    names = list(with_defaults(parse_user_features(features())))
    assert names[-5:] == ['timestamp', 'frame_index', 'episode_index', 'index', 'task_index']
    assert names[:4] == ['observation.state', 'action', 'next.reward', 'phase']


def test_data_schema_excludes_videos_and_uses_fixed_size_lists_and_scalars():
    schema = data_schema(with_defaults(parse_user_features(features())))
    assert schema.names == [
        'observation.state', 'action', 'next.reward', 'phase',
        'timestamp', 'frame_index', 'episode_index', 'index', 'task_index',
    ]  # fmt: skip
    assert schema.field('observation.state').type == pa.list_(pa.field('element', pa.float32()), 4)
    assert schema.field('next.reward').type == pa.float64()
    assert schema.field('timestamp').type == pa.float32()
    assert schema.field('index').type == pa.int64()
    hf = json.loads(schema.metadata[HF_METADATA_KEY])['info']['features']
    assert hf['action'] == {'feature': {'dtype': 'float32', '_type': 'Value'}, 'length': 4, '_type': 'List'}
    assert hf['timestamp'] == {'dtype': 'float32', '_type': 'Value'}


def test_video_names_default_to_height_width_channels():
    parsed = parse_user_features({'cam': {'dtype': 'video', 'shape': [4, 6, 3]}})
    assert parsed['cam'].names == ['height', 'width', 'channels']


@pytest.mark.parametrize(
    'declared, match',
    [
        ({}, 'non-empty mapping'),
        ({'a/b': {'dtype': 'float32', 'shape': [2]}}, 'without "/"'),
        ({'x': {'dtype': 'string', 'shape': [1]}}, "dtype 'string' is not supported"),
        ({'x': {'dtype': 'float32', 'shape': [2, 2]}}, r'shape \[N\]'),
        ({'x': {'dtype': 'float32', 'shape': [0]}}, 'positive sizes'),
        ({'x': {'dtype': 'float32', 'shape': [2], 'names': ['a']}}, '1 names for shape'),
        ({'x': {'dtype': 'float32'}}, '"dtype" and "shape"'),
        ({'cam': {'dtype': 'video', 'shape': [48, 64]}}, r'\[height, width, 3\]'),
        ({'cam': {'dtype': 'video', 'shape': [47, 64, 3]}}, 'must be even'),
        ({'cam': {'dtype': 'video', 'shape': [48, 64, 3], 'names': ['h', 'w', 'c']}}, 'names must be'),
        ({'timestamp': {'dtype': 'float32', 'shape': [1]}}, 'added automatically'),
    ],
)
def test_invalid_declarations_name_the_feature_and_what_was_expected(declared, match):
    with pytest.raises(FeatureSpecError, match=match):
        parse_user_features(declared)
