import dataclasses
import json
import os
import sys

import pytest

from positronic.vendors.lerobot.codec import CodecMismatchError, UnknownCodecError
from positronic.vendors.lerobot.codecs import DEFAULT_CODEC, eepose_absolute, joints_absolute
from positronic.vendors.lerobot.serving.checkpoint_selection import (
    CheckpointNotFoundError,
    checkpoint_codec,
    parse_step,
    select_checkpoint,
)
from positronic.vendors.lerobot.training.checkpoint import CODEC_FILE, CheckpointError, write_codec_record


def write_config(pretrained_dir, image_side: int = 32, state_dim: int = 8, policy_type: str = 'act') -> None:
    """The feature part of an ACT config.json (all that checkpoint selection reads)."""
    pretrained_dir.mkdir(parents=True, exist_ok=True)
    camera = {'type': 'VISUAL', 'shape': [3, image_side, image_side]}
    config = {
        'type': policy_type,
        'input_features': {
            'observation.state': {'type': 'STATE', 'shape': [state_dim]},
            'observation.images.left': camera,
            'observation.images.side': camera,
        },
        'output_features': {'action': {'type': 'ACTION', 'shape': [8]}},
    }
    (pretrained_dir / 'config.json').write_text(json.dumps(config))


@pytest.fixture
def experiment(tmp_path):
    """checkpoints/{000005,000020,000100}/pretrained_model (32 px, eepose record) and last -> 000100."""
    root = tmp_path / 'my_task_v1'
    for step in (5, 100, 20):
        pretrained = root / 'checkpoints' / f'{step:06d}' / 'pretrained_model'
        write_config(pretrained)
        write_codec_record(pretrained, eepose_absolute.override(image_size=32).instantiate())
    os.symlink('000100', root / 'checkpoints' / 'last')
    return root


@pytest.mark.parametrize(
    'text, step', [('10000', 10000), ('010000', 10000), (7, 7), ('0', 0), ('1_0', None), ('..', None), ('-1', None)]
)
def test_parse_step_accepts_steps_and_zero_padded_names_only(text, step):
    assert parse_step(text) == step


def test_latest_checkpoint_is_the_default(experiment):
    step, pretrained = select_checkpoint(experiment)
    assert step == 100
    assert pretrained == experiment / 'checkpoints' / '000100' / 'pretrained_model'


@pytest.mark.parametrize('checkpoint', [20, '20', '000020'])
def test_a_checkpoint_is_picked_by_step_or_directory_name(experiment, checkpoint):
    assert select_checkpoint(experiment, checkpoint) == (20, experiment / 'checkpoints/000020/pretrained_model')


def test_the_checkpoints_dir_itself_works_too(experiment):
    assert select_checkpoint(experiment / 'checkpoints', 5)[0] == 5


@pytest.mark.parametrize('checkpoint', [7, 'last', '../000020', '/etc'])
def test_an_unknown_checkpoint_names_the_available_steps(experiment, checkpoint):
    with pytest.raises(CheckpointNotFoundError, match=r'available steps: \[5, 20, 100\]'):
        select_checkpoint(experiment, checkpoint)


def test_a_missing_directory_or_no_checkpoints_is_reported(tmp_path):
    with pytest.raises(CheckpointNotFoundError, match='does not exist'):
        select_checkpoint(tmp_path / 'nowhere')
    with pytest.raises(CheckpointNotFoundError, match='no checkpoints under'):
        select_checkpoint(tmp_path)


def test_the_recorded_codec_is_the_default(experiment):
    _, pretrained = select_checkpoint(experiment)
    codec = checkpoint_codec(pretrained)
    assert codec == eepose_absolute.override(image_size=32).instantiate()
    assert codec.name == 'eepose_absolute'


def test_the_recorded_codec_can_be_named_explicitly(experiment):
    _, pretrained = select_checkpoint(experiment)
    asked = eepose_absolute.override(image_size=32).instantiate()
    assert checkpoint_codec(pretrained, asked) is asked


