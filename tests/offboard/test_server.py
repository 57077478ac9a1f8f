import dataclasses
import logging
import re
import threading
import time

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed

from positronic import keys
from positronic.offboard import protocol, wire
from positronic.offboard.models import ModelNotFoundError
from positronic.offboard.server import ServerSettings, ServerThread
from positronic.policy.action import parse_action
from tests.offboard.conftest import MAX_MESSAGE_BYTES, STATUS_INTERVAL_S
from tests.offboard.raw import eventually, get_json, handshake, open_raw, recv, request
from tests.offboard.sources import StepSource, expected_translations, observation


def _ready(ws) -> dict:
    messages = handshake(ws)
    assert messages[-1][protocol.STATUS] == protocol.STATUS_READY, messages
    return messages[-1][protocol.META]


def _assert_refused(ws, reason: str) -> str:
    messages = handshake(ws)
    assert messages[-1][protocol.STATUS] == protocol.STATUS_ERROR
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd.code == protocol.CLOSE_POLICY_VIOLATION
    assert closed.value.rcvd.reason == reason
    return messages[-1][protocol.ERROR]


def test_models_endpoint_lists_ids_sorted_numerically(server):
    assert get_json(server.port, protocol.MODELS_PATH) == {'models': ['1000', '2000', '10000']}


def test_models_endpoint_answers_an_empty_list_when_listing_fails(source, settings):
    def broken() -> list[str]:
        raise OSError('checkpoints directory is gone')

    source.model_ids = broken
    with ServerThread(source, settings=settings) as server:
        assert get_json(server.port, protocol.MODELS_PATH) == {'models': []}


def test_handshake_sends_loading_then_ready_with_meta_after_warm_up(server, source):
    with open_raw(server.port) as ws:
        messages = handshake(ws)
    assert [m[protocol.STATUS] for m in messages] == [protocol.STATUS_LOADING, protocol.STATUS_READY]
    assert '10000' in messages[0][protocol.MESSAGE]
    assert messages[-1][protocol.META] == {
        'type': 'step',
        'model_id': '10000',
        'chunk_size': 4,
        'features': {'state': [8]},
    }
    assert source.events == [('load', '10000'), ('warm_up', '10000')]


def test_a_session_on_the_loaded_model_is_ready_at_once(server, source):
    with open_raw(server.port, '2000') as first:
        _ready(first)
    with open_raw(server.port, '2000') as second:
        assert [m[protocol.STATUS] for m in handshake(second)] == [protocol.STATUS_READY]
    assert source.events.count(('load', '2000')) == 1


def test_each_request_answers_a_chunk_of_wire_form_actions(server):
    with open_raw(server.port) as ws:
        _ready(ws)
        for x in (0.3, 0.45):
            reply = request(ws, observation(x=x, brightness=51))
            assert set(reply) == {protocol.RESULT}
            chunk = reply[protocol.RESULT]
            assert len(chunk) == 4
            for action, translation in zip(chunk, expected_translations(x, 4), strict=True):
                pose = action['robot_command']['pose']
                assert action['robot_command']['type'] == 'cartesian_pos'
                assert pose.dtype == np.float64 and pose.shape == (12,)
                np.testing.assert_allclose(pose[:3], translation)
                np.testing.assert_allclose(pose[3:].reshape(3, 3), np.diag([1.0, -1.0, -1.0]), atol=1e-12)
                assert action['target_grip'] == pytest.approx(0.2)
                parse_action(action)


@pytest.mark.parametrize(
    'frame, match',
    [
        ('{"robot_state.q": [0, 0]}', 'text frames are not supported'),
        (b'\xc1\x00', 'malformed msgpack'),
        (msgpack.packb([1, 2, 3]), 'must be a map with str keys'),
        (wire.pack({'task': 'only a task'}), "KeyError: 'robot_state.ee_pose'"),
        (
            wire.pack({**observation(), keys.ROBOT_EE_POSE: np.zeros(6)}),
            r'robot_state.ee_pose must have shape \(7,\)',
        ),
        (
            msgpack.packb(
                {keys.ROBOT_EE_POSE: {b'__ndarray__': True, b'data': b'\0' * 8, b'dtype': '|O', b'shape': [1]}}
            ),
            'not allowed',
        ),
        (
            msgpack.packb(
                {keys.ROBOT_EE_POSE: {b'__ndarray__': True, b'data': b'\0' * 8, b'dtype': '<f8', b'shape': [7]}}
            ),
            'needs 56 bytes, got 8',
        ),
    ],
    ids=['text-frame', 'malformed', 'not-a-map', 'missing-key', 'wrong-shape', 'object-dtype', 'short-buffer'],
)
def test_a_bad_request_answers_an_error_and_the_session_goes_on(server, frame, match):
    with open_raw(server.port) as ws:
        _ready(ws)
        ws.send(frame)
        reply = recv(ws)
        assert set(reply) == {protocol.ERROR}
        assert re.search(match, reply[protocol.ERROR]), reply
        assert len(request(ws, observation())[protocol.RESULT]) == 4


