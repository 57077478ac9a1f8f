import time

import numpy as np
import pytest

from positronic import keys
from positronic.dataset import LocalDataset, LocalDatasetWriter
from positronic.evaluation.episode import EpisodeRun, LoopSettings
from positronic.evaluation.recorder import EpisodeRecorder
from positronic.policy.action import cartesian_action
from positronic.sim import World
from tests.evaluation.policies import ScriptedPolicy, hold, hold_then

FPS = 15


@pytest.fixture(scope='module')
def world():
    with World(camera_size=(64, 48)) as w:
        yield w


def run_for(episode: EpisodeRun, seconds: float) -> int:
    ticks = 0
    while episode.elapsed_s + 1e-6 < seconds and episode.tick():
        ticks += 1
    return ticks


def test_each_tick_executes_one_action_and_the_policy_is_queried_when_the_chunk_is_used_up(world):
    policy = hold(chunk_size=4)
    episode = EpisodeRun(world, policy, LoopSettings(policy_fps=FPS), iteration=0, seed=3)
    assert run_for(episode, 1.0) == FPS
    result = episode.finish()
    assert result.policy_calls == 4 and len(result.scores) == FPS and result.failure is None
    assert result.duration_s == pytest.approx(1.0, abs=0.01)
    assert policy.resets == [{keys.TASK: keys.STACK_CUBES_TASK}]
    observation = policy.observations[0]
    assert observation[keys.TASK] == keys.STACK_CUBES_TASK
    assert observation[keys.IMAGE_WRIST].shape == (48, 64, 3) and observation[keys.ROBOT_Q].shape == (7,)


def test_actions_per_chunk_caps_the_actions_taken_from_each_chunk(world):
    policy = hold(chunk_size=4)
    episode = EpisodeRun(world, policy, LoopSettings(policy_fps=FPS, actions_per_chunk=2), iteration=0, seed=3)
    run_for(episode, 1.0)
    assert episode.finish().policy_calls == 8


def test_temporal_ensembling_queries_every_tick_and_executes_the_mean_of_overlapping_predictions(world, tmp_path):
    def chunk(call, obs):  # call c says "hold x0 + 1 cm * c" for its 4 ticks
        return [cartesian_action(start + np.array([0.01 * call, 0, 0, 0, 0, 0, 0]), 0.0)] * 4

    world.reset(3)
    start = world.ee_pose()
    recorder = EpisodeRecorder(LocalDatasetWriter(tmp_path).new_episode())
    settings = LoopSettings(policy_fps=FPS, temporal_ensemble_coeff=0.0)
    episode = EpisodeRun(world, ScriptedPolicy(chunk), settings, iteration=0, seed=3, recorder=recorder)
    assert run_for(episode, 1.0) == FPS
    assert episode.finish().policy_calls == FPS
    commanded = np.array([pose for pose, _ in LocalDataset(tmp_path)[0][keys.COMMAND_POSE]])[:, 0] - start[0]
    # tick t is covered by calls max(0, t - 3)..t; their plain mean is 1 cm * (t - 1.5) from tick 3 on
    assert commanded[:3] == pytest.approx([0.0, 0.005, 0.01], abs=1e-9)
    assert commanded[3:] == pytest.approx(0.01 * (np.arange(3, FPS) - 1.5), abs=1e-9)


def test_a_non_finite_action_is_rejected_the_robot_holds_and_the_iteration_fails(world):
    policy = hold_then(np.array([np.nan, 0.0, 0.4]), after_calls=5)
    episode = EpisodeRun(world, policy, LoopSettings(policy_fps=FPS), iteration=0, seed=4)
    assert run_for(episode, 2.0) == 5
    held_pose = world.ee_pose()
    world.step(0.5)
    np.testing.assert_allclose(world.ee_pose()[:3], held_pose[:3], atol=2e-3)
    result = episode.finish()
    assert not result.success and result.failure.startswith('rejected action:')
    assert 'non-finite' in result.failure


def test_an_unreachable_pose_is_rejected_as_a_failure(world):
    episode = EpisodeRun(world, hold_then(np.array([3.0, 0.0, 0.4]), after_calls=2), LoopSettings(), 0, seed=4)
    assert run_for(episode, 2.0) == 2
    assert episode.finish().failure.startswith('rejected action:')


def test_a_policy_error_ends_the_iteration_with_its_reason(world):
    def chunk(call, obs):
        if call == 1:
            raise RuntimeError('model exploded')
        return [cartesian_action(obs[keys.ROBOT_EE_POSE], 0.0)]

    episode = EpisodeRun(world, ScriptedPolicy(chunk), LoopSettings(), 0, seed=5)
    assert run_for(episode, 1.0) == 1
    assert episode.finish().failure == 'policy error: RuntimeError: model exploded'


def test_an_empty_chunk_is_a_policy_error(world):
    episode = EpisodeRun(world, ScriptedPolicy(lambda call, obs: []), LoopSettings(), 0, seed=5)
    assert run_for(episode, 1.0) == 0
    assert 'expected a non-empty list of actions' in episode.finish().failure


