import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import safetensors.torch
import torch

from positronic.vendors.lerobot.codecs import joints_absolute
from positronic.vendors.lerobot.training import checkpoint as ckpt


def _model_and_optimizer(seed: int = 0) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    groups = [
        {'params': list(model[0].parameters())},
        {'params': list(model[2].parameters()), 'lr': 1e-3},
    ]
    return model, torch.optim.AdamW(groups, lr=1e-2, weight_decay=1e-4)


def _train(model, optimizer, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        x = torch.randn(16, 4)
        noisy = torch.nn.functional.dropout(model(x), p=0.2)
        loss = (noisy - x[:, :2]).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def _weights_writer(model):
    def write(directory):
        safetensors.torch.save_model(model, str(directory / 'model.safetensors'))

    return write


def test_step_dir_name_has_six_digits():
    assert ckpt.step_dir_name(500) == '000500'
    assert ckpt.step_dir_name(1_234_567) == '1234567'
    with pytest.raises(ValueError, match='step'):
        ckpt.step_dir_name(-1)


def test_save_checkpoint_writes_lerobot_layout_and_relative_last_link(tmp_path):
    model, optimizer = _model_and_optimizer()
    _train(model, optimizer, 2)
    exp = tmp_path / 'exp'
    for step in (2, 4):
        ckpt.save_checkpoint(exp, step, _weights_writer(model), optimizer)

    root = exp / 'checkpoints'
    assert sorted(p.name for p in root.iterdir()) == ['000002', '000004', 'last']
    assert os.readlink(root / 'last') == '000004'
    state = root / '000004' / 'training_state'
    assert sorted(p.name for p in state.iterdir()) == [
        'optimizer_param_groups.json',
        'optimizer_state.safetensors',
        'rng_state.safetensors',
        'training_step.json',
    ]
    assert json.loads((state / 'training_step.json').read_text()) == {'step': 4}
    flat = safetensors.torch.load_file(state / 'optimizer_state.safetensors')
    assert set(flat) == {f'state/{i}/{name}' for i in range(4) for name in ('exp_avg', 'exp_avg_sq', 'step')}
    assert flat['state/0/step'].shape == () and flat['state/0/step'].dtype == torch.float32
    groups = json.loads((state / 'optimizer_param_groups.json').read_text())
    assert [g['params'] for g in groups] == [[0, 1], [2, 3]]
    assert [g['lr'] for g in groups] == [1e-2, 1e-3]
    rng = safetensors.torch.load_file(state / 'rng_state.safetensors')
    assert rng['py_rng_state'].shape == (625,) and rng['np_rng_state_values'].shape == (624,)
    assert rng['torch_rng_state'].dtype == torch.uint8


def test_failed_write_leaves_previous_checkpoints_untouched(tmp_path):
    model, optimizer = _model_and_optimizer()
    exp = tmp_path / 'exp'
    ckpt.save_checkpoint(exp, 1, _weights_writer(model), optimizer)

    def failing(directory):
        (directory / 'config.json').write_text('{}')
        raise OSError('disk full')

    with pytest.raises(OSError, match='disk full'):
        ckpt.save_checkpoint(exp, 2, failing, optimizer)
    root = exp / 'checkpoints'
    assert sorted(p.name for p in root.iterdir()) == ['000001', 'last']
    assert os.readlink(root / 'last') == '000001'


def test_existing_step_is_never_overwritten(tmp_path):
    model, optimizer = _model_and_optimizer()
    ckpt.save_checkpoint(tmp_path, 3, _weights_writer(model), optimizer)
    with pytest.raises(ckpt.CheckpointError, match='000003 already exists'):
        ckpt.save_checkpoint(tmp_path, 3, _weights_writer(model), optimizer)


def test_list_checkpoints_accepts_experiment_checkpoints_step_and_pretrained_dirs(tmp_path):
    model, optimizer = _model_and_optimizer()
    exp = tmp_path / 'exp'
    for step in (10, 2, 30):
        ckpt.save_checkpoint(exp, step, _weights_writer(model), optimizer)
    root = exp / 'checkpoints'
    expected = {s: root / ckpt.step_dir_name(s) / 'pretrained_model' for s in (2, 10, 30)}

    assert ckpt.list_checkpoints(exp) == expected
    assert list(ckpt.list_checkpoints(exp)) == [2, 10, 30]
    assert ckpt.list_checkpoints(root) == expected
    assert ckpt.list_checkpoints(root / '000010') == {10: expected[10]}
    assert ckpt.list_checkpoints(root / '000010' / 'pretrained_model') == {10: expected[10]}
    assert list(ckpt.list_checkpoints(root / 'last')) == [30]
    assert ckpt.latest_step_dir(exp) == root / '000030'
    (tmp_path / 'empty_exp').mkdir()
    assert ckpt.list_checkpoints(tmp_path / 'empty_exp') == {}
    with pytest.raises(FileNotFoundError, match='missing'):
        ckpt.list_checkpoints(tmp_path / 'missing')


def test_codec_record_round_trip_and_absence(tmp_path):
    codec = joints_absolute.override(image_size=[96, 64]).instantiate()
    ckpt.write_codec_record(tmp_path, codec)
    assert ckpt.read_codec_record(tmp_path) == {'version': 1, 'name': 'joints_absolute', 'image_size': [96, 64]}
    assert ckpt.read_codec_record(tmp_path / 'elsewhere') is None
    (tmp_path / ckpt.CODEC_FILE).write_text('not json')
    with pytest.raises(ckpt.CheckpointError, match=r'positronic_codec\.json is not valid JSON'):
        ckpt.read_codec_record(tmp_path)


def test_resumed_training_continues_exactly(tmp_path):
    model, optimizer = _model_and_optimizer()
    torch.manual_seed(7)
    straight = _train(model, optimizer, 6)

    model, optimizer = _model_and_optimizer()
    torch.manual_seed(7)
    first = _train(model, optimizer, 3)
    step_dir = ckpt.save_checkpoint(tmp_path, 3, _weights_writer(model), optimizer)
    torch.manual_seed(999)
    random.seed(999)
    np.random.seed(999)

    resumed_model, resumed_optimizer = _model_and_optimizer(seed=123)
    safetensors.torch.load_model(resumed_model, str(step_dir / 'pretrained_model' / 'model.safetensors'))
    step = ckpt.load_training_state(step_dir / 'training_state', resumed_optimizer)
    assert step == 3
    assert resumed_optimizer.param_groups[1]['betas'] == optimizer.param_groups[1]['betas']
    assert first + _train(resumed_model, resumed_optimizer, 3) == straight


def test_rng_state_restores_python_numpy_and_torch():
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    np.random.standard_normal()  # leaves a cached gaussian in numpy's legacy state
    state = ckpt.capture_rng_state()
    expected = (random.random(), np.random.random(3).tolist(), torch.rand(3).tolist())
    ckpt.restore_rng_state(state)
    assert (random.random(), np.random.random(3).tolist(), torch.rand(3).tolist()) == expected


def test_param_group_mismatch_is_a_clear_error(tmp_path):
    model, optimizer = _model_and_optimizer()
    step_dir = ckpt.save_checkpoint(tmp_path, 1, _weights_writer(model), optimizer)
    single_group = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with pytest.raises(ckpt.CheckpointError, match='2 parameter groups saved, the optimizer has 1'):
        ckpt.load_training_state(step_dir / 'training_state', single_group)
    (step_dir / 'training_state' / 'training_step.json').unlink()
    with pytest.raises(ckpt.CheckpointError, match=r'missing training_step\.json'):
        ckpt.load_training_state(step_dir / 'training_state', optimizer)


def test_other_ranks_rng_states_are_saved_beside_rank_zero(tmp_path):
    model, optimizer = _model_and_optimizer()
    torch.manual_seed(10)
    rank0 = ckpt.capture_rng_state()
    torch.manual_seed(11)
    rank1 = ckpt.capture_rng_state()
    step_dir = ckpt.save_checkpoint(tmp_path, 1, _weights_writer(model), optimizer, rng_states=[rank0, rank1])
    assert (step_dir / 'training_state' / 'rng_state_rank1.safetensors').is_file()
    ckpt.load_training_state(step_dir / 'training_state', optimizer, rank=1)
    after_rank1 = torch.rand(2)
    torch.manual_seed(11)
    assert torch.equal(after_rank1, torch.rand(2))


KILLED_SAVE = """
import os, sys
import torch
from positronic.vendors.lerobot.training import checkpoint as ckpt

model = torch.nn.Linear(2, 2)
optimizer = torch.optim.AdamW(model.parameters())


def write_then_die(directory):
    (directory / 'model.safetensors').write_bytes(bytes(1 << 20))
    os._exit(3)  # killed in the middle of the save: no cleanup runs


ckpt.save_checkpoint(sys.argv[1], 10, write_then_die, optimizer)
"""


def test_a_save_removes_what_a_killed_save_left_but_not_a_live_ones(tmp_path, capsys):
    exp = tmp_path / 'exp'
    killed = subprocess.run([sys.executable, '-c', KILLED_SAVE, str(exp)], capture_output=True, text=True)
    assert killed.returncode == 3, killed.stderr
    root = exp / 'checkpoints'
    [leftover] = [p.name for p in root.iterdir()]
    assert leftover.startswith('.tmp-000010-')  # 1 MiB of a half-written model, kept forever before
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        (root / f'.tmp-000020-{live.pid}').mkdir()  # a save in progress in another process
        model, optimizer = _model_and_optimizer()
        ckpt.save_checkpoint(exp, 30, _weights_writer(model), optimizer)
        assert sorted(p.name for p in root.iterdir()) == [f'.tmp-000020-{live.pid}', '000030', 'last']
        assert f'removed what interrupted checkpoint saves left in {root}: {leftover}' in capsys.readouterr().out
    finally:
        live.kill()
        live.wait()