def test_a_message_over_the_limit_answers_an_error_and_the_session_goes_on(server):
    big = {**observation(), 'image.extra': np.zeros(MAX_MESSAGE_BYTES + 1000, np.uint8)}
    with open_raw(server.port) as ws:
        _ready(ws)
        reply = request(ws, big)
        assert f'exceeds the limit of {MAX_MESSAGE_BYTES} bytes' in reply[protocol.ERROR]
        assert len(request(ws, observation())[protocol.RESULT]) == 4


def test_a_message_over_the_transport_limit_ends_only_that_connection(server):
    with open_raw(server.port) as other, open_raw(server.port) as ws:
        _ready(other)
        _ready(ws)
        # The server closes (1009) as soon as the frame header announces the size, without reading the
        # payload; the client, still writing, may see the close frame or a reset.
        with pytest.raises((ConnectionClosed, OSError)):
            ws.send(wire.pack({'blob': np.zeros(2 * MAX_MESSAGE_BYTES + 1000, np.uint8)}))
            ws.recv(timeout=5)
        assert len(request(other, observation())[protocol.RESULT]) == 4
        assert server.manager.active_sessions == 1


@pytest.mark.parametrize(
    'model_id, match',
    [
        ('5', "no checkpoint '5'"),
        ('abc', "no checkpoint 'abc'"),
        ('..', 'invalid model id'),
        ('../1000', 'invalid model id'),
        ('%2E%2E%2F1000', 'invalid model id'),
        ('/etc/passwd', 'invalid model id'),
        ('1000/..', 'invalid model id'),
        ('', 'invalid model id'),
    ],
)
def test_unknown_or_unsafe_model_ids_are_refused_with_1008(server, source, model_id, match):
    with open_raw(server.port, model_id) as ws:
        error = _assert_refused(ws, protocol.REASON_MODEL_NOT_FOUND)
    assert re.search(match, error)
    assert source.events == []


def test_no_default_model_is_refused_with_1008(settings):
    with ServerThread(StepSource(ids=()), settings=settings) as server, open_raw(server.port) as ws:
        assert 'no checkpoints' in _assert_refused(ws, protocol.REASON_NO_MODELS)


def test_a_model_that_fails_to_load_refuses_the_session_and_the_server_goes_on(settings):
    source = StepSource(fail_ids={'2000'})
    with ServerThread(source, settings=settings) as server:
        with open_raw(server.port, '2000') as ws:
            error = _assert_refused(ws, 'failed to load model 2000: checkpoint 2000 is corrupt')
        assert error == 'failed to load model 2000: checkpoint 2000 is corrupt'
        with open_raw(server.port, '1000') as ws:
            _ready(ws)
            assert len(request(ws, observation())[protocol.RESULT]) == 4


def test_two_sessions_are_served_concurrently(server):
    with open_raw(server.port) as first, open_raw(server.port) as second:
        _ready(first)
        _ready(second)
        for step in range(5):
            for ws, x in ((first, 0.3 + step / 100), (second, 0.5 + step / 100)):
                chunk = request(ws, observation(x=x))[protocol.RESULT]
                np.testing.assert_allclose(chunk[0]['robot_command']['pose'][:3], [x, -0.1, 0.5])
        assert server.manager.active_sessions == 2


def test_at_debug_level_each_answer_logs_its_size_and_where_the_time_went(server, caplog):
    caplog.set_level(logging.DEBUG, logger='positronic.offboard.server')
    sent = [wire.pack(observation(delay_s=delay)) for delay in (0.05, 0.2)]
    with open_raw(server.port) as ws:
        _ready(ws)
        for data in sent:
            ws.send(data)
            assert protocol.RESULT in recv(ws)
    pattern = re.compile(r'answered (\d+) bytes: unpack_ms=([\d.]+) infer_ms=([\d.]+) pack_ms=([\d.]+)')
    timings = [pattern.fullmatch(r.getMessage()) for r in caplog.records if 'infer_ms' in r.getMessage()]
    assert [int(m.group(1)) for m in timings] == [len(data) for data in sent]
    (_, unpack_ms, infer_ms, pack_ms), (_, _, slow_infer_ms, _) = (m.groups() for m in timings)
    assert 50 <= float(infer_ms) < float(slow_infer_ms) and 200 <= float(slow_infer_ms) < 5000
    assert 0 < float(unpack_ms) < 1000 and 0 < float(pack_ms) < 1000


