import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from positronic import keys
from positronic.command import DATA_ERROR_EXIT_CODE, USAGE_ERROR_EXIT_CODE
from positronic.offboard import protocol, wire
from positronic.offboard.access import AUTH_TOKEN_ENV
from positronic.offboard.client import InferenceClient, OffboardError
from positronic.offboard.server import ServerSettings, ServerThread
from positronic.policy.action import parse_action
from positronic.policy.remote import RemotePolicy
from positronic.vendors.lerobot.serving.checkpoint_selection import CheckpointNotFoundError, select_checkpoint
from positronic.vendors.lerobot.serving.policy import ACTRunner
from positronic.vendors.lerobot.serving.server import CheckpointSource, main, server_settings
from positronic.vendors.lerobot.training.checkpoint import CHECKPOINTS_DIR, CODEC_FILE, PRETRAINED_DIR
from positronic.vendors.lerobot.training.train import train
from tests.command_lines import reported_error
from tests.offboard.positronic041_run import run_positronic041_client
from tests.offboard.raw import get_json, handshake, open_raw, recv, request
from tests.vendors.lerobot.tiny_act import (
    N_ACTION_STEPS,
    add_lerobot_checkpoint,
    raw_observation,
    write_tiny_experiment,
)
from tests.vendors.lerobot.tiny_dataset import write_tiny_dataset

SETTINGS = ServerSettings(max_message_bytes=4 * 1024 * 1024, status_interval_s=0.2)
REPO_ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture(scope='module')
def experiment(tmp_path_factory):
    return write_tiny_experiment(tmp_path_factory.mktemp('experiment') / 'my_task_v1')


@pytest.fixture(scope='module')
def server(experiment):
    source = CheckpointSource(experiment, device='cpu', extra_meta={'host': '127.0.0.1'})
    with ServerThread(source, settings=SETTINGS) as running:
        yield running


@pytest.fixture(scope='module')
def client(server):
    return InferenceClient('127.0.0.1', server.port)


def _poses(chunk) -> np.ndarray:
    return np.stack([action['robot_command']['pose'] for action in chunk])


def _in_process(pretrained_dir, observation) -> np.ndarray:
    return _poses(ACTRunner.load(pretrained_dir, device='cpu').infer(observation))


def test_models_are_the_checkpoint_steps_sorted_numerically(server, client):
    assert get_json(server.port, protocol.MODELS_PATH) == {'models': ['10', '20']}
    assert client.list_models() == ['10', '20']


def test_the_default_session_serves_the_latest_checkpoint_after_loading(server, experiment):
    with open_raw(server.port) as ws:
        messages = handshake(ws)
    assert messages[-1][protocol.STATUS] == protocol.STATUS_READY
    assert all(m[protocol.STATUS] == protocol.STATUS_LOADING for m in messages[:-1])
    meta = messages[-1][protocol.META]
    assert meta['step'] == 20
    assert meta['checkpoint_path'] == str(experiment / 'checkpoints' / '000020' / 'pretrained_model')
    assert (meta['type'], meta['device'], meta['host']) == ('act', 'cpu', '127.0.0.1')
    assert meta['codec'] == 'eepose_absolute'
    assert meta['features']['observation.state'] == {'type': 'STATE', 'shape': [8]}
    assert meta['features']['action'] == {'type': 'ACTION', 'shape': [8]}


def test_the_client_gets_the_same_chunk_as_the_policy_in_process(client, experiment):
    observation = raw_observation(seed=7, image_hw=(480, 480))
    with client.new_session() as session:
        chunk = session.infer(observation)
    assert len(chunk) == N_ACTION_STEPS
    for action in chunk:
        assert action['robot_command']['pose'].dtype == np.float64
        parse_action(action)
    expected = _in_process(select_checkpoint(experiment)[1], observation)
    np.testing.assert_allclose(_poses(chunk), expected, atol=1e-6)


@pytest.mark.parametrize('model_id', ['10', '000010', 10])
def test_a_session_picks_a_checkpoint_by_step(client, experiment, model_id):
    observation = raw_observation(seed=8)
    with client.new_session(model_id) as session:
        assert session.meta['step'] == 10
        chunk = session.infer(observation)
    np.testing.assert_allclose(_poses(chunk), _in_process(select_checkpoint(experiment, 10)[1], observation), atol=1e-6)


