import json
import os
import signal
import subprocess
import sys

import pytest

from positronic import inference, keys
from positronic.command import DATA_ERROR_EXIT_CODE, INTERRUPTED_EXIT_CODE, USAGE_ERROR_EXIT_CODE
from positronic.dataset import LocalDataset
from positronic.offboard.server import ServerSettings, ServerThread
from tests.evaluation.sources import HoldSource
from tests.evaluation.test_retry import closed_port
from tests.signals import restore_sigint


def run_cli(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, 'argv', ['positronic-inference', *args])
    inference.main()


@pytest.fixture
def server():
    with ServerThread(HoldSource(chunk_size=5), port=0, settings=ServerSettings(status_interval_s=0.2)) as running:
        yield running


def test_help_describes_the_sim_command_and_its_options(monkeypatch, capsys):
    run_cli(monkeypatch, 'sim', '--help')
    text = capsys.readouterr().out
    assert 'Run a policy in the simulated cube-stacking task' in text
    for option in ('policy_fps', 'simulate_latency', 'success_threshold', 'actions_per_chunk', 'num_iterations'):
        assert option in text


def test_every_loop_setting_is_a_sim_flag_with_the_settings_default():
    import dataclasses

    from positronic.evaluation.settings import LoopSettings

    flags = inference.sim.kwargs
    for field in dataclasses.fields(LoopSettings):
        assert flags[field.name] == field.default, field.name


@pytest.mark.parametrize(
    ('flag', 'message'),
    [
        ('--policy_fps=0', '--policy_fps=0.0: expected a positive number of ticks per second'),
        ('--actions_per_chunk=0', '--actions_per_chunk=0: expected an integer of at least 1'),
        ('--success_hold_s=long', "--success_hold_s='long': expected a number"),
        ('--policy.blend=0.7', '--policy.blend must be a number in [0, 0.5], got 0.7'),
    ],
)
def test_a_bad_loop_setting_exits_2_with_one_line_naming_the_flag(monkeypatch, capsys, flag, message):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(monkeypatch, 'sim', '--policy=.expert', flag)
    assert exit_info.value.code == USAGE_ERROR_EXIT_CODE
    err = capsys.readouterr().err
    assert err.startswith(f'positronic-inference: error: {message}') and len(err.splitlines()) == 1


def test_a_local_act_policy_of_a_missing_experiment_exits_1_with_one_line_naming_it(monkeypatch, capsys, tmp_path):
    missing = tmp_path / 'nowhere'
    with pytest.raises(SystemExit) as exit_info:
        run_cli(monkeypatch, 'sim', '--policy=.act', f'--policy.checkpoints_dir={missing}')
    assert exit_info.value.code == DATA_ERROR_EXIT_CODE
    err = capsys.readouterr().err
    assert err.startswith(f'positronic-inference: error: --policy.checkpoints_dir={missing}: ') and str(missing) in err
    assert len(err.splitlines()) == 1


def test_sim_with_a_remote_policy_runs_records_and_summarizes(monkeypatch, capsys, server, tmp_path):
    output = tmp_path / 'inference_logs' / 'my_run'
    run_cli(
        monkeypatch,
        'sim',
        '--policy=.remote',
        '--policy.host=127.0.0.1',
        f'--policy.port={server.port}',
        '--driver.simulation_time=1',
        '--driver.num_iterations=2',
        '--camera_size=[64,48]',
        '--seed=10',
        '--actions_per_chunk=2',
        f'--output_dir={output}',
    )
    out = capsys.readouterr().out
    assert 'success rate: 0/2' in out
    dataset = LocalDataset(output)
    assert [ep.static['seed'] for ep in dataset] == [10, 11]
    assert dataset[0][keys.IMAGE_WRIST][0][0].shape == (48, 64, 3)
    summary = json.loads((output / 'summary.json').read_text())
    assert [it['policy_calls'] for it in summary['iterations']] == [8, 8]
    assert summary['run']['settings']['actions_per_chunk'] == 2