def test_at_info_level_answers_log_nothing(server, caplog):
    caplog.set_level(logging.INFO, logger='positronic.offboard.server')
    with open_raw(server.port) as ws:
        _ready(ws)
        request(ws, observation())
    assert caplog.records, 'the session start is logged at info level'
    assert not [r for r in caplog.records if 'answered' in r.getMessage()]


def test_a_slow_inference_does_not_block_the_event_loop(server):
    with open_raw(server.port) as slow:
        _ready(slow)
        slow.send(wire.pack(observation(delay_s=1.5)))
        time.sleep(0.1)
        started = time.monotonic()
        assert get_json(server.port, protocol.MODELS_PATH)['models']
        with open_raw(server.port) as other:
            _ready(other)
        assert time.monotonic() - started < 1.0
        assert len(recv(slow)[protocol.RESULT]) == 4


def _collect_handshake(port: int, model_id: str, into: list, done: threading.Event, hold: threading.Event):
    with open_raw(port, model_id) as ws:
        while True:
            message = recv(ws, timeout_s=10)
            into.append((time.monotonic(), message))
            if message[protocol.STATUS] not in (protocol.STATUS_WAITING, protocol.STATUS_LOADING):
                break
        into.append((time.monotonic(), request(ws, observation())))
        done.set()
        hold.wait(10)


def test_switching_models_waits_for_live_sessions(server, source):
    messages: list = []
    done, hold = threading.Event(), threading.Event()
    with open_raw(server.port, '1000') as holder:
        _ready(holder)
        switcher = threading.Thread(target=_collect_handshake, args=(server.port, '2000', messages, done, hold))
        switcher.start()
        time.sleep(4 * STATUS_INTERVAL_S)
        statuses = [m[protocol.STATUS] for _, m in messages]
        assert statuses.count(protocol.STATUS_WAITING) >= 3, statuses
        assert set(statuses) == {protocol.STATUS_WAITING}
        assert messages[0][1][protocol.MESSAGE] == 'Waiting for 1 active session(s) to finish...'
        assert len(request(holder, observation())[protocol.RESULT]) == 4
        closing_at = time.monotonic()
    assert done.wait(5)
    hold.set()
    switcher.join(5)
    statuses = [m.get(protocol.STATUS) for _, m in messages]
    first_loading = statuses.index(protocol.STATUS_LOADING)
    assert set(statuses[:first_loading]) == {protocol.STATUS_WAITING}
    assert statuses[first_loading:] == [protocol.STATUS_LOADING, protocol.STATUS_READY, None]
    assert messages[first_loading][0] >= closing_at
    assert messages[-2][1][protocol.META]['model_id'] == '2000'
    assert protocol.RESULT in messages[-1][1]
    assert source.events == [
        ('load', '1000'),
        ('warm_up', '1000'),
        ('unload', '1000'),
        ('load', '2000'),
        ('warm_up', '2000'),
    ]
    assert source.max_loaded == 1


def test_a_client_leaving_mid_request_does_not_disturb_others(server):
    with open_raw(server.port) as other:
        _ready(other)
        with open_raw(server.port) as leaver:
            _ready(leaver)
            leaver.send(wire.pack(observation(delay_s=0.5)))
        for _ in range(3):
            assert len(request(other, observation())[protocol.RESULT]) == 4
        deadline = time.monotonic() + 5
        while server.manager.active_sessions != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.manager.active_sessions == 1
    with open_raw(server.port) as again:
        _ready(again)
        assert len(request(again, observation())[protocol.RESULT]) == 4


def test_a_client_leaving_while_its_model_loads_leaves_the_model_loaded_and_unheld(server, source):
    source.load_gate = threading.Event()
    with open_raw(server.port, '2000') as ws:
        assert recv(ws)[protocol.STATUS] == protocol.STATUS_LOADING
    time.sleep(0.1)
    source.load_gate.set()
    with open_raw(server.port, '2000') as ws:
        assert _ready(ws)['model_id'] == '2000'
        assert server.manager.active_sessions == 1
    assert source.events.count(('load', '2000')) == 1
    deadline = time.monotonic() + 5
    while server.manager.active_sessions != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.manager.active_sessions == 0


def test_loading_repeats_its_status_while_a_load_takes_long(server, source):
    source.load_gate = threading.Event()
    threading.Timer(5 * STATUS_INTERVAL_S, source.load_gate.set).start()
    with open_raw(server.port) as ws:
        statuses = [m[protocol.STATUS] for m in handshake(ws)]
    assert statuses.count(protocol.STATUS_LOADING) >= 3
    assert statuses[-1] == protocol.STATUS_READY


def test_the_server_binds_only_the_host_it_is_given(source):
    settings = ServerSettings()
    with ServerThread(source, host='127.0.0.1', settings=settings) as server:
        bound = server._server.servers[0].sockets[0].getsockname()
    assert bound[0] == '127.0.0.1'


