from pathlib import Path

import pytest

from positronic.vendors.lerobot.lerobot_dataset import AV1_LEROBOT, H264, DatasetReader, VideoEncoding
from positronic.vendors.lerobot.lerobot_dataset.append_check import check_append
from positronic.vendors.lerobot.lerobot_dataset.errors import IncompatibleAppendError
from positronic.vendors.lerobot.lerobot_dataset.features import parse_user_features
from positronic.vendors.lerobot.lerobot_dataset.format import DEFAULT_FEATURES
from positronic.vendors.lerobot.lerobot_dataset.reader import read_positronic_meta

from .helpers import FPS, features, write_dataset

LEROBOT_FIXTURE = Path(__file__).parent / 'fixtures' / 'lerobot_044_tiny'


def _user_features(reader: DatasetReader) -> dict:
    return {n: f for n, f in reader.features.items() if n not in DEFAULT_FEATURES}


def test_encoding_defaults_to_what_the_dataset_recorded(tmp_path):
    custom = VideoEncoding(preset='ultrafast', crf=28)
    write_dataset(tmp_path / 'ds', (3,), ('a',), video=custom)
    reader = DatasetReader(tmp_path / 'ds')
    chosen = check_append(reader, parse_user_features(features()), FPS, None, read_positronic_meta(reader.root))
    assert chosen == custom


def test_encoding_of_a_lerobot_dataset_follows_its_codec(tmp_path):
    reader = DatasetReader(LEROBOT_FIXTURE)
    user = _user_features(reader)
    assert check_append(reader, user, FPS, None, {}) == AV1_LEROBOT
    with pytest.raises(IncompatibleAppendError, match="is av1/yuv420p, got encoder 'libx264'"):
        check_append(reader, user, FPS, H264, {})