@pytest.mark.parametrize('model_id', ['15', '..', 'last', '20/pretrained_model', '%2Fetc'])
def test_a_session_on_anything_but_a_listed_step_is_refused(server, model_id):
    with open_raw(server.port, model_id) as ws:
        messages = handshake(ws)
        assert messages[-1][protocol.STATUS] == protocol.STATUS_ERROR
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.code == protocol.CLOSE_POLICY_VIOLATION


def test_switching_checkpoints_waits_for_the_live_session_then_loads_the_other(server):
    with open_raw(server.port, '20') as holder:
        handshake(holder)
        with open_raw(server.port, '10') as switcher:
            assert recv(switcher)[protocol.STATUS] == protocol.STATUS_WAITING
            assert len(request(holder, raw_observation())[protocol.RESULT]) == N_ACTION_STEPS
            holder.close()
            messages = handshake(switcher)
    statuses = [m[protocol.STATUS] for m in messages]
    assert statuses[-1] == protocol.STATUS_READY and protocol.STATUS_LOADING in statuses
    assert messages[-1][protocol.META]['step'] == 10
    assert server.manager.loaded_model_id == '10'


def test_a_bad_observation_gets_an_error_and_the_session_goes_on(server):
    observation = raw_observation(seed=9)
    with open_raw(server.port) as ws:
        handshake(ws)
        broken = {k: v for k, v in observation.items() if k != keys.IMAGE_WRIST}
        assert 'image.wrist' in request(ws, broken)[protocol.ERROR]
        assert 'expected 7 values' in request(ws, {**observation, keys.ROBOT_EE_POSE: np.zeros(6)})[protocol.ERROR]
        assert len(request(ws, observation)[protocol.RESULT]) == N_ACTION_STEPS


def test_an_empty_image_or_invalid_state_gets_a_clear_error_reply_and_the_server_stays_usable(server, client):
    observation = raw_observation(seed=9)
    pose = observation[keys.ROBOT_EE_POSE]
    invalid = [
        (keys.IMAGE_WRIST, np.zeros((0, 0, 3), np.uint8), "'image.wrist': expected a uint8 (H, W, 3) image"),
        (keys.GRIP, True, "'grip': expected real numbers, got bool True"),
        (keys.GRIP, 2**64 - 1, "'grip': expected values in [-0.1, 1.1]"),
        (keys.ROBOT_EE_POSE, np.r_[pose[:3], np.zeros(4)], "'robot_state.ee_pose': quaternion"),
    ]
    with open_raw(server.port) as ws:
        handshake(ws)
        for key, value, message in invalid:
            error = request(ws, {**observation, key: value})[protocol.ERROR]
            assert error.startswith(f'InvalidObservationError: observation {message}'), error
        assert len(request(ws, observation)[protocol.RESULT]) == N_ACTION_STEPS
    with client.new_session() as session:
        assert len(session.infer(observation)) == N_ACTION_STEPS


def test_remote_policy_gets_chunks_from_the_server(server):
    policy = RemotePolicy(host='127.0.0.1', port=server.port, model_id=10, infer_timeout_s=30)
    try:
        assert policy.meta['server.step'] == 10
        assert len(policy.select_action(raw_observation(image_hw=(720, 1280)))) == N_ACTION_STEPS
        policy.reset()
        assert len(policy.select_action(raw_observation(seed=1))) == N_ACTION_STEPS
    finally:
        policy.close()


def test_a_configured_checkpoint_is_the_default(experiment):
    source = CheckpointSource(experiment, checkpoint=10, device='cpu')
    with (
        ServerThread(source, settings=SETTINGS) as server,
        InferenceClient('127.0.0.1', server.port).new_session() as s,
    ):
        assert s.meta['step'] == 10


