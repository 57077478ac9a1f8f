"""positronic-quickstart: the README's main job runs every stage's real command, end to end, at a tiny scale."""

import json

import pytest

from positronic import quickstart
from positronic.dataset import LocalDataset
from positronic.vendors.lerobot.checkpoint import list_checkpoints
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader


@pytest.mark.slow
def test_the_loop_records_converts_trains_serves_and_evaluates(tmp_path, capfd):
    quickstart.main(
        [
            f'--workdir={tmp_path}',
            '--num_episodes=2',
            '--camera_size=[96,72]',
            '--image_size=64',
            '--num_train_steps=3',
            '--batch_size=4',
            '--chunk_size=5',
            '--dim_model=32',
            '--eval_iterations=1',
            '--simulation_time=2',
        ]
    )
    (run_dir,) = tmp_path.iterdir()
    assert len(LocalDataset(run_dir / 'raw')) == 2
    assert DatasetReader(run_dir / 'lerobot').total_episodes == 2
    assert list(list_checkpoints(run_dir / 'checkpoints' / quickstart.EXPERIMENT)) == [3]
    summary = json.loads((run_dir / 'evaluation' / 'summary.json').read_text())
    assert len(summary['iterations']) == 1
    assert len(LocalDataset(run_dir / 'evaluation')) == 1
    out = capfd.readouterr().out
    assert 'success rate' in out and str(run_dir / 'evaluation') in out


def test_evaluation_seeds_must_not_overlap_the_demonstration_seeds(tmp_path):
    with pytest.raises(ValueError, match='overlap the demonstration seeds'):
        quickstart.main([f'--workdir={tmp_path}', '--num_episodes=10', '--seed=0', '--eval_seed=5'])
    assert not any(tmp_path.iterdir())


def test_a_stage_that_fails_stops_the_run_with_its_command(tmp_path, monkeypatch):
    monkeypatch.setattr(quickstart, 'console_script', lambda name: 'false')
    with pytest.raises(SystemExit, match=r'stage .*record.* failed with exit code 1'):
        quickstart.main([f'--workdir={tmp_path}'])
