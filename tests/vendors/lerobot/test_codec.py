import numpy as np
import pytest

from positronic import geom, keys
from positronic.dataset import LocalDataset
from positronic.policy.action import InvalidActionError, parse_action
from positronic.vendors.lerobot.codec import (
    ACTION,
    OBSERVATION_STATE,
    CodecMismatchError,
    InvalidObservationError,
    MissingSignalError,
    channel_first,
    check_features_match,
    image_size_of,
    image_size_pair,
)
from positronic.vendors.lerobot.codecs import eepose_absolute, joints_absolute
from tests.raw_episodes import TASK, pose_at, write_dataset

LEFT, SIDE = 'observation.images.left', 'observation.images.side'


@pytest.fixture(scope='module')
def episode(tmp_path_factory):
    root = write_dataset(tmp_path_factory.mktemp('raw'), num_episodes=1, camera_offset_ns=20_000_000)
    return LocalDataset(root)[0]


def test_features_declare_state_cameras_and_action_with_the_image_size():
    features = eepose_absolute.override(image_size=[128, 96]).instantiate().features()
    assert list(features) == [OBSERVATION_STATE, LEFT, SIDE, ACTION]
    assert features[OBSERVATION_STATE] == {
        'dtype': 'float32',
        'shape': [8],
        'names': ['x', 'y', 'z', 'qw', 'qx', 'qy', 'qz', 'grip'],
    }
    assert features[LEFT] == {'dtype': 'video', 'shape': [96, 128, 3], 'names': ['height', 'width', 'channels']}
    assert features[ACTION]['shape'] == [8]
    joints = joints_absolute.instantiate().features()
    assert joints[OBSERVATION_STATE]['names'][:7] == [f'q{i}' for i in range(7)]
    assert joints[SIDE]['shape'] == [480, 480, 3]