def test_a_configured_checkpoint_that_is_missing_is_refused_at_start_and_per_session(experiment):
    source = CheckpointSource(experiment, checkpoint=99, device='cpu')
    with pytest.raises(CheckpointNotFoundError, match=r'no checkpoint 99 .* available steps: \[10, 20\]'):
        source.check()
    with ServerThread(source, settings=SETTINGS) as server, open_raw(server.port) as ws:
        handshake(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
    assert closed.value.rcvd.reason == protocol.REASON_CONFIGURED_MODEL_NOT_FOUND


@pytest.mark.parametrize(
    'flags, code, named',
    [
        (
            ['--codec=@positronic.vendors.lerobot.codecs.eepose_absolute'],
            DATA_ERROR_EXIT_CODE,
            "32x32, but codec 'eepose_absolute' at 480x480 was asked for",
        ),
        (['--checkpoints_dir=/nowhere/experiment'], DATA_ERROR_EXIT_CODE, '/nowhere/experiment does not exist'),
        (['--device=tpu'], USAGE_ERROR_EXIT_CODE, "--device='tpu' is not a device"),
        (['--log_level=verbose'], USAGE_ERROR_EXIT_CODE, "--log_level='verbose': expected one of debug, info, warning"),
        (['--checkpoint=last'], USAGE_ERROR_EXIT_CODE, "--checkpoint='last' is not a training step"),
        (['--port=1', '--no_such_flag=1'], USAGE_ERROR_EXIT_CODE, 'unknown flag --no_such_flag'),
    ],
    ids=['contradicting-codec', 'missing-directory', 'unknown-device', 'log-level', 'checkpoint', 'unknown-flag'],
)
def test_a_refused_start_is_one_line_with_its_exit_code(experiment, flags, code, named):
    exit_code, line = reported_error(main, [f'--checkpoints_dir={experiment}', '--port=0', *flags])
    assert exit_code == code and line.startswith('positronic-lerobot-server: error: ') and named in line, line


def test_a_malformed_codec_record_is_a_data_error_naming_the_file(tmp_path):
    experiment = write_tiny_experiment(tmp_path / 'experiment', steps=(10,))
    record = experiment / CHECKPOINTS_DIR / '000010' / PRETRAINED_DIR / CODEC_FILE
    record.write_text('{"codec": ')
    exit_code, line = reported_error(main, [f'--checkpoints_dir={experiment}', '--port=0'])
    assert exit_code == DATA_ERROR_EXIT_CODE and f'{record} is not valid JSON' in line, line


@pytest.mark.parametrize(
    ('flag', 'expected'),
    [
        ('--max_message_bytes=-1', 'error: --max_message_bytes=-1: expected a whole number above zero'),
        ('--idle_timeout_s=0', 'error: --idle_timeout_s=0: expected a number of seconds above zero'),
        ('--max_connections=0', 'error: --max_connections=0: expected a whole number above zero'),
    ],
)
def test_the_command_refuses_a_limit_out_of_range_with_one_line_and_exit_code_2(experiment, flag, expected):
    exit_code, line = reported_error(main, [f'--checkpoints_dir={experiment}', flag, '--port=1'])
    assert (exit_code, line) == (USAGE_ERROR_EXIT_CODE, f'positronic-lerobot-server: {expected}')


def test_clients_see_the_checkpoints_dir_hidden_unless_paths_are_revealed(experiment):
    source = CheckpointSource(experiment, device='cpu')
    for reveal, shown in ((False, '<checkpoints_dir>'), (True, str(experiment))):
        settings = server_settings(experiment, SETTINGS.max_message_bytes, None, reveal, status_interval_s=0.2)
        with ServerThread(source, settings=settings) as server:
            with InferenceClient('127.0.0.1', server.port).new_session(20) as session:
                assert session.meta['checkpoint_path'] == f'{shown}/checkpoints/000020/pretrained_model'
            with pytest.raises(OffboardError) as refused:
                InferenceClient('127.0.0.1', server.port).new_session(15)
        assert f"no checkpoint '15' under {shown}; available steps: [10, 20]" in str(refused.value)


def test_the_server_token_defaults_to_the_environment(experiment, monkeypatch):
    monkeypatch.setenv(AUTH_TOKEN_ENV, 'from-env')
    assert server_settings(experiment, SETTINGS.max_message_bytes, None, False).auth_token == 'from-env'
    assert server_settings(experiment, SETTINGS.max_message_bytes, 'flag', False).auth_token == 'flag'
    assert server_settings(experiment, SETTINGS.max_message_bytes, 123, False).auth_token == '123'
    monkeypatch.setenv(AUTH_TOKEN_ENV, '')
    assert server_settings(experiment, SETTINGS.max_message_bytes, None, False).auth_token is None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _command(*args: str) -> list[str]:
    return [sys.executable, '-m', 'positronic.vendors.lerobot.serving.server', *args]


def test_the_documented_command_serves_the_experiment(experiment):
    port = _free_port()
    args = [f'--checkpoints_dir={experiment}', '--host=127.0.0.1', f'--port={port}', '--device=cpu']
    process = subprocess.Popen(_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
    try:
        client = InferenceClient('127.0.0.1', port)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert client.list_models() == ['10', '20']
                break
            except OffboardError:
                assert process.poll() is None, process.stdout.read().decode()[-2000:]
                assert time.monotonic() < deadline, 'the server did not start within 60 s'
                time.sleep(0.2)
        with client.new_session('000010') as session:
            assert (session.meta['step'], session.meta['port']) == (10, port)
            assert len(session.infer(raw_observation())) == N_ACTION_STEPS
    finally:
        process.terminate()
        process.wait(10)


def test_the_command_refuses_a_contradicting_codec_with_a_clear_error(experiment):
    codec = '--codec=@positronic.vendors.lerobot.codecs.eepose_absolute'
    run = subprocess.run(
        _command(f'--checkpoints_dir={experiment}', codec, '--port=1'),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )
    assert run.returncode == 1
    assert "records codec 'eepose_absolute' at 32x32, but codec" in run.stderr and 'Traceback' not in run.stderr


def test_a_lerobot_written_checkpoint_is_served_with_eepose_absolute_at_its_image_size(tmp_path):
    pretrained = add_lerobot_checkpoint(tmp_path)
    observation = raw_observation(seed=2, image_hw=(480, 480))
    with ServerThread(CheckpointSource(tmp_path, device='cpu'), settings=SETTINGS) as server:
        client = InferenceClient('127.0.0.1', server.port)
        assert client.list_models() == ['30']
        with client.new_session() as session:
            assert session.meta['codec'] == 'eepose_absolute'
            assert session.meta['image_size'] == [96, 96]
            chunk = session.infer(observation)
    assert len(chunk) == 10
    np.testing.assert_allclose(_poses(chunk), _in_process(pretrained, observation), atol=1e-6)


@pytest.mark.positronic041
def test_positronic_041_inference_client_uses_our_lerobot_server(positronic041_python, server):
    report = run_positronic041_client(positronic041_python, server.port)
    assert report['protocol_version'] in ('1', 'ProtocolVersion.V1')
    assert report['meta']['step'] == 20 and report['meta']['type'] == 'act'
    assert report['chunk_sizes'] == [N_ACTION_STEPS] * 3
    assert report['command_type'] == 'CartesianPosition'
    assert isinstance(report['target_grip'], float)
    assert "lacks ['robot_state.ee_pose'" in report['error']
    assert report['chunk_size_after_error'] == N_ACTION_STEPS


def test_requests_over_the_size_limit_are_answered_with_an_error(server):
    with open_raw(server.port) as ws:
        handshake(ws)
        big = {**raw_observation(), 'padding': np.zeros(SETTINGS.max_message_bytes + 1, np.uint8)}
        ws.send(wire.pack(big))
        assert 'exceeds the limit' in wire.unpack(ws.recv(timeout=10))[protocol.ERROR]


@pytest.mark.slow
def test_an_experiment_trained_by_positronic_lerobot_train_is_served(tmp_path):
    dataset = write_tiny_dataset(tmp_path / 'dataset', lengths=(8, 8))
    tiny_act = {
        'policy.dim_model': 32,
        'policy.n_heads': 2,
        'policy.dim_feedforward': 64,
        'policy.n_encoder_layers': 1,
        'policy.n_vae_encoder_layers': 1,
        'policy.chunk_size': 5,
        'policy.n_action_steps': 3,
        'policy.pretrained_backbone_weights': None,
    }
    experiment = train(
        input_path=str(dataset),
        exp_name='served',
        output_dir=str(tmp_path / 'checkpoints'),
        num_train_steps=2,
        save_freq=1,
        log_freq=1,
        batch_size=2,
        device='cpu',
        **tiny_act,
    )
    observation = raw_observation(seed=11)
    with ServerThread(CheckpointSource(experiment, device='cpu'), settings=SETTINGS) as server:
        client = InferenceClient('127.0.0.1', server.port)
        assert client.list_models() == ['1', '2']
        with client.new_session() as session:
            assert (session.meta['step'], session.meta['image_size']) == (2, [32, 32])
            assert session.meta['codec'] == 'eepose_absolute'
            chunk = session.infer(observation)
    assert len(chunk) == 3
    np.testing.assert_allclose(_poses(chunk), _in_process(select_checkpoint(experiment)[1], observation), atol=1e-6)
