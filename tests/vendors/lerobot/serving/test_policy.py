import configuronic as cfn
import numpy as np
import pytest
import torch

from positronic import inference_presets as policy_cfg
from positronic import keys
from positronic.command import UsageError
from positronic.policy.action import parse_action
from positronic.vendors.lerobot.codec import CodecMismatchError, InvalidObservationError, MissingSignalError
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.serving.checkpoint_selection import CheckpointNotFoundError, select_checkpoint
from positronic.vendors.lerobot.serving.policy import ACTRunner, LocalACTPolicy
from tests.vendors.lerobot.tiny_act import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    N_ACTION_STEPS,
    POSE_MEAN,
    POSE_STD,
    add_lerobot_checkpoint,
    raw_observation,
    tiny_codec,
    write_tiny_experiment,
)

EPS = 1e-8


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    return write_tiny_experiment(tmp_path_factory.mktemp('experiment') / 'my_task_v1')


@pytest.fixture(scope='module')
def runner(experiment):
    runner = ACTRunner.load(select_checkpoint(experiment)[1], device='cpu')
    runner.warm_up()
    return runner


def _poses_and_grips(chunk):
    return np.stack([a['robot_command']['pose'] for a in chunk]), np.array([a['target_grip'] for a in chunk])


def test_infer_answers_n_action_steps_wire_actions(runner):
    chunk = runner.infer(raw_observation())
    assert len(chunk) == N_ACTION_STEPS
    for action in chunk:
        assert action['robot_command']['type'] == 'cartesian_pos'
        assert action['robot_command']['pose'].shape == (12,)
        parse_action(action)


def test_infer_is_codec_then_normalize_then_act_then_unnormalize_then_decode(runner):
    observation = raw_observation(seed=3)
    encoded = tiny_codec().encode(observation)
    batch = {'observation.state': torch.tensor((encoded['observation.state'] - POSE_MEAN) / (POSE_STD + EPS))[None]}
    for camera in ('observation.images.left', 'observation.images.side'):
        frame = torch.tensor(encoded[camera]).permute(2, 0, 1).float() / 255.0
        batch[camera] = ((frame - torch.tensor(IMAGENET_MEAN)) / (torch.tensor(IMAGENET_STD) + EPS))[None]
    with torch.inference_mode():
        normalized = runner.policy.predict_action_chunk(batch)[0, :N_ACTION_STEPS].numpy()
    expected = tiny_codec().decode_chunk(normalized * POSE_STD + POSE_MEAN)

    poses, grips = _poses_and_grips(runner.infer(observation))
    expected_poses, expected_grips = _poses_and_grips(expected)
    np.testing.assert_allclose(poses, expected_poses, atol=1e-5)
    np.testing.assert_allclose(grips, expected_grips, atol=1e-5)


def test_infer_accepts_read_only_arrays_as_the_server_decodes_them(runner):
    observation = raw_observation(seed=4)
    frozen = {k: v for k, v in observation.items()}
    for key in (keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR, keys.ROBOT_EE_POSE):
        frozen[key] = observation[key].copy()
        frozen[key].flags.writeable = False
    np.testing.assert_array_equal(
        _poses_and_grips(runner.infer(frozen))[0], _poses_and_grips(runner.infer(observation))[0]
    )


def test_a_missing_signal_is_named(runner):
    observation = raw_observation()
    del observation[keys.IMAGE_EXTERIOR]
    with pytest.raises(MissingSignalError, match=r"lacks \['image\.exterior'\]"):
        runner.infer(observation)


def test_an_empty_camera_frame_is_refused_naming_the_key(runner):
    observation = {**raw_observation(), keys.IMAGE_EXTERIOR: np.zeros((0, 0, 3), np.uint8)}
    with pytest.raises(InvalidObservationError, match=r"'image\.exterior'.*got uint8 array of shape \(0, 0, 3\)"):
        runner.infer(observation)


def test_meta_names_the_checkpoint_codec_and_chunking(runner, experiment):
    meta = runner.meta
    assert meta['type'] == 'act'
    assert meta['checkpoint_path'] == str(experiment / 'checkpoints' / '000020' / 'pretrained_model')
    assert meta['device'] == 'cpu'
    assert meta['codec'] == 'eepose_absolute'
    assert meta['image_size'] == [32, 32]
    assert meta['features']['observation.images.left'] == {'type': 'VISUAL', 'shape': [3, 32, 32]}
    assert (meta['chunk_size'], meta['n_action_steps']) == (6, 4)


def test_a_contradicting_codec_is_refused_before_loading(experiment):
    with pytest.raises(CodecMismatchError, match=r"32x32, but codec 'eepose_absolute' at 480x480 was asked for"):
        ACTRunner.load(select_checkpoint(experiment)[1], eepose_absolute.instantiate(), device='cpu')


@cfn.config(policy=policy_cfg.remote)
def _run(policy):
    return policy


def test_local_act_policy_from_the_command_line_runs_the_chosen_checkpoint(experiment, runner):
    overrides = {'policy': '.act', 'policy.checkpoints_dir': str(experiment), 'policy.device': 'cpu'}
    latest = _run.override(**overrides).instantiate()
    first = _run.override(**overrides, **{'policy.checkpoint': 10}).instantiate()
    try:
        assert isinstance(latest, LocalACTPolicy)
        assert (latest.meta['step'], first.meta['step']) == (20, 10)
        assert latest.meta['type'] == 'act' and 'features' not in latest.meta
        observation = raw_observation(seed=5)
        latest.reset({'task': keys.STACK_CUBES_TASK})
        ours = _poses_and_grips(latest.select_action(observation))
        np.testing.assert_array_equal(ours[0], _poses_and_grips(runner.infer(observation))[0])
        assert not np.allclose(ours[0], _poses_and_grips(first.select_action(observation))[0])
    finally:
        latest.close()
        first.close()


def test_local_act_policy_names_its_device_flag_for_a_device_it_cannot_use(experiment):
    overrides = {'policy': '.act', 'policy.checkpoints_dir': str(experiment), 'policy.device': 'tpu'}
    with pytest.raises(cfn.ConfigError) as error:  # configuronic wraps what a part raises; the cause is reported
        _run.override(**overrides).instantiate()
    assert isinstance(error.value.__cause__, UsageError)
    assert str(error.value.__cause__).startswith("--policy.device='tpu' is not a device; expected auto, cpu")


def test_local_act_policy_names_a_missing_checkpoint(experiment):
    with pytest.raises(CheckpointNotFoundError, match=r'available steps: \[10, 20\]'):
        LocalACTPolicy.load(experiment, checkpoint=15, device='cpu')


def test_a_lerobot_written_checkpoint_runs_with_eepose_absolute_at_its_image_size(tmp_path):
    add_lerobot_checkpoint(tmp_path)
    policy = LocalACTPolicy.load(tmp_path, device='cpu')
    try:
        assert policy.meta['codec'] == 'eepose_absolute'
        assert policy.meta['image_size'] == [96, 96]
        chunk = policy.select_action(raw_observation(image_hw=(96, 128)))
        assert len(chunk) == 10
        assert all(np.all(np.isfinite(a['robot_command']['pose'])) for a in chunk)
    finally:
        policy.close()
