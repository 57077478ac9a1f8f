import dataclasses
import errno
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from positronic.command import DATA_ERROR_EXIT_CODE, USAGE_ERROR_EXIT_CODE, UsageError
from positronic.vendors.lerobot.act import ACTPolicy, ConfigError
from positronic.vendors.lerobot.act.backbone import BackboneWeightsError
from positronic.vendors.lerobot.act.normalize import load_processors
from positronic.vendors.lerobot.codec import CodecMismatchError, UnknownCodecError
from positronic.vendors.lerobot.codec_spec import dataset_codec
from positronic.vendors.lerobot.codecs import eepose_absolute, joints_absolute
from positronic.vendors.lerobot.device import resolve_device
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader, VideoEncoding
from positronic.vendors.lerobot.training import checkpoint
from positronic.vendors.lerobot.training.checkpoint import list_checkpoints, read_codec_record
from positronic.vendors.lerobot.training.lr_schedule import lr_factor
from positronic.vendors.lerobot.training.precision import cpu_computes
from positronic.vendors.lerobot.training.train import (
    DATASET_FILES,
    RUN_FILE,
    ExperimentExistsError,
    ResumeRefusedError,
    TrainSettings,
    main,
    policy_config,
    train,
)
from positronic.vendors.lerobot.training.train_log import NonFiniteLossError, WandbMissingError, read_metrics
from tests.command_lines import reported_error, tree_state

from ..tiny_dataset import LENGTHS, tiny_codec, write_tiny_dataset

TINY_ACT = {
    'policy.dim_model': 32,
    'policy.n_heads': 2,
    'policy.dim_feedforward': 64,
    'policy.n_encoder_layers': 1,
    'policy.n_vae_encoder_layers': 1,
    'policy.latent_dim': 8,
    'policy.chunk_size': 5,
    'policy.n_action_steps': 5,
    'policy.pretrained_backbone_weights': None,
    'policy.optimizer_lr': 1e-3,
    'policy.optimizer_lr_backbone': 1e-3,
}


OLD_RUN_JSON = """
{
    "dataset": {
        "root": "<dataset>",
        "total_frames": 34
    },
    "codec": {
        "codec": "positronic.vendors.lerobot.codecs.eepose_absolute",
        "image_size": [
            32,
            32
        ]
    },
    "policy": {
        "type": "act",
        "n_obs_steps": 1,
        "use_amp": false,
        "use_peft": false,
        "push_to_hub": true,
        "repo_id": null,
        "private": null,
        "tags": null,
        "license": null,
        "chunk_size": 5,
        "n_action_steps": 5,
        "normalization_mapping": {
            "VISUAL": "MEAN_STD",
            "STATE": "MEAN_STD",
            "ACTION": "MEAN_STD"
        },
        "vision_backbone": "resnet18",
        "pretrained_backbone_weights": null,
        "replace_final_stride_with_dilation": false,
        "pre_norm": false,
        "dim_model": 32,
        "n_heads": 2,
        "dim_feedforward": 64,
        "feedforward_activation": "relu",
        "n_encoder_layers": 1,
        "n_decoder_layers": 1,
        "use_vae": true,
        "latent_dim": 8,
        "n_vae_encoder_layers": 1,
        "temporal_ensemble_coeff": null,
        "dropout": 0.1,
        "kl_weight": 10.0,
        "optimizer_lr": 0.001,
        "optimizer_weight_decay": 0.0001,
        "optimizer_lr_backbone": 0.001
    },
    "batch_size": 4,
    "seed": 1000,
    "world_size": 1,
    "precision": "auto",
    "train_batchnorm": false,
    "random_shift": 0
}
"""
"""run.json of a TINY_ACT run as the trainer wrote it before TrainSettings (commit ca9a8f2), without the per-file
stamps (they depend on the machine)."""


