"""The state-sensitivity diagnostic: how far a checkpoint's first and last actions follow a moved end-effector pose."""

import numpy as np
import pytest
import torch

from positronic.vendors.lerobot.codecs import joints_absolute
from positronic.vendors.lerobot.training.train import train

from ..raw_episodes import write_dataset
from ..vendors.lerobot.tiny_dataset import IMAGE_SIDE, write_tiny_dataset
from ..vendors.lerobot.training.test_train import TINY_ACT
from .test_first_chunk_error import EXPERIMENTS_DIR


@pytest.fixture
def state_sensitivity(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS_DIR))
    import state_sensitivity

    return state_sensitivity


def _checkpoint(tmp_path, codec=None):
    torch.set_num_threads(1)
    dataset = write_tiny_dataset(tmp_path / 'dataset', codec=codec)
    settings = {**TINY_ACT, 'policy.chunk_size': 4, 'policy.n_action_steps': 4}
    experiment = train(
        input_path=str(dataset), exp_name='exp', output_dir=str(tmp_path), num_train_steps=2, batch_size=4, **settings
    )
    return experiment / 'checkpoints' / '000002' / 'pretrained_model'


def test_each_episode_is_probed_at_the_times_it_reaches_with_a_gain_per_axis(state_sensitivity, tmp_path):
    pretrained = _checkpoint(tmp_path)
    episodes = write_dataset(tmp_path / 'recorded', num_episodes=2, duration_s=1.0)
    rows = state_sensitivity.sensitivities(pretrained, episodes, [0.2, 0.6, 5.0], 0.02, episodes=10, failed_only=False)
    assert [(r['episode'], r['t_s']) for r in rows] == [(0, 0.2), (0, 0.6), (1, 0.2), (1, 0.6)]  # 5 s is past the end
    for row in rows:
        assert row['first'].shape == row['last'].shape == (3,)
        assert np.isfinite(row['first']).all() and np.isfinite(row['last']).all()
    assert not np.allclose([r['first'] for r in rows], 0)  # the state reaches the actions
    again = state_sensitivity.sensitivities(pretrained, episodes, [0.2], 0.02, episodes=1, failed_only=False)
    np.testing.assert_array_equal(again[0]['first'], rows[0]['first'])


def test_a_checkpoint_without_the_end_effector_pose_in_its_state_is_refused(state_sensitivity, tmp_path):
    pretrained = _checkpoint(tmp_path, codec=joints_absolute.override(image_size=IMAGE_SIDE).instantiate())
    episodes = write_dataset(tmp_path / 'recorded', num_episodes=1, duration_s=1.0)
    with pytest.raises(SystemExit, match=r'has no robot_state\.ee_pose in its state'):
        state_sensitivity.sensitivities(pretrained, episodes, [0.2], 0.02, episodes=1, failed_only=False)
