"""The transport guards on a real server on loopback: connection cap, request-head and message time-outs, and the
memory budget for unfinished messages (issue 18 row 1, at small scale)."""

import dataclasses
import socket
import time
from contextlib import ExitStack

import pytest

from positronic.offboard import protocol, wire
from positronic.offboard.server import ServerSettings, ServerThread
from positronic.offboard.transport import OVERLOADED_RESPONSE
from tests.offboard.raw import close_code, eventually, handshake, open_raw, recv, request, send_frame_head
from tests.offboard.sources import StepSource, observation

MIB = 1024 * 1024
HALF_SENT_REQUEST = b'GET /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n'
"""An HTTP request head without its closing blank line."""


def _serving(settings: ServerSettings, **changes) -> ServerThread:
    return ServerThread(StepSource(), settings=dataclasses.replace(settings, **changes))


def _send_frame_start(ws, payload_bytes: int, sent_bytes: int) -> None:
    send_frame_head(ws, payload_bytes)
    ws.socket.sendall(bytes(sent_bytes))


def _is_closed_by_server(sock: socket.socket, timeout_s: float) -> bool:
    sock.settimeout(timeout_s)
    try:
        return sock.recv(1) == b''
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_unfinished_messages_past_the_memory_budget_close_the_connection_that_passes_it(settings):
    # 4 MiB messages, a budget of 8 MiB: the third half-sent 7 MiB frame (3 MiB in) passes it.
    with _serving(settings, max_buffered_bytes=8 * MIB, message_timeout_s=30.0) as server, ExitStack() as stack:
        holders = [stack.enter_context(open_raw(server.port)) for _ in range(3)]
        for ws in holders:
            handshake(ws)
        _send_frame_start(holders[0], 7 * MIB, 3 * MIB)
        _send_frame_start(holders[1], 7 * MIB, 3 * MIB)
        assert eventually(lambda: server.guard.buffered_bytes >= 6 * MIB)
        _send_frame_start(holders[2], 7 * MIB, 3 * MIB)
        code, reason = close_code(holders[2])
        assert code == protocol.CLOSE_TRY_AGAIN_LATER
        assert reason == f'server busy: over {8 * MIB} bytes of unfinished messages'
        assert eventually(lambda: server.guard.buffered_bytes <= 8 * MIB)
        with open_raw(server.port) as other:  # a normal session still fits in what is left
            handshake(other)
            assert protocol.RESULT in request(other, observation(image_side=64))
        for ws in holders:
            ws.close()
        assert eventually(lambda: server.guard.buffered_bytes == 0)


def test_a_message_left_unfinished_is_closed_after_the_message_timeout(settings):
    with _serving(settings, message_timeout_s=0.5) as server, open_raw(server.port) as ws:
        handshake(ws)
        started = time.monotonic()
        _send_frame_start(ws, 2 * MIB, MIB)
        code, reason = close_code(ws)
        assert (code, reason) == (
            protocol.CLOSE_POLICY_VIOLATION,
            'message not complete within 0.5 s of its first bytes',
        )
        assert 0.4 < time.monotonic() - started < 3
        assert eventually(lambda: server.guard.buffered_bytes == 0)


def test_a_message_sent_in_pieces_within_the_message_timeout_is_answered(settings):
    with _serving(settings, message_timeout_s=2.0) as server, open_raw(server.port) as ws:
        handshake(ws)
        data = wire.pack(observation(image_side=64))
        for _ in range(3):
            send_frame_head(ws, len(data))
            for start in range(0, len(data), len(data) // 3 + 1):  # 3 pieces over 0.6 s
                time.sleep(0.2)
                ws.socket.sendall(data[start : start + len(data) // 3 + 1])
            assert protocol.RESULT in recv(ws)
        assert server.guard.buffered_bytes == 0


def test_half_sent_http_requests_are_closed_after_the_handshake_timeout(settings):
    with _serving(settings, handshake_timeout_s=0.5) as server:
        started = time.monotonic()
        clients = [socket.create_connection(('127.0.0.1', server.port)) for _ in range(20)]
        for sock in clients:
            sock.sendall(HALF_SENT_REQUEST)
        for _ in range(5):  # trickling bytes does not extend the time
            time.sleep(0.1)
            clients[0].sendall(b'X')
        assert all(_is_closed_by_server(sock, timeout_s=3) for sock in clients)
        assert time.monotonic() - started < 3
        for sock in clients:
            sock.close()
        with open_raw(server.port) as ws:
            assert handshake(ws)[-1][protocol.STATUS] == protocol.STATUS_READY


def test_a_session_is_not_closed_by_the_handshake_timeout(settings):
    with _serving(settings, handshake_timeout_s=0.3) as server, open_raw(server.port) as ws:
        handshake(ws)
        time.sleep(0.6)
        assert protocol.RESULT in request(ws, observation(image_side=32))


def test_connections_beyond_the_cap_are_answered_503_and_closed(settings):
    with _serving(settings, max_connections=3) as server:
        held = [socket.create_connection(('127.0.0.1', server.port)) for _ in range(3)]
        assert eventually(lambda: len(server._server.server_state.connections) == 3)
        with socket.create_connection(('127.0.0.1', server.port), timeout=5) as extra:
            answer = b''
            while chunk := extra.recv(4096):
                answer += chunk
        assert answer == OVERLOADED_RESPONSE
        assert server.guard.refused_connections == 1
        for sock in held:
            sock.close()
        assert eventually(lambda: len(server._server.server_state.connections) == 0)
        with open_raw(server.port) as ws:
            assert handshake(ws)[-1][protocol.STATUS] == protocol.STATUS_READY


@pytest.mark.parametrize(
    ('changes', 'match'),
    [
        ({'max_message_bytes': -1}, r'^max_message_bytes=-1: expected a whole number above zero$'),
        ({'max_connections': 0}, r'^max_connections=0: expected a whole number above zero$'),
        ({'idle_timeout_s': float('nan')}, r'^idle_timeout_s=nan: expected a number of seconds above zero$'),
        ({'switch_grace_s': -1.0}, r'^switch_grace_s=-1.0: expected a number of seconds zero or more$'),
        ({'max_buffered_bytes': 1024}, r'^max_buffered_bytes=1024: expected at least twice max_message_bytes'),
        ({'auth_token': ''}, r'^auth_token is empty or not text'),
    ],
)
def test_settings_out_of_range_are_refused_naming_the_field_and_the_value(changes, match):
    with pytest.raises(ValueError, match=match):
        ServerSettings(**changes)