def test_projection_samples_a_uniform_grid_from_the_latest_first_sample(episode):
    codec = eepose_absolute.override(image_size=32).instantiate()
    projected = codec.project_episode(episode, fps=30)
    assert projected.ts_ns[0] == 20_000_000  # cameras start last
    assert np.all(np.diff(projected.ts_ns) // 1000 == 33_333)
    assert projected.ts_ns[-1] < episode.last_ts
    assert len(projected) == len(projected.frames[ACTION]) == len(projected.frames[OBSERVATION_STATE])
    assert projected.task == TASK


def test_projected_values_are_the_raw_values_at_or_before_each_grid_time(episode):
    codec = joints_absolute.override(image_size=32).instantiate()
    projected = codec.project_episode(episode, fps=15)
    for i in (0, 3, len(projected) - 1):
        t = int(projected.ts_ns[i])
        q, q_ts = episode[keys.ROBOT_Q].time[t]
        assert q_ts <= t
        np.testing.assert_array_equal(projected.frames[OBSERVATION_STATE][i][:7], q)
        pose, _ = episode[keys.COMMAND_POSE].time[t]
        action = projected.frames[ACTION][i]
        np.testing.assert_allclose(action[:3], pose[:3], rtol=1e-6)
        assert geom.quat_angle(action[3:7], pose[3:]) < 1e-3 and action[4] >= 0
        assert action[7] == episode[keys.TARGET_GRIP].time[t][0]


def test_quaternion_sign_stays_continuous_when_qw_crosses_zero(episode):
    raw = np.stack([v for v, _ in (episode[keys.ROBOT_EE_POSE][i] for i in range(len(episode[keys.ROBOT_EE_POSE])))])
    assert raw[:, 3].min() < 0 < raw[:, 3].max()  # the fixture crosses qw = 0
    state = eepose_absolute.override(image_size=32).instantiate().project_episode(episode, fps=30).frames
    quats = state[OBSERVATION_STATE][:, 3:7]
    assert np.max(np.linalg.norm(np.diff(quats, axis=0), axis=1)) < 0.1


def test_training_and_inference_encode_a_frame_identically(episode):
    codec = eepose_absolute.override(image_size=[80, 64]).instantiate()
    projected = codec.project_episode(episode, fps=30)
    left = list(projected.frames[LEFT])
    side = list(projected.frames[SIDE])
    for i in (0, 7, len(projected) - 1):
        observation = dict(episode.time[int(projected.ts_ns[i])])
        encoded = codec.encode(observation)
        np.testing.assert_array_equal(encoded[OBSERVATION_STATE], projected.frames[OBSERVATION_STATE][i])
        np.testing.assert_array_equal(encoded[LEFT], left[i])
        np.testing.assert_array_equal(encoded[SIDE], side[i])
        assert encoded['task'] == TASK
        assert encoded[LEFT].shape == (64, 80, 3) and encoded[LEFT].dtype == np.uint8


def test_task_override_and_missing_task(tmp_path, episode):
    codec = eepose_absolute.override(image_size=32).instantiate()
    assert codec.project_episode(episode, fps=10, task='other').task == 'other'
    untasked = LocalDataset(write_dataset(tmp_path, num_episodes=1, task=None))[0]
    assert codec.project_episode(untasked, fps=10).task == ''


def test_decode_gives_a_cartesian_command_with_normalized_rotation():
    codec = eepose_absolute.instantiate()
    pose = pose_at(0.7)
    vector = np.concatenate([pose[:3], 2.0 * pose[3:], [0.8]]).astype(np.float32)
    action = codec.decode(vector)
    parsed = parse_action(action)
    np.testing.assert_allclose(parsed.pose[:3], pose[:3], atol=1e-6)
    assert geom.quat_angle(parsed.pose[3:], pose[3:]) < 1e-5
    assert parsed.grip == pytest.approx(0.8)
    assert len(codec.decode_chunk(np.stack([vector] * 5))) == 5


@pytest.mark.parametrize(
    'bad, match',
    [
        (np.zeros(7), '8 values'),
        (np.full(8, np.nan), 'non-finite'),
        (np.r_[0.4, 0.0, 0.3, 0.0, 0.0, 0.0, np.inf, 0.5], 'non-finite'),
        (np.r_[0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.5], 'cannot be normalized'),
    ],
)
def test_decode_rejects_malformed_actions(bad, match):
    with pytest.raises(InvalidActionError, match=match):
        eepose_absolute.instantiate().decode(bad)


@pytest.mark.parametrize('predicted, sent', [(1.0128, 1.0), (-0.03, 0.0), (0.4, 0.4), (1.0, 1.0)])
def test_decoded_grip_is_clamped_to_the_gripper_range(predicted, sent):
    vector = np.concatenate([pose_at(0.2), [predicted]])
    assert eepose_absolute.instantiate().decode(vector)['target_grip'] == pytest.approx(sent)


def _live(**changes):
    """A valid live observation for both built-in codecs, with ``changes`` (raw key -> value) applied."""
    rng = np.random.default_rng(0)
    observation = {
        keys.ROBOT_EE_POSE: pose_at(0.3),
        keys.ROBOT_Q: np.zeros(7, np.float32),
        keys.GRIP: 0.5,
        keys.IMAGE_WRIST: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
        keys.IMAGE_EXTERIOR: rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
    }
    return {**observation, **changes}


@pytest.mark.parametrize(
    'image, got',
    [
        (np.zeros((0, 0, 3), np.uint8), r'uint8 array of shape \(0, 0, 3\)'),
        (np.zeros((48, 0, 3), np.uint8), r'uint8 array of shape \(48, 0, 3\)'),
        (np.zeros((48, 64), np.uint8), r'uint8 array of shape \(48, 64\)'),
        (np.zeros((48, 64, 4), np.uint8), r'uint8 array of shape \(48, 64, 4\)'),
        (np.zeros((48, 64, 3), np.float32), r'float32 array of shape \(48, 64, 3\)'),
        ([[[0, 0, 0]]], 'list'),
    ],
)
def test_a_camera_frame_that_is_not_a_non_empty_uint8_rgb_image_is_refused_naming_the_key(image, got):
    codec = eepose_absolute.override(image_size=32).instantiate()
    with pytest.raises(InvalidObservationError, match=rf"'image\.wrist': expected a uint8 \(H, W, 3\) .*got {got}"):
        codec.encode(_live(**{keys.IMAGE_WRIST: image}))


@pytest.mark.parametrize('grip', [True, np.bool_(False), 2**64 - 1, 2**70, 1.5, -0.2, np.nan, np.inf, 'open', 1j])
def test_a_grip_that_is_not_a_finite_real_number_near_0_to_1_is_refused(grip):
    codec = eepose_absolute.override(image_size=32).instantiate()
    with pytest.raises(InvalidObservationError, match=r"observation 'grip': "):
        codec.encode(_live(grip=grip))


@pytest.mark.parametrize('grip', [0, 1, np.int64(1), np.float32(0.25), 1.0128, -0.01, [0.5]])
def test_ints_and_grips_just_past_the_ends_pass_unchanged_as_conversion_records_them(grip):
    state = eepose_absolute.override(image_size=32).instantiate().encode(_live(grip=grip))[OBSERVATION_STATE]
    assert state[-1] == np.float32(np.ravel(grip)[0])


@pytest.mark.parametrize('quat', [np.zeros(4), np.full(4, 1e-20)])
def test_a_pose_with_a_zero_quaternion_is_refused_naming_the_key(quat):
    pose = np.concatenate([pose_at(0.3)[:3], quat])
    with pytest.raises(InvalidObservationError, match=r"'robot_state\.ee_pose': quaternion .* has zero norm"):
        eepose_absolute.override(image_size=32).instantiate().encode(_live(**{keys.ROBOT_EE_POSE: pose}))


@pytest.mark.parametrize(
    'codec, key, value, match',
    [
        (eepose_absolute, keys.ROBOT_EE_POSE, np.r_[np.nan, np.zeros(6)], 'values must be finite'),
        (eepose_absolute, keys.ROBOT_EE_POSE, np.zeros(6), r'expected 7 values, got shape \(6,\)'),
        (eepose_absolute, keys.ROBOT_EE_POSE, np.zeros((1, 7)), r'expected 7 values, got shape \(1, 7\)'),
        (joints_absolute, keys.ROBOT_Q, np.full(7, -np.inf), 'values must be finite'),
        (joints_absolute, keys.ROBOT_Q, np.zeros(8), r'expected 7 values, got shape \(8,\)'),
        (joints_absolute, keys.ROBOT_Q, np.ones(7, bool), 'expected real numbers'),
        (joints_absolute, keys.ROBOT_Q, 'q', 'expected real numbers'),
    ],
)
def test_state_vectors_must_be_finite_real_and_of_the_expected_length(codec, key, value, match):
    with pytest.raises(InvalidObservationError, match=rf"observation '{key}': {match}"):
        codec.override(image_size=32).instantiate().encode(_live(**{key: value}))


def test_missing_signals_name_the_episode_the_key_and_the_codec(tmp_path):
    episode = LocalDataset(write_dataset(tmp_path, num_episodes=1, skip=(keys.IMAGE_EXTERIOR,)))[0]
    with pytest.raises(MissingSignalError, match=r'image\.exterior') as info:
        eepose_absolute.instantiate().project_episode(episode, fps=30)
    assert str(episode.path) in str(info.value)
    no_action = LocalDataset(write_dataset(tmp_path / 'b', num_episodes=1, skip=(keys.TARGET_GRIP,)))[0]
    with pytest.raises(MissingSignalError, match=r'target_grip.*eepose_absolute'):
        eepose_absolute.instantiate().project_episode(no_action, fps=30)
    with pytest.raises(MissingSignalError, match=r'robot_state\.q'):
        joints_absolute.instantiate().encode({keys.GRIP: 0.0})


def test_image_size_accepts_int_or_pair_and_rejects_odd_sizes():
    assert image_size_pair(96) == (96, 96)
    assert image_size_pair([128, 96]) == (128, 96)
    for bad in (0, 95, 'big', [1, 2, 3]):
        with pytest.raises(ValueError, match='image_size'):
            image_size_pair(bad)


def test_a_camera_shape_flips_from_the_dataset_layout_to_the_policy_layout_and_both_give_the_image_size():
    codec = eepose_absolute.override(image_size=[128, 96]).instantiate()
    dataset_shape = codec.features()[LEFT]['shape']
    assert dataset_shape == [96, 128, 3] and channel_first(dataset_shape) == [3, 96, 128]
    assert image_size_of({LEFT: {'shape': dataset_shape}}) == (128, 96)
    assert image_size_of({LEFT: {'type': 'VISUAL', 'shape': channel_first(dataset_shape)}}) == (128, 96)


def test_features_check_accepts_matching_dataset_and_policy_features():
    codec = eepose_absolute.override(image_size=[128, 96]).instantiate()
    check_features_match(codec, codec.features(), 'a dataset')
    policy_features = {
        OBSERVATION_STATE: {'type': 'STATE', 'shape': [8]},
        LEFT: {'type': 'VISUAL', 'shape': [3, 96, 128]},
        SIDE: {'type': 'VISUAL', 'shape': [3, 96, 128]},
        ACTION: {'type': 'ACTION', 'shape': [8]},
    }
    check_features_match(codec, policy_features, 'a checkpoint')
    assert image_size_of(policy_features) == (128, 96)
    with pytest.raises(CodecMismatchError, match=r"'observation.images.left' has shape \[3, 64, 64\]"):
        check_features_match(codec, {**policy_features, LEFT: {'type': 'VISUAL', 'shape': [3, 64, 64]}}, 'x')
    with pytest.raises(CodecMismatchError, match='unexpected features'):
        check_features_match(codec, {**policy_features, 'observation.images.top': LEFT}, 'x')
