"""The first-chunk diagnostic: it compares a checkpoint's chunks with the recorded actions, episode by episode."""

from pathlib import Path

import numpy as np
import pytest
import torch

from positronic.vendors.lerobot.training.train import train
from positronic.vendors.lerobot.training.train_log import read_metrics

from ..vendors.lerobot.tiny_dataset import LENGTHS, write_tiny_dataset
from ..vendors.lerobot.training.test_train import TINY_ACT

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / 'experiments'


@pytest.fixture
def first_chunk_error(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS_DIR))
    import first_chunk_error

    return first_chunk_error


def test_errors_are_measured_per_episode_where_the_chunk_fits(first_chunk_error, tmp_path):
    torch.set_num_threads(1)
    dataset = write_tiny_dataset(tmp_path / 'dataset')
    settings = {**TINY_ACT, 'policy.chunk_size': 4, 'policy.n_action_steps': 4}
    experiment = train(
        input_path=str(dataset), exp_name='exp', output_dir=str(tmp_path), num_train_steps=2, batch_size=4, **settings
    )
    assert len(read_metrics(experiment)) == 2
    pretrained = experiment / 'checkpoints' / '000002' / 'pretrained_model'
    errors = first_chunk_error.end_of_chunk_errors(pretrained, dataset, tmp_path / 'cache', episodes=3)
    assert sorted(errors) == [0, 10, 20]
    assert len(errors[0]) == len(LENGTHS)  # every episode has frames 0..3
    assert len(errors[10]) == sum(length >= 14 for length in LENGTHS)  # only the 14-frame episode reaches frame 13
    assert len(errors[20]) == 0
    assert np.isfinite(errors[0]).all() and (errors[0] > 0).all()