@pytest.fixture(scope='module', autouse=True)
def one_torch_thread():
    """Train on one thread: tiny models gain nothing from two, and lose a lot when other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp('train') / 'dataset')


def _train(dataset: Path, output: Path, exp_name: str = 'exp', **kwargs) -> Path:
    settings = {'num_train_steps': 6, 'save_freq': 3, 'log_freq': 3, 'batch_size': 4, **TINY_ACT, **kwargs}
    return train(input_path=str(dataset), exp_name=exp_name, output_dir=str(output), **settings)


@pytest.fixture(scope='module')
def trained(dataset, tmp_path_factory) -> Path:
    """A 30-step run of a tiny ACT, checkpoints every 10 steps."""
    output = tmp_path_factory.mktemp('trained')
    return _train(dataset, output, num_train_steps=30, save_freq=10, log_freq=10, batch_size=8)


def test_loss_falls(trained):
    rows = read_metrics(trained)
    assert [r['step'] for r in rows] == list(range(1, 31))
    loss = np.array([r['loss'] for r in rows])
    assert np.isfinite(loss).all()
    assert loss[-5:].mean() < 0.5 * loss[:5].mean()
    assert all(r['samples_per_s'] > 0 and 0 <= r['data_s'] <= r['step_s'] for r in rows)
    assert (trained / 'loss_curve.png').stat().st_size > 1000


def test_checkpoints_are_laid_out_as_lerobot_and_load_back(trained, dataset):
    root = trained / 'checkpoints'
    assert sorted(p.name for p in root.iterdir()) == ['000010', '000020', '000030', 'last']
    assert os.readlink(root / 'last') == '000030'
    pretrained = list_checkpoints(trained)[30]
    assert sorted(p.name for p in pretrained.iterdir()) == [
        'config.json',
        'model.safetensors',
        'policy_postprocessor.json',
        'policy_postprocessor_step_0_unnormalizer_processor.safetensors',
        'policy_preprocessor.json',
        'policy_preprocessor_step_3_normalizer_processor.safetensors',
        'positronic_codec.json',
    ]
    assert json.loads((root / '000030' / 'training_state' / 'training_step.json').read_text()) == {'step': 30}
    assert read_codec_record(pretrained) == {'version': 1, 'name': 'eepose_absolute', 'image_size': [32, 32]}
    assert json.loads((trained / 'run.json').read_text())['codec'] == read_codec_record(pretrained)

    policy = ACTPolicy.from_pretrained(pretrained)
    config = json.loads((pretrained / 'config.json').read_text())
    assert config['type'] == 'act' and config['chunk_size'] == 5 and config['device'] == 'cpu'
    assert list(config['input_features']) == [
        'observation.state',
        'observation.images.left',
        'observation.images.side',
    ]
    processors = load_processors(pretrained)
    reader = DatasetReader(dataset)
    image = torch.from_numpy(reader.decode_episode('observation.images.left', 0)[:1]).permute(0, 3, 1, 2) / 255
    side = torch.from_numpy(reader.decode_episode('observation.images.side', 0)[:1]).permute(0, 3, 1, 2) / 255
    state = reader.read_episode(0, ['observation.state'])['observation.state'][:1].copy()
    raw = {
        'observation.state': torch.from_numpy(state),
        'observation.images.left': image.float(),
        'observation.images.side': side.float(),
    }
    chunk = processors.unnormalize_action(policy.predict_action_chunk(processors.normalize(raw)))
    assert chunk.shape == (1, 5, 8) and torch.isfinite(chunk).all()


def test_existing_experiment_is_refused_without_resume(trained, dataset):
    before = sorted(p.name for p in (trained / 'checkpoints').iterdir())
    with pytest.raises(ExperimentExistsError, match='--resume=True'):
        _train(dataset, trained.parent, exp_name=trained.name)
    assert sorted(p.name for p in (trained / 'checkpoints').iterdir()) == before


def test_resume_continues_the_loss_curve_exactly(dataset, tmp_path):
    straight = _train(dataset, tmp_path, 'straight', num_train_steps=6)
    _train(dataset, tmp_path, 'broken', num_train_steps=3)
    resumed = _train(dataset, tmp_path, 'broken', num_train_steps=6, resume=True)

    straight_rows, resumed_rows = read_metrics(straight), read_metrics(resumed)
    assert [r['step'] for r in resumed_rows] == list(range(1, 7))
    assert [r['loss'] for r in resumed_rows] == [r['loss'] for r in straight_rows]
    final = 'checkpoints/000006/pretrained_model/model.safetensors'
    assert (straight / final).read_bytes() == (resumed / final).read_bytes()


def test_resume_needs_a_checkpoint_and_the_same_policy(dataset, tmp_path):
    with pytest.raises(ResumeRefusedError, match='no checkpoint to resume from'):
        _train(dataset, tmp_path, 'nothing', resume=True)
    _train(dataset, tmp_path, 'short', num_train_steps=1)
    with pytest.raises(ResumeRefusedError, match='another policy'):
        _train(dataset, tmp_path, 'short', num_train_steps=2, resume=True, **{'policy.dim_feedforward': 48})


def test_resume_on_a_dataset_changed_since_the_start_is_refused_naming_the_files(tmp_path):
    data = write_tiny_dataset(tmp_path / 'dataset')
    _train(data, tmp_path, 'run', num_train_steps=1)
    shutil.rmtree(data)
    write_tiny_dataset(data, video=VideoEncoding(crf=45))  # re-converted in place: same path and frame count
    with pytest.raises(
        ResumeRefusedError, match=r'changed since .* was started: .*videos/observation\.images\.left/.* \(rewritten\)'
    ):
        _train(data, tmp_path, 'run', num_train_steps=2, resume=True)
    assert sorted(p.name for p in (tmp_path / 'run' / 'checkpoints').iterdir()) == ['000001', 'last']


def test_a_run_started_before_datasets_were_fingerprinted_still_resumes(dataset, tmp_path):
    experiment = _train(dataset, tmp_path, 'old', num_train_steps=1)
    record = json.loads((experiment / RUN_FILE).read_text())
    del record['dataset'][DATASET_FILES]
    (experiment / RUN_FILE).write_text(json.dumps(record))
    _train(dataset, tmp_path, 'old', num_train_steps=2, resume=True)
    assert (experiment / 'checkpoints' / '000002').is_dir()


def test_a_run_json_written_before_the_settings_dataclass_still_resumes(dataset, tmp_path):
    experiment = _train(dataset, tmp_path, 'old', num_train_steps=1)
    files = json.loads((experiment / RUN_FILE).read_text())['dataset'][DATASET_FILES]
    old = json.loads(OLD_RUN_JSON)
    old['dataset'].update({'root': str(dataset), DATASET_FILES: files})
    (experiment / RUN_FILE).write_text(json.dumps(old))
    _train(dataset, tmp_path, 'old', num_train_steps=2, resume=True)
    assert (experiment / 'checkpoints' / '000002').is_dir()
    # the same keys and values, written again, with the codec record in the codec spec's form and the settings
    # added since (state_noise, lr_schedule) at the values the resumed run trained with
    codec = {'version': 1, 'name': 'eepose_absolute', 'image_size': old['codec']['image_size']}
    added = {'state_noise': 0.0, 'lr_schedule': 'constant'}
    assert json.loads((experiment / RUN_FILE).read_text()) == {**old, 'codec': codec, **added}


def test_device_auto_trains_on_the_best_available_device(dataset, tmp_path):
    experiment = _train(dataset, tmp_path, num_train_steps=1, device='auto')
    config = json.loads((experiment / 'checkpoints' / '000001' / 'pretrained_model' / 'config.json').read_text())
    assert config['device'] == resolve_device('auto').type


def test_batch_norm_trained_from_scratch_resumes_exactly_and_saves_lerobots_keys(dataset, tmp_path):
    straight = _train(dataset, tmp_path, 'straight', num_train_steps=6, train_batchnorm=True)
    _train(dataset, tmp_path, 'broken', num_train_steps=3, train_batchnorm=True)
    with pytest.raises(ResumeRefusedError, match='train_batchnorm=True'):
        _train(dataset, tmp_path, 'broken', num_train_steps=6, resume=True)
    resumed = _train(dataset, tmp_path, 'broken', num_train_steps=6, resume=True, train_batchnorm=True)
    assert [r['loss'] for r in read_metrics(resumed)] == [r['loss'] for r in read_metrics(straight)]

    pretrained = list_checkpoints(straight)[6]
    state = load_file(pretrained / 'model.safetensors')
    assert not any('num_batches_tracked' in key for key in state)
    assert state['model.backbone.bn1.running_mean'].abs().sum() > 0  # the statistics were tracked
    ACTPolicy.from_pretrained(pretrained)  # the frozen-BN model of LeRobot's layout takes every key


def _losses(experiment: Path) -> list[float]:
    return [r['loss'] for r in read_metrics(experiment)]


def test_batches_built_from_data_on_the_device_train_exactly_as_the_host_stream(dataset, tmp_path):
    host = _train(dataset, tmp_path, 'host', data_on_device=False)
    resident = _train(dataset, tmp_path, 'resident', data_on_device=True)
    assert _losses(resident) == _losses(host)
    final = 'checkpoints/000006/pretrained_model/model.safetensors'
    assert (resident / final).read_bytes() == (host / final).read_bytes()


@pytest.mark.parametrize(
    'augmentation', [{'random_shift': 3}, {'state_noise': 0.3}], ids=['random-shift', 'state-noise']
)
def test_an_augmentation_changes_the_training_is_recorded_and_resumes_exactly(dataset, tmp_path, augmentation):
    plain = _train(dataset, tmp_path, 'plain')
    straight = _train(dataset, tmp_path, 'straight', **augmentation)
    _train(dataset, tmp_path, 'broken', num_train_steps=3, **augmentation)
    resumed = _train(dataset, tmp_path, 'broken', resume=True, **augmentation)
    assert _losses(resumed) == _losses(straight) != _losses(plain)
    [(name, value)] = augmentation.items()
    assert json.loads((straight / RUN_FILE).read_text())[name] == value
    weights = 'checkpoints/000006/pretrained_model/model.safetensors'
    assert load_file(straight / weights).keys() == load_file(plain / weights).keys()  # checkpoints stay LeRobot's


def test_a_cosine_schedule_anneals_every_step_and_an_interrupted_run_resumes_on_the_same_curve(dataset, tmp_path):
    constant = _train(dataset, tmp_path, 'constant')
    straight = _train(dataset, tmp_path, 'straight', lr_schedule='cosine')
    interrupted = tmp_path / 'interrupted'
    shutil.copytree(straight, interrupted, symlinks=True)  # as if stopped between the checkpoints of steps 3 and 6
    shutil.rmtree(interrupted / 'checkpoints' / '000006')
    resumed = _train(dataset, tmp_path, 'interrupted', resume=True, lr_schedule='cosine')
    base = TINY_ACT['policy.optimizer_lr']
    assert [r['lr'] for r in read_metrics(constant)] == [base] * 6
    rates = [r['lr'] for r in read_metrics(straight)]
    assert rates == pytest.approx([base * lr_factor('cosine', step, 6) for step in range(1, 7)])
    assert rates[0] == base and rates[-1] < 0.1 * base
    assert [r['lr'] for r in read_metrics(resumed)] == rates
    assert _losses(resumed) == _losses(straight) != _losses(constant)
    final = 'checkpoints/000006/pretrained_model/model.safetensors'
    assert (straight / final).read_bytes() == (resumed / final).read_bytes()
    assert json.loads((straight / 'run.json').read_text())['lr_schedule'] == 'cosine'


def test_channels_last_trains_as_eager_does_resumes_exactly_and_saves_lerobots_layout(dataset, tmp_path):
    plain = _train(dataset, tmp_path, 'plain', channels_last=False)
    straight = _train(dataset, tmp_path, 'straight', channels_last=True)
    np.testing.assert_allclose(_losses(straight), _losses(plain), rtol=1e-4)
    _train(dataset, tmp_path, 'broken', num_train_steps=3, channels_last=True)
    resumed = _train(dataset, tmp_path, 'broken', resume=True, channels_last=True)
    assert _losses(resumed) == _losses(straight)
    pretrained = list_checkpoints(straight)[6]
    state = load_file(pretrained / 'model.safetensors')
    assert all(t.is_contiguous() for t in state.values())
    ACTPolicy.from_pretrained(pretrained)


@pytest.mark.slow
def test_a_compiled_step_trains_as_the_eager_step(dataset, tmp_path):
    exact = {'policy.use_vae': False, 'policy.dropout': 0.0}  # compiled code draws its own random numbers
    eager = _train(dataset, tmp_path, 'eager', num_train_steps=3, save_freq=3, compile='off', **exact)
    compiled = _train(dataset, tmp_path, 'compiled', num_train_steps=3, save_freq=3, compile='default', **exact)
    np.testing.assert_allclose(_losses(compiled), _losses(eager), rtol=1e-3)


def test_a_precision_this_cpu_would_emulate_is_named_before_training(dataset, tmp_path, capsys):
    _train(dataset, tmp_path, 'bf16', num_train_steps=1, save_freq=1, precision='bf16')
    noted = '--precision=bf16: this CPU has no fast bf16 kernels' in capsys.readouterr().out
    assert noted == (not cpu_computes(torch.bfloat16))
    _train(dataset, tmp_path, 'fp32', num_train_steps=1, save_freq=1, precision='fp32')
    assert 'note: --precision' not in capsys.readouterr().out


def test_non_finite_values_in_the_data_are_refused_before_training(tmp_path):
    """Our writer refuses NaN; a dataset edited or written elsewhere may hold it."""
    root = write_tiny_dataset(tmp_path / 'nan')
    data_file = next((root / 'data').rglob('*.parquet'))
    table = pq.read_table(data_file)
    actions = table.column('action').to_pylist()
    row = LENGTHS[0] + 4
    actions[row][2] = float('nan')
    column = pa.array(actions, type=table.schema.field('action').type)
    pq.write_table(table.set_column(table.schema.get_field_index('action'), 'action', column), data_file)
    exit_code, line = reported_error(main, cli(root, tmp_path / 'runs'))
    assert exit_code == DATA_ERROR_EXIT_CODE
    assert re.search(r"column 'action' holds a non-finite value .* frame 4 of episode 1", line), line
    assert not (tmp_path / 'runs' / 'exp').exists()


def test_a_diverging_run_stops_naming_the_step_and_saves_no_such_weights(dataset, tmp_path):
    diverging = {'policy.optimizer_lr': 1e30, 'policy.optimizer_lr_backbone': 1e30}
    with pytest.raises(NonFiniteLossError, match=r'at step \d'):
        _train(dataset, tmp_path, num_train_steps=30, save_freq=10, log_freq=2, **diverging)
    assert list_checkpoints(tmp_path / 'exp') == {}


@pytest.mark.parametrize('name', ['../escape', 'a/b', '', '..', '/abs'])
def test_an_experiment_name_that_is_not_a_folder_name_is_refused(dataset, tmp_path, name):
    with pytest.raises(UsageError, match='--exp_name must be a plain folder name'):
        _train(dataset, tmp_path / 'runs', exp_name=name)
    assert not (tmp_path / 'escape').exists() and not (tmp_path / 'runs').exists()


def test_codec_must_match_the_dataset(dataset, tmp_path):
    meta = dataset / 'meta' / 'positronic.json'
    with pytest.raises(CodecMismatchError, match=rf"^{meta} records codec 'eepose_absolute' at 32x32, but .*'joints_"):
        _train(dataset, tmp_path, codec=joints_absolute.override(image_size=32).instantiate())
    with pytest.raises(CodecMismatchError, match=r"at 32x32, but codec 'eepose_absolute' at 480x480 was asked for"):
        _train(dataset, tmp_path, codec=eepose_absolute.instantiate())
    assert not (tmp_path / 'exp').exists()


def test_a_dataset_of_an_unregistered_codec_trains_only_with_that_codec_named(tmp_path):
    mine = dataclasses.replace(tiny_codec(), name='my_robot.codecs.ee')
    reader = DatasetReader(write_tiny_dataset(tmp_path / 'mine', lengths=(4,), codec=mine))
    with pytest.raises(UnknownCodecError) as info:
        dataset_codec(reader.root, None)
    assert str(info.value).startswith(f"{reader.root / 'meta' / 'positronic.json'} records codec 'my_robot.codecs.ee'")
    assert 'eepose_absolute, joints_absolute' in str(info.value)
    assert dataset_codec(reader.root, mine) is mine


def test_an_experiment_whose_run_json_has_the_old_codec_record_resumes(dataset, tmp_path):
    experiment = _train(dataset, tmp_path, 'old', num_train_steps=1, save_freq=1)
    run = json.loads((experiment / 'run.json').read_text())
    run['codec'] = json.loads('{"codec": "positronic.vendors.lerobot.codecs.eepose_absolute", "image_size": [32, 32]}')
    (experiment / 'run.json').write_text(json.dumps(run))
    _train(dataset, tmp_path, 'old', num_train_steps=2, save_freq=1, resume=True)
    assert json.loads((experiment / 'run.json').read_text())['codec'] == {
        'version': 1,
        'name': 'eepose_absolute',
        'image_size': [32, 32],
    }
    run['codec']['image_size'] = [64, 64]
    (experiment / 'run.json').write_text(json.dumps(run))
    with pytest.raises(ResumeRefusedError, match=r"another codec .*'image_size': \(\[64, 64\], \[32, 32\]\)"):
        _train(dataset, tmp_path, 'old', num_train_steps=3, save_freq=1, resume=True)


def test_a_model_that_cannot_be_built_leaves_no_experiment_behind(dataset, tmp_path):
    with pytest.raises(BackboneWeightsError, match='unknown weights'):
        _train(dataset, tmp_path, **{'policy.pretrained_backbone_weights': 'NoSuchWeights.V1'})
    assert not (tmp_path / 'exp').exists()


def test_wandb_key_without_wandb_is_a_clear_error(dataset, tmp_path, monkeypatch):
    if importlib.util.find_spec('wandb') is not None:
        pytest.skip('wandb is installed')
    monkeypatch.setenv('WANDB_API_KEY', 'not-a-real-key')
    with pytest.raises(WandbMissingError, match=r'positronic-act\[wandb\]'):
        _train(dataset, tmp_path)
    assert not (tmp_path / 'exp').exists()


def cli(dataset: Path, output: Path, *flags: str, exp_name: str = 'exp') -> list[str]:
    """The command line of a short tiny run (``flags`` last, so they override)."""
    settings = {'num_train_steps': 6, 'save_freq': 3, 'log_freq': 3, 'batch_size': 4, **TINY_ACT}
    base = [f'--input_path={dataset}', f'--exp_name={exp_name}', f'--output_dir={output}']
    return [*base, *(f'--{k}={v}' for k, v in settings.items()), *flags]


@pytest.mark.parametrize(
    'flags, code, named',
    [
        (['--num_train_steps=-1'], USAGE_ERROR_EXIT_CODE, '--num_train_steps must be an integer >= 1, got -1'),
        (['--batch_size=0'], USAGE_ERROR_EXIT_CODE, '--batch_size must be an integer >= 1, got 0'),
        (['--precision=fp8'], USAGE_ERROR_EXIT_CODE, "--precision must be one of auto, fp32, bf16, fp16, got 'fp8'"),
        (
            ['--state_noise=-0.1'],
            USAGE_ERROR_EXIT_CODE,
            '--state_noise must be a number >= 0 (standard deviations), got -0.1',
        ),
        (['--lr_schedule=step'], USAGE_ERROR_EXIT_CODE, "--lr_schedule must be one of constant, cosine, got 'step'"),
        (['--policy.x=1'], USAGE_ERROR_EXIT_CODE, "unknown flag --policy.x: --policy has no 'x'"),
        (['--policy.dropout=1.5'], USAGE_ERROR_EXIT_CODE, 'dropout: expected a probability in [0, 1), got 1.5'),
        (['--device=tpu'], USAGE_ERROR_EXIT_CODE, "--device='tpu' is not a device"),
        (['--input_path=/nonexistent/dataset'], DATA_ERROR_EXIT_CODE, '/nonexistent/dataset/meta/info.json is missing'),
    ],
    ids=[
        'negative-steps',
        'zero-batch',
        'fp8',
        'negative-state-noise',
        'unknown-lr-schedule',
        'unknown-policy-field',
        'bad-policy-value',
        'no-such-device',
        'no-input',
    ],
)
def test_a_refused_command_line_is_one_line_with_its_exit_code_and_writes_nothing(
    dataset, tmp_path, flags, code, named
):
    output = tmp_path / 'runs'
    exit_code, line = reported_error(main, cli(dataset, output, *flags))
    assert exit_code == code and line.startswith('positronic-lerobot-train: error: ') and named in line
    assert not output.exists()


@pytest.mark.parametrize('file_name', ['meta/stats.json', 'data/chunk-000/file-000.parquet'])
def test_an_unreadable_dataset_file_is_a_data_error_naming_it(tmp_path, file_name):
    dataset = write_tiny_dataset(tmp_path / 'dataset')
    broken = dataset / file_name
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    exit_code, line = reported_error(main, cli(dataset, tmp_path / 'runs'))
    assert exit_code == DATA_ERROR_EXIT_CODE and f'{broken}: cannot read it' in line
    assert not (tmp_path / 'runs' / 'exp').exists()


def test_a_full_disk_while_saving_a_checkpoint_names_the_output_dir_and_keeps_the_checkpoints_before(
    dataset, tmp_path, monkeypatch
):
    real_save = checkpoint.save_training_state

    def disk_full_at_step_6(directory, step, *args):
        if step == 6:
            raise OSError(errno.ENOSPC, 'No space left on device')
        return real_save(directory, step, *args)

    monkeypatch.setattr(checkpoint, 'save_training_state', disk_full_at_step_6)
    output = tmp_path / 'runs'
    exit_code, line = reported_error(main, cli(dataset, output))
    assert exit_code == DATA_ERROR_EXIT_CODE
    assert line == (
        f'positronic-lerobot-train: error: --output_dir={output}: no space left on the device '
        '(No space left on device); free some and run again'
    )
    root = output / 'exp' / 'checkpoints'
    assert sorted(p.name for p in root.iterdir()) == ['000003', 'last']
    assert os.readlink(root / 'last') == '000003'


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_cuda_on_a_machine_without_it_is_a_usage_error(dataset, tmp_path):
    exit_code, line = reported_error(main, cli(dataset, tmp_path / 'runs', '--device=cuda'))
    assert exit_code == USAGE_ERROR_EXIT_CODE and '--device=cuda: CUDA is not available on this machine' in line
    assert not (tmp_path / 'runs').exists()


def test_an_existing_experiment_or_a_refused_resume_is_a_data_error_and_leaves_the_experiment_as_it_was(
    dataset, tmp_path
):
    output = tmp_path / 'runs'
    _train(dataset, output, num_train_steps=3)
    before = tree_state(output)
    cases = {
        'existing': ([], 'already exists; pass --resume=True'),
        'no checkpoint': (['--resume=True', '--exp_name=other'], 'has no checkpoint to resume from'),
        'another policy': (['--resume=True', '--policy.dim_feedforward=48'], 'trains with another policy'),
        'batch norm': (['--resume=True', '--train_batchnorm=True'], 'was started with train_batchnorm=False'),
    }
    for case, (flags, named) in cases.items():
        exit_code, line = reported_error(main, cli(dataset, output, *flags))
        assert exit_code == DATA_ERROR_EXIT_CODE and named in line, case
        assert tree_state(output) == before, case


def test_policy_config_takes_features_from_the_dataset(dataset):
    reader = DatasetReader(dataset)
    config = policy_config({'chunk_size': 7, 'n_action_steps': 7}, reader, torch.device('cpu'))
    assert {k: (f.type.value, f.shape) for k, f in config.input_features.items()} == {
        'observation.state': ('STATE', (8,)),
        'observation.images.left': ('VISUAL', (3, 32, 32)),
        'observation.images.side': ('VISUAL', (3, 32, 32)),
    }
    assert config.output_features['action'].shape == (8,) and config.chunk_size == 7
    with pytest.raises(ConfigError, match=r"unknown ACTConfig field\(s\) \['chunk'\]"):
        policy_config({'chunk': 7}, reader, torch.device('cpu'))


@pytest.mark.parametrize('module', ['positronic.vendors.lerobot.training.train', 'positronic.vendors.lerobot.train'])
def test_cli_help_lists_the_trainer_and_policy_settings(module):
    """Also under the module path scripts used before the stage packages (python -m / torchrun -m)."""
    result = subprocess.run(
        [sys.executable, '-m', module, '--help'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for line in ('input_path: <REQUIRED>', 'num_train_steps: 50000', 'save_freq: 10000', 'chunk_size: 100'):
        assert line in result.stdout
    for field in dataclasses.fields(TrainSettings):  # every setting is a flag, listed with its default
        assert re.search(rf'^{field.name}:( |$)', result.stdout, re.MULTILINE), field.name
    assert 'device: auto' in result.stdout


@pytest.mark.slow
def test_two_gloo_processes_follow_one_process_with_the_same_global_batch(dataset, tmp_path):
    exact = {**TINY_ACT, 'policy.use_vae': False, 'policy.dropout': 0.0}
    single = _train(dataset, tmp_path, 'single', num_train_steps=4, save_freq=4, batch_size=8, **exact)

    cli = [f'--{k}={v}' for k, v in exact.items()]
    command = [
        sys.executable,
        '-m',
        'torch.distributed.run',
        '--nproc_per_node=2',
        '--standalone',
        '-m',
        'positronic.vendors.lerobot.training.train',
        f'--input_path={dataset}',
        '--exp_name=ddp',
        f'--output_dir={tmp_path}',
        '--num_train_steps=4',
        '--save_freq=4',
        '--batch_size=4',
        *cli,
    ]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    ddp = tmp_path / 'ddp'
    single_loss = [r['loss'] for r in read_metrics(single)]
    ddp_loss = [r['loss'] for r in read_metrics(ddp)]
    np.testing.assert_allclose(ddp_loss, single_loss, rtol=1e-4)
    assert sorted(p.name for p in (ddp / 'checkpoints').iterdir()) == ['000004', 'last']
    state = ddp / 'checkpoints' / '000004' / 'training_state'
    assert (state / 'rng_state.safetensors').is_file() and (state / 'rng_state_rank1.safetensors').is_file()
    assert json.loads((ddp / 'run.json').read_text())['world_size'] == 2


def _assert_lerobot_predicts_as_we_do(pretrained: Path, lerobot_python: str, tmp_path: Path) -> None:
    from ..act.test_lerobot_compat import run_lerobot

    rng = np.random.default_rng(0)
    obs = {
        'observation.state': rng.normal(0, 0.3, size=(2, 8)).astype(np.float32),
        'observation.images.left': rng.uniform(0, 1, size=(2, 3, 32, 32)).astype(np.float32),
        'observation.images.side': rng.uniform(0, 1, size=(2, 3, 32, 32)).astype(np.float32),
    }
    targets = {'action': rng.normal(size=(2, 5, 8)).astype(np.float32), 'action_is_pad': np.zeros((2, 5), bool)}
    np.savez(tmp_path / 'obs.npz', **obs, **targets, seed=np.array(0))
    theirs = run_lerobot(lerobot_python, 'run', pretrained, tmp_path / 'obs.npz', tmp_path / 'out.npz')

    assert json.loads(str(theirs['keys'])) == {'missing': [], 'unexpected': [], 'differing': []}
    policy, processors = ACTPolicy.from_pretrained(pretrained), load_processors(pretrained)
    inputs = {k: torch.from_numpy(v) for k, v in obs.items()}
    ours = processors.unnormalize_action(policy.predict_action_chunk(processors.normalize(inputs)))
    np.testing.assert_allclose(ours.numpy(), theirs['processed_chunk'], rtol=1e-4, atol=1e-5)


@pytest.mark.lerobot
def test_lerobot_loads_a_trained_checkpoint_and_predicts_the_same_actions(trained, lerobot_python, tmp_path):
    _assert_lerobot_predicts_as_we_do(list_checkpoints(trained)[30], lerobot_python, tmp_path)


@pytest.mark.lerobot
def test_lerobot_loads_a_checkpoint_trained_with_batch_norm_and_predicts_the_same_actions(
    dataset, lerobot_python, tmp_path
):
    experiment = _train(dataset, tmp_path, 'bn', num_train_steps=6, train_batchnorm=True)
    _assert_lerobot_predicts_as_we_do(list_checkpoints(experiment)[6], lerobot_python, tmp_path)


def test_a_converted_dataset_trains_with_the_documented_command(tmp_path):
    from positronic.vendors.lerobot.conversion.to_lerobot import main as to_lerobot
    from tests.raw_episodes import write_dataset

    raw = write_dataset(tmp_path / 'raw', num_episodes=2)
    converted = tmp_path / 'lerobot'
    args = [f'--dataset.dataset.path={raw}', f'--output_dir={converted}', '--fps=15', '--dataset.codec.image_size=32']
    to_lerobot(['convert', *args])
    command = [
        sys.executable,
        '-m',
        'positronic.vendors.lerobot.training.train',
        f'--input_path={converted}',
        '--exp_name=converted_v1',
        f'--output_dir={tmp_path / "checkpoints"}',
        '--num_train_steps=2',
        '--save_freq=1',
        '--batch_size=2',
        *(f'--{k}={v}' for k, v in TINY_ACT.items()),
    ]
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    checkpoints = list_checkpoints(tmp_path / 'checkpoints' / 'converted_v1')
    assert list(checkpoints) == [1, 2]
    record = read_codec_record(checkpoints[2])
    assert record == {'version': 1, 'name': 'eepose_absolute', 'image_size': [32, 32]}
    assert 'loss' in result.stderr and 'samples/s' in result.stderr
