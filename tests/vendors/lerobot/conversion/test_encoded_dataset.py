import pytest

from positronic import keys
from positronic.dataset import LocalDataset
from positronic.vendors.lerobot.codec import MissingSignalError
from positronic.vendors.lerobot.codecs import eepose_absolute, joints_absolute
from positronic.vendors.lerobot.conversion.encoded_dataset import EncodedDataset, MissingTaskError
from tests.raw_episodes import TASK, write_dataset


def test_projects_episodes_with_the_codec_and_declares_its_features(tmp_path):
    codec = joints_absolute.override(image_size=32).instantiate()
    encoded = EncodedDataset(LocalDataset(write_dataset(tmp_path, num_episodes=2, duration_s=0.5)), codec)
    assert len(encoded) == 2 and encoded.features() == codec.features()
    projected = encoded.project(1, fps=10)
    assert len(projected) == 5 and projected.task == TASK
    assert encoded.project(0, fps=10, task='other').task == 'other'


def test_check_names_the_episode_the_missing_signals_and_the_codec(tmp_path):
    raw = LocalDataset(write_dataset(tmp_path, num_episodes=1, skip=(keys.ROBOT_EE_POSE, keys.TARGET_GRIP)))
    with pytest.raises(MissingSignalError, match=r"\['robot_state.ee_pose', 'target_grip'\].*'eepose_absolute'") as e:
        EncodedDataset(raw, eepose_absolute.instantiate()).check()
    assert str(raw[0].path) in str(e.value)


def test_check_requires_a_task_unless_one_overrides_it(tmp_path):
    encoded = EncodedDataset(LocalDataset(write_dataset(tmp_path, num_episodes=1, task=None)), eepose_absolute())
    with pytest.raises(MissingTaskError, match='no static'):
        encoded.check()
    encoded.check(task='stack')
