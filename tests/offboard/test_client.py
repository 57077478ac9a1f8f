import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from websockets.sync.server import serve

from positronic.offboard import protocol, wire
from positronic.offboard.client import (
    InferenceClient,
    OffboardError,
    ServerError,
    ServerTimeoutError,
    ServerUnreachableError,
    SessionClosedError,
    Timeouts,
)
from positronic.offboard.server import ServerThread
from tests.offboard.conftest import MAX_MESSAGE_BYTES
from tests.offboard.sources import expected_translations, observation

SHORT = Timeouts(connect_s=0.5, status_s=0.5, infer_s=0.5)


@pytest.fixture
def client(server: ServerThread) -> InferenceClient:
    return InferenceClient('127.0.0.1', server.port, timeouts=Timeouts(5, 5, 5), max_message_bytes=MAX_MESSAGE_BYTES)


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real WebSocket server that accepts sessions and never sends anything."""
    release = threading.Event()
    with serve(lambda ws: release.wait(10), '127.0.0.1', 0) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield server.socket.getsockname()[1]
        release.set()
        server.shutdown()
        thread.join(5)


def test_new_session_reports_statuses_and_exposes_meta(client):
    statuses = []
    with client.new_session(on_status=lambda status, message: statuses.append((status, message))) as session:
        assert statuses == [(protocol.STATUS_LOADING, 'Loading model 10000...')]
        assert session.meta['model_id'] == '10000'
        chunk = session.infer(observation(x=0.35))
    np.testing.assert_allclose([a['robot_command']['pose'][:3] for a in chunk], expected_translations(0.35, 4))
    assert session.closed


def test_sessions_pick_models_by_id_and_list_models(client):
    assert client.list_models() == ['1000', '2000', '10000']
    with client.new_session(2000) as session:
        assert session.meta['model_id'] == '2000'


def test_a_failed_request_raises_server_error_and_the_session_goes_on(client):
    with client.new_session() as session:
        with pytest.raises(ServerError, match=r"could not answer the observation: KeyError: 'image.wrist'"):
            session.infer({k: v for k, v in observation().items() if k != 'image.wrist'})
        assert not session.closed
        assert len(session.infer(observation())) == 4


def test_a_refused_session_raises_server_error_with_the_servers_reason(client):
    with pytest.raises(ServerError, match="refused the session: no checkpoint '7'"):
        client.new_session('7')
    assert isinstance(ServerError('x'), RuntimeError)


def test_an_observation_over_the_limit_is_refused_before_sending(client):
    with client.new_session() as session:
        with pytest.raises(wire.MessageTooLargeError):
            session.infer({**observation(), 'blob': np.zeros(MAX_MESSAGE_BYTES, np.uint8)})
        with pytest.raises(wire.WireError, match='cannot send an array'):
            session.infer({**observation(), 'bad': np.zeros(2, np.complex64)})
        assert len(session.infer(observation())) == 4


def test_an_unreachable_server_is_named_with_what_to_check(free_port):
    client = InferenceClient('127.0.0.1', free_port, timeouts=SHORT)
    with pytest.raises(ServerUnreachableError, match=f'127.0.0.1:{free_port}.*server is running') as raised:
        client.new_session()
    assert isinstance(raised.value, OffboardError) and isinstance(raised.value, RuntimeError)
    with pytest.raises(ServerUnreachableError, match=f'127.0.0.1:{free_port}'):
        client.list_models()


def test_a_server_that_never_completes_the_websocket_handshake_times_out():
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(1)
        client = InferenceClient('127.0.0.1', listener.getsockname()[1], timeouts=SHORT)
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError, match='timed out'):
            client.new_session()
        assert time.monotonic() - started < 2.0


def test_a_server_that_sends_no_status_times_out(silent_server):
    client = InferenceClient('127.0.0.1', silent_server, timeouts=SHORT)
    started = time.monotonic()
    with pytest.raises(ServerTimeoutError, match=r'sent no handshake status within 0.5 s') as raised:
        client.new_session()
    assert isinstance(raised.value, TimeoutError)
    assert time.monotonic() - started < 3.0


def test_an_inference_time_out_closes_the_session_and_the_server_goes_on(server):
    client = InferenceClient('127.0.0.1', server.port, timeouts=Timeouts(connect_s=5, status_s=5, infer_s=0.3))
    session = client.new_session()
    with pytest.raises(ServerTimeoutError, match=r'sent no inference answer within 0.3 s'):
        session.infer(observation(delay_s=1.0))
    assert session.closed
    with pytest.raises(SessionClosedError, match='is closed'):
        session.infer(observation())
    patient = InferenceClient('127.0.0.1', server.port, timeouts=Timeouts(connect_s=5, status_s=5, infer_s=5))
    with patient.new_session() as fresh:  # answered once the abandoned request has finished
        assert len(fresh.infer(observation())) == 4


def test_a_server_going_away_raises_session_closed(source, settings):
    server = ServerThread(source, settings=settings).start()
    client = InferenceClient('127.0.0.1', server.port, timeouts=Timeouts(5, 5, 5))
    session = client.new_session()
    server.stop()
    with pytest.raises(SessionClosedError, match=r'closed the connection|dropped'):
        session.infer(observation())
    assert session.closed