def test_a_codec_contradicting_the_record_is_refused(experiment):
    _, pretrained = select_checkpoint(experiment)
    record = pretrained / CODEC_FILE
    with pytest.raises(CodecMismatchError, match=rf"^{record} records codec 'eepose_absolute' at 32x32, but codec 'jo"):
        checkpoint_codec(pretrained, joints_absolute.override(image_size=32).instantiate())
    with pytest.raises(CodecMismatchError, match=r"at 32x32, but codec 'eepose_absolute' at 480x480 was asked for"):
        checkpoint_codec(pretrained, eepose_absolute.instantiate())


def test_without_a_record_eepose_absolute_at_the_checkpoint_image_size_is_used(tmp_path):
    pretrained = tmp_path / 'checkpoints' / '000010' / 'pretrained_model'
    write_config(pretrained, image_side=96)
    codec = checkpoint_codec(pretrained)
    assert codec.name == DEFAULT_CODEC == 'eepose_absolute'
    assert codec.observation.image_size == (96, 96)


def test_without_a_record_a_codec_contradicting_the_features_is_refused_with_a_hint(tmp_path):
    pretrained = tmp_path / 'pretrained_model'
    write_config(pretrained, image_side=96)
    with pytest.raises(CodecMismatchError, match=r"'observation.images.left' has shape \[3, 96, 96\].*\[96, 96\]"):
        checkpoint_codec(pretrained, eepose_absolute.instantiate())


def test_a_codec_whose_state_does_not_fit_is_refused(tmp_path):
    pretrained = tmp_path / 'pretrained_model'
    write_config(pretrained, state_dim=14)
    with pytest.raises(CodecMismatchError, match=r"'observation.state' has shape \[14\], codec gives \[8\]"):
        checkpoint_codec(pretrained)


def test_a_directory_that_is_not_an_act_checkpoint_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match=r'config\.json is missing'):
        checkpoint_codec(tmp_path)
    write_config(tmp_path / 'diffusion', policy_type='diffusion')
    with pytest.raises(CheckpointError, match="'diffusion' policy"):
        checkpoint_codec(tmp_path / 'diffusion')


def test_a_missing_checkpoint_is_a_checkpoint_error_a_caller_can_tell_apart(tmp_path):
    with pytest.raises(CheckpointNotFoundError) as missing:
        select_checkpoint(tmp_path / 'nowhere')
    assert isinstance(missing.value, CheckpointError)
    with pytest.raises(CheckpointError) as unreadable:
        checkpoint_codec(tmp_path)
    assert not isinstance(unreadable.value, CheckpointNotFoundError)


def test_a_checkpoint_recording_an_unregistered_codec_is_refused_without_importing_it(experiment, capsys):
    _, pretrained = select_checkpoint(experiment)
    (pretrained / CODEC_FILE).write_text(json.dumps({'codec': 'this.nothing', 'image_size': [32, 32]}))
    with pytest.raises(UnknownCodecError) as info:
        checkpoint_codec(pretrained)
    assert str(info.value).startswith(f"{pretrained / CODEC_FILE} records codec 'this.nothing', which is not a")
    assert 'registered: eepose_absolute, joints_absolute' in str(info.value)
    assert 'this' not in sys.modules and capsys.readouterr().out == ''


def test_a_checkpoint_of_your_own_codec_runs_when_that_codec_is_named_explicitly(tmp_path):
    pretrained = tmp_path / 'pretrained_model'
    write_config(pretrained)
    mine = dataclasses.replace(eepose_absolute.override(image_size=32).instantiate(), name='my_robot.codecs.ee')
    write_codec_record(pretrained, mine)
    with pytest.raises(UnknownCodecError, match=r"records codec 'my_robot\.codecs\.ee'.*--codec=@"):
        checkpoint_codec(pretrained)
    assert checkpoint_codec(pretrained, mine) is mine
    with pytest.raises(CodecMismatchError, match=r"records codec 'my_robot\.codecs\.ee' at 32x32, but codec 'eepose_"):
        checkpoint_codec(pretrained, eepose_absolute.override(image_size=32).instantiate())