def test_a_client_leaving_while_it_waits_gives_up_its_place_in_the_queue(server, source):
    with open_raw(server.port, '1000') as holder:
        _ready(holder)
        with open_raw(server.port, '2000') as leaver:
            assert recv(leaver)[protocol.STATUS] == protocol.STATUS_WAITING
        time.sleep(2 * STATUS_INTERVAL_S)  # the server notices at its next status message
        with open_raw(server.port, '1000') as joiner:
            assert [m[protocol.STATUS] for m in handshake(joiner)] == [protocol.STATUS_READY]
    assert ('load', '2000') not in source.events


def _idle_closed(ws) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    return closed.value.rcvd.code, closed.value.rcvd.reason


def test_a_pending_switch_lets_new_sessions_join_the_loaded_model_and_the_idle_holder_times_out(source, settings):
    # Issue 18 row 2: A holds the latest model (the default) and idles, B asks for an older one, C for the default.
    settings = dataclasses.replace(settings, idle_timeout_s=1.0, switch_grace_s=30.0)
    with ServerThread(source, settings=settings) as server, open_raw(server.port, '10000') as a:
        _ready(a)
        with open_raw(server.port, '1000') as b:
            assert recv(b)[protocol.STATUS] == protocol.STATUS_WAITING
            started = time.monotonic()
            with open_raw(server.port) as c:
                assert [m[protocol.STATUS] for m in handshake(c)] == [protocol.STATUS_READY]
                assert len(request(c, observation())[protocol.RESULT]) == 4
            assert time.monotonic() - started < 0.5
            assert _ready(b)['model_id'] == '1000'  # once A was closed for idling
            assert time.monotonic() - started < 3
        assert _idle_closed(a) == (protocol.CLOSE_NORMAL, 'idle: no request for 1 s')


def test_after_the_switch_grace_new_sessions_on_the_loaded_model_queue_behind_the_switch(source, settings):
    settings = dataclasses.replace(settings, switch_grace_s=0.3)
    with ServerThread(source, settings=settings) as server, open_raw(server.port, '1000') as holder:
        _ready(holder)
        with open_raw(server.port, '2000') as switcher:
            assert recv(switcher)[protocol.STATUS] == protocol.STATUS_WAITING
            time.sleep(0.5)
            with open_raw(server.port, '1000') as latecomer:
                assert recv(latecomer)[protocol.STATUS] == protocol.STATUS_WAITING
                holder.close()
                assert _ready(switcher)['model_id'] == '2000'
                assert recv(latecomer)[protocol.STATUS] == protocol.STATUS_WAITING
                switcher.close()
                assert _ready(latecomer)['model_id'] == '1000'
    assert [e for e in source.events if e[0] == 'load'] == [('load', '1000'), ('load', '2000'), ('load', '1000')]


def test_a_session_that_sends_nothing_for_the_idle_timeout_is_closed(source, settings):
    with ServerThread(source, settings=dataclasses.replace(settings, idle_timeout_s=0.5)) as server:
        with open_raw(server.port) as ws:
            _ready(ws)
            started = time.monotonic()
            assert _idle_closed(ws) == (protocol.CLOSE_NORMAL, 'idle: no request for 0.5 s')
            assert 0.4 < time.monotonic() - started < 2
        assert eventually(lambda: server.manager.active_sessions == 0)


def test_a_session_that_keeps_asking_outlives_the_idle_timeout(source, settings):
    settings = dataclasses.replace(settings, idle_timeout_s=0.5)
    with ServerThread(source, settings=settings) as server, open_raw(server.port) as ws:
        _ready(ws)
        for _ in range(6):
            time.sleep(0.25)
            assert len(request(ws, observation(image_side=32))[protocol.RESULT]) == 4


def test_private_paths_are_hidden_in_ready_meta_and_errors(settings, tmp_path):
    class PathSource(StepSource):
        def resolve(self, model_id: str | None) -> str:
            if model_id == '404':
                raise ModelNotFoundError(f'no checkpoint 404 under {tmp_path}/run')
            return super().resolve(model_id)

    source = PathSource(
        meta_extra={'checkpoint_path': f'{tmp_path}/run/checkpoints/001000', 'nested': [f'{tmp_path}/x']}
    )
    hidden = dataclasses.replace(settings, private_paths=(str(tmp_path),))
    with ServerThread(source, settings=hidden) as server:
        with open_raw(server.port, '1000') as ws:
            meta = _ready(ws)
        with open_raw(server.port, '404') as ws:
            error = _assert_refused(ws, protocol.REASON_MODEL_NOT_FOUND)
    assert meta['checkpoint_path'] == '<checkpoints_dir>/run/checkpoints/001000'
    assert meta['nested'] == ['<checkpoints_dir>/x']
    assert error == 'no checkpoint 404 under <checkpoints_dir>/run'
