"""The cube-pose oracle diagnostic: it learns one demonstration well enough to stack on that layout, and a saved
policy evaluates the same after loading."""

from pathlib import Path

import pytest

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / 'experiments'


@pytest.fixture
def oracle_state(monkeypatch):
    monkeypatch.syspath_prepend(str(EXPERIMENTS_DIR))
    import oracle_state

    return oracle_state


def test_an_oracle_trained_on_one_demonstration_stacks_on_its_layout(oracle_state, tmp_path, capsys):
    saved = tmp_path / 'oracle.pt'
    common = ['--train-eval-seeds=1', '--eval-seeds=1', '--sim-seconds=10', '--actions-per-query', '20']
    # 400 steps stacked on one host's CPU and not on another's (float kernels differ); 800 leaves a margin
    rows = oracle_state.main(['--demos=1', '--steps=800', '--batch=16', '--dim=64', f'--save={saved}', *common])
    assert rows[0][:2] == (20, 1)  # training seed 0 stacked
    assert '| 20 | 1/1 |' in capsys.readouterr().out
    assert oracle_state.main([f'--load={saved}', *common]) == rows