def test_sim_with_the_server_down_exits_with_a_clear_error(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            monkeypatch,
            'sim',
            '--policy.host=127.0.0.1',
            f'--policy.port={closed_port()}',
            '--policy.connect_timeout_s=0.5',
            '--connect_attempts=2',
            '--retry_delay_s=0.1',
        )
    assert exit_info.value.code == DATA_ERROR_EXIT_CODE
    err = capsys.readouterr().err
    assert 'positronic-inference: error: connecting to the policy failed after 2 attempt(s)' in err
    assert 'cannot reach the inference server at 127.0.0.1' in err


def test_the_keyboard_driver_without_a_terminal_exits_with_a_clear_error(monkeypatch, capsys, server):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(monkeypatch, 'sim', '--driver=.keyboard', '--policy.host=127.0.0.1', f'--policy.port={server.port}')
    assert exit_info.value.code == USAGE_ERROR_EXIT_CODE
    assert 'stdin is not a TTY' in capsys.readouterr().err


@pytest.mark.parametrize('blend', ['0.0', '0.5'])
def test_sim_with_the_expert_policy_succeeds_and_records_the_successes(monkeypatch, capsys, tmp_path, blend):
    run_cli(
        monkeypatch,
        'sim',
        '--policy=.expert',
        f'--policy.blend={blend}',
        '--driver.simulation_time=9.5',
        '--driver.num_iterations=2',
        '--camera_size=[64,48]',
        '--seed=3',
        f'--output_dir={tmp_path}',
    )
    assert 'success rate: 2/2 = 100.0%' in capsys.readouterr().out
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['success_rate'] == 1.0 and summary['run']['policy'] == {'type': 'expert'}
    for episode, seed in zip(LocalDataset(tmp_path), (3, 4), strict=True):
        assert episode.static['success'] is True and episode.static['seed'] == seed
        assert 0 < episode.static['time_to_success_s'] < 8.5
        scores = episode[keys.STACKING_SUCCESS]
        assert scores[len(scores) - 1][0] == 1.0


@pytest.mark.slow
def test_sim_with_a_local_act_checkpoint_queries_it_once_per_executed_chunk(monkeypatch, capsys, tmp_path):
    from tests.vendors.lerobot.tiny_act import N_ACTION_STEPS, write_tiny_experiment

    experiment = write_tiny_experiment(tmp_path / 'my_task_v1')
    run_cli(
        monkeypatch,
        'sim',
        '--policy=.act',
        f'--policy.checkpoints_dir={experiment}',
        '--policy.device=cpu',
        '--driver.simulation_time=1',
        '--camera_size=[64,48]',
        f'--output_dir={tmp_path / "run"}',
    )
    (iteration,) = json.loads((tmp_path / 'run' / 'summary.json').read_text())['iterations']
    assert iteration['failure'] is None
    assert iteration['policy_calls'] == -(-15 // N_ACTION_STEPS)
    assert LocalDataset(tmp_path / 'run')[0].static['inference.policy.type'] == 'act'


@pytest.mark.slow
def test_ctrl_c_keeps_the_finished_iterations_prints_the_summary_and_exits_130(tmp_path):
    command = [sys.executable, '-m', 'positronic.inference', 'sim', '--policy=.expert', '--driver.num_iterations=50']
    command += ['--driver.simulation_time=9', '--camera_size=[64,48]', f'--output_dir={tmp_path}']
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=restore_sigint)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith('iteration 0 (seed 0)'):
                process.send_signal(signal.SIGINT)
                break
        lines.extend(process.stdout)
        assert process.wait(60) == INTERRUPTED_EXIT_CODE
    finally:
        process.kill()
    output = ''.join(lines)
    assert 'interrupted: the running iteration was discarded' in output and '[interrupted]' in output
    dataset = LocalDataset(tmp_path)
    summary = json.loads((tmp_path / 'summary.json').read_text())
    assert summary['interrupted'] is True and summary['total'] == len(dataset) >= 1, (output, summary)
    assert len(list(tmp_path.glob('*/*'))) == len(dataset)  # the interrupted episode left nothing behind
