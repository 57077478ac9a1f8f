"""Protocol-level helpers for tests: a plain websockets client speaking raw protocol-v1 frames."""

import json
import struct
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from positronic.offboard import protocol, wire

RECV_TIMEOUT_S = 5.0


def session_url(port: int, model_id: str | None = None) -> str:
    path = protocol.SESSION_PATH if model_id is None else f'{protocol.SESSION_PATH}/{model_id}'
    return f'ws://127.0.0.1:{port}{path}'


def open_raw(port: int, model_id: str | None = None, **kwargs: Any) -> ClientConnection:
    return connect(session_url(port, model_id), open_timeout=5, max_size=None, compression=None, **kwargs)


def recv(ws: ClientConnection, timeout_s: float = RECV_TIMEOUT_S) -> dict[str, Any]:
    return wire.unpack(ws.recv(timeout=timeout_s))


def handshake(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every handshake message up to and including ``ready`` or ``error``."""
    messages = [recv(ws)]
    while messages[-1].get(protocol.STATUS) not in (protocol.STATUS_READY, protocol.STATUS_ERROR):
        messages.append(recv(ws))
    return messages


def request(ws: ClientConnection, observation: Any) -> dict[str, Any]:
    ws.send(wire.pack(observation))
    return recv(ws)


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f'http://127.0.0.1:{port}{path}', timeout=5) as response:
        return json.loads(response.read())


def send_frame_head(ws: ClientConnection, payload_bytes: int) -> None:
    """Send only the head of one binary frame of ``payload_bytes``; send its payload with ``ws.socket.sendall``."""
    ws.socket.sendall(bytes([0x82, 0x80 | 127]) + struct.pack('!Q', payload_bytes) + bytes(4))  # masked, key 0


def close_code(ws: ClientConnection, timeout_s: float = RECV_TIMEOUT_S) -> tuple[int, str]:
    """The code and reason of the close frame the server sends next (any other message fails)."""
    try:
        message = ws.recv(timeout=timeout_s)
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, 'the connection dropped without a close frame'
        return closed.rcvd.code, closed.rcvd.reason
    raise AssertionError(f'expected the server to close the session, got a message of {len(message)} bytes')


def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Whether ``condition()`` became true within ``timeout_s`` (polled every 20 ms)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
