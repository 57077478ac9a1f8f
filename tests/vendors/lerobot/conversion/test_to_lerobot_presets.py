import pytest

from positronic.dataset import NotADatasetError
from positronic.vendors.lerobot.conversion.to_lerobot_presets import encoded, local
from tests.raw_episodes import write_dataset


def test_local_expands_home_and_encoded_defaults_to_eepose_absolute(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    write_dataset(tmp_path / 'raw', num_episodes=1, duration_s=0.2)
    dataset = encoded.override(**{'dataset.path': '~/raw'}).instantiate()
    assert dataset.dataset.root == tmp_path / 'raw' and len(dataset) == 1
    assert dataset.codec.name == 'eepose_absolute' and dataset.codec.observation.image_size == (480, 480)
    small = encoded.override(**{'dataset.path': '~/raw', 'codec.image_size': 96}).instantiate()
    assert small.codec.observation.image_size == (96, 96)


def test_a_missing_path_is_not_a_dataset(tmp_path):
    with pytest.raises(NotADatasetError, match='missing'):
        local(path=tmp_path / 'absent')