def slow_hold(delay_s: float) -> ScriptedPolicy:
    def chunk(call, obs):
        time.sleep(delay_s)
        return [cartesian_action(obs[keys.ROBOT_EE_POSE], 0.0)] * 5

    return ScriptedPolicy(chunk)


def test_simulate_latency_advances_sim_time_by_each_policy_calls_wall_time(world):
    episode = EpisodeRun(world, slow_hold(0.1), LoopSettings(policy_fps=FPS, simulate_latency=True), 0, seed=6)
    for _ in range(10):
        episode.tick()
    latency_s = sum(episode.latencies_s)
    assert len(episode.latencies_s) == 2 and latency_s >= 0.2
    assert episode.elapsed_s == pytest.approx(10 / FPS + latency_s, abs=0.005)

    instant = EpisodeRun(world, slow_hold(0.1), LoopSettings(policy_fps=FPS), 0, seed=6)
    for _ in range(10):
        instant.tick()
    assert instant.elapsed_s == pytest.approx(10 / FPS, abs=0.003)


def test_realtime_paces_sim_time_to_the_wall_clock(world):
    episode = EpisodeRun(world, hold(), LoopSettings(policy_fps=FPS, realtime=True), 0, seed=7)
    started = time.monotonic()
    run_for(episode, 0.5)
    assert time.monotonic() - started >= 0.48


def test_a_world_aware_policy_is_attached_after_each_reset_and_before_its_reset(world):
    events = []

    class Aware(ScriptedPolicy):
        def attach_world(self, attached, seed):
            events.append(('attach', attached is world, seed, attached.time_ns))

        def reset(self, context=None):
            events.append(('reset',))

    EpisodeRun(world, Aware(lambda c, o: []), LoopSettings(), 0, seed=11)
    assert events == [('attach', True, 11, world.time_ns), ('reset',)]


def test_the_recording_holds_every_tick_the_executed_commands_and_the_outcome(world, tmp_path):
    recorder = EpisodeRecorder(LocalDatasetWriter(tmp_path).new_episode())
    statics = {'inference.policy.type': 'hold', 'inference.actions_per_chunk': None}
    episode = EpisodeRun(world, hold(), LoopSettings(policy_fps=FPS), 2, seed=12, recorder=recorder, statics=statics)
    start_ns = episode.start_ns
    run_for(episode, 1.0)
    result = episode.finish()
    assert result.episode_path == recorder.path

    recorded = LocalDataset(tmp_path)[0]
    for name in (keys.ROBOT_Q, keys.ROBOT_DQ, keys.ROBOT_EE_POSE, keys.GRIP, keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR):
        assert len(recorded[name]) == FPS, name
    assert len(recorded[keys.STACKING_SUCCESS]) == FPS and len(recorded[keys.BOX_DISTANCE]) == FPS
    assert len(recorded[keys.COMMAND_POSE]) == FPS and len(recorded[keys.TARGET_GRIP]) == FPS
    frame, frame_ts = recorded[keys.IMAGE_WRIST][0]
    assert frame.shape == (48, 64, 3) and frame_ts == start_ns
    score, score_ts = recorded[keys.STACKING_SUCCESS][0]
    assert score_ts == start_ns and score == result.scores[0]
    assert recorded[keys.COMMAND_POSE][0][1] == start_ns
    assert recorded[keys.COMMAND_POSE][FPS - 1][1] == recorded[keys.ROBOT_Q][FPS - 1][1]
    static = recorded.static
    assert static[keys.TASK] == keys.STACK_CUBES_TASK
    assert static['seed'] == 12 and static['simulation.iteration'] == 2 and static['success'] is False
    assert static['policy_calls'] == 4 and static['inference.policy.type'] == 'hold'
    assert 'inference.actions_per_chunk' not in static and 'failure' not in static


def test_a_discarded_iteration_leaves_no_episode(world, tmp_path):
    recorder = EpisodeRecorder(LocalDatasetWriter(tmp_path).new_episode())
    episode = EpisodeRun(world, hold(), LoopSettings(), 0, seed=1, recorder=recorder)
    run_for(episode, 0.3)
    assert episode.finish(keep=False) is None
    assert len(LocalDataset(tmp_path)) == 0 and not any(tmp_path.glob('*/*'))


def test_a_policy_that_cannot_start_fails_the_iteration_without_a_recording(world, tmp_path):
    from positronic.policy.base import PolicyUnavailableError

    class Unreachable(ScriptedPolicy):
        def reset(self, context=None):
            self.resets.append(context)
            raise PolicyUnavailableError('cannot reach the inference server at gpu-box:8000')

    policy = Unreachable(lambda c, o: [])
    recorder = EpisodeRecorder(LocalDatasetWriter(tmp_path).new_episode())
    settings = LoopSettings(connect_attempts=2, retry_delay_s=0.01)
    episode = EpisodeRun(world, policy, settings, 0, seed=1, recorder=recorder)
    assert not episode.tick() and len(policy.resets) == 2
    result = episode.finish()
    assert result.failure.startswith('policy reset failed: PolicyUnavailableError: starting the policy failed after 2')
    assert result.policy_calls == 0 and result.episode_path is None and not any(tmp_path.glob('*/*'))
