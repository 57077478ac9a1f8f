import json

import pytest

from positronic import keys
from positronic.command import UsageError
from positronic.dataset import LocalDataset
from positronic.evaluation.drivers import TimedDriver
from positronic.evaluation.plot import SUMMARY_PNG
from positronic.evaluation.results import SUMMARY_JSON
from positronic.evaluation.runner import run_evaluation
from positronic.evaluation.settings import LoopSettings
from positronic.offboard.server import ServerSettings, ServerThread
from positronic.policy.action import cartesian_action
from positronic.policy.base import PolicyUnavailableError
from positronic.policy.remote import RemotePolicy
from tests.evaluation.policies import ScriptedPolicy
from tests.evaluation.sources import INJECTED_ERROR, HoldSource
from tests.evaluation.test_retry import closed_port

CAMERA = (64, 48)
FAST = LoopSettings(connect_attempts=2, retry_delay_s=0.05)


def serve(source: HoldSource) -> ServerThread:
    settings = ServerSettings(status_interval_s=0.2, inference_threads=2)  # a late answer blocks no new session
    return ServerThread(source, host='127.0.0.1', port=0, settings=settings)


def remote(server: ServerThread, **kw) -> RemotePolicy:
    return RemotePolicy(host='127.0.0.1', port=server.port, connect_timeout_s=2.0, **kw)


def test_a_served_policy_runs_end_to_end_and_its_recording_reopens(tmp_path, capsys):
    source = HoldSource(chunk_size=5)
    with serve(source) as server:
        summary = run_evaluation(
            remote(server), TimedDriver(2, 1.0), FAST, seed=5, camera_size=CAMERA, output_dir=tmp_path / 'run'
        )
    assert [(r.iteration, r.seed, r.policy_calls, r.failure) for r in summary.results] == [
        (0, 5, 3, None),
        (1, 6, 3, None),
    ]
    assert all(not r.success for r in summary.results) and not summary.interrupted
    assert {keys.TASK, keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR, keys.ROBOT_EE_POSE, keys.GRIP} <= set(
        source.observed_keys[0]
    )
    printed = capsys.readouterr().out
    assert 'success rate: 0/2 = 0.0% (95% Wilson CI 0.0%-65.8%)' in printed

    dataset = LocalDataset(tmp_path / 'run')
    assert len(dataset) == 2
    assert dataset[1].static['seed'] == 6 and dataset[1].static['inference.policy.type'] == 'remote'
    assert dataset[1].static['inference.policy.server.type'] == 'hold'
    assert len(dataset[0][keys.STACKING_SUCCESS]) == 15 and len(dataset[0][keys.IMAGE_EXTERIOR]) == 15
    data = json.loads((tmp_path / 'run' / SUMMARY_JSON).read_text())
    assert data['total'] == 2 and data['run']['policy']['server.type'] == 'hold' and data['run']['seed'] == 5
    assert data['iterations'][0]['episode_path'] == str(dataset.episode_paths[0])
    assert (tmp_path / 'run' / SUMMARY_PNG).stat().st_size > 10_000


def test_an_unreachable_server_at_start_is_a_clear_error_after_bounded_retries(tmp_path):
    policy = RemotePolicy(host='127.0.0.1', port=closed_port(), connect_timeout_s=0.5)
    with pytest.raises(PolicyUnavailableError, match=r'connecting to the policy failed after 2 attempt\(s\)') as error:
        run_evaluation(policy, TimedDriver(1, 1.0), FAST, camera_size=CAMERA, output_dir=tmp_path / 'run')
    assert 'cannot reach the inference server at 127.0.0.1' in str(error.value)
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('key', ['n_action_steps', 'server.n_action_steps'])
def test_actions_per_chunk_above_what_the_policy_answers_per_query_is_refused_before_the_run(tmp_path, key):
    policy = ScriptedPolicy(lambda call, obs: [], meta={'type': 'act', key: 4})
    settings = LoopSettings(actions_per_chunk=5)
    with pytest.raises(UsageError, match=r"--actions_per_chunk=5: expected 1\.\.the policy's n_action_steps \(4\)"):
        run_evaluation(policy, TimedDriver(1, 1.0), settings, camera_size=CAMERA, output_dir=tmp_path / 'run')
    assert not (tmp_path / 'run').exists()


def test_a_server_error_mid_episode_fails_that_iteration_and_the_run_goes_on():
    with serve(HoldSource(chunk_size=5, fail_calls={1})) as server:
        summary = run_evaluation(remote(server), TimedDriver(2, 1.0), FAST, camera_size=CAMERA)
    first, second = summary.results
    assert first.failure.startswith('policy error: ServerError') and INJECTED_ERROR in first.failure
    assert first.policy_calls == 2 and not first.success
    assert second.failure is None and second.policy_calls == 3


def test_a_lost_session_mid_episode_fails_that_iteration_and_the_next_one_reconnects():
    with serve(HoldSource(chunk_size=5, delay_calls={1: 3.0})) as server:
        summary = run_evaluation(remote(server, infer_timeout_s=1.0), TimedDriver(2, 1.0), FAST, camera_size=CAMERA)
        sessions = server.manager.sessions_started
    first, second = summary.results
    assert first.failure.startswith('policy error: ServerTimeoutError') and first.policy_calls == 2
    assert max(first.latencies_s) >= 1.0
    assert second.failure is None and second.policy_calls == 3
    assert sessions >= 3  # meta, then one per iteration


def test_ctrl_c_discards_the_running_iteration_and_summarizes_the_finished_ones(tmp_path, capsys):
    def chunk(call, obs):
        if call == 20:
            raise KeyboardInterrupt
        return [cartesian_action(obs[keys.ROBOT_EE_POSE], 0.0)]

    policy = ScriptedPolicy(chunk)
    summary = run_evaluation(policy, TimedDriver(3, 1.0), FAST, camera_size=CAMERA, output_dir=tmp_path)
    assert summary.interrupted and [r.iteration for r in summary.results] == [0]
    assert policy.closed
    assert len(LocalDataset(tmp_path)) == 1 and len(list(tmp_path.glob('*/*'))) == 1
    assert json.loads((tmp_path / SUMMARY_JSON).read_text())['interrupted'] is True
    assert 'success rate: 0/1 = 0.0% (95% Wilson CI 0.0%-79.3%) [interrupted]' in capsys.readouterr().out
