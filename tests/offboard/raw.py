"""Protocol-level helpers for tests: a plain websockets client speaking raw protocol-v1 frames."""

import json
import urllib.request
from typing import Any

from websockets.sync.client import ClientConnection, connect

from positronic.offboard import protocol, wire

RECV_TIMEOUT_S = 5.0


def session_url(port: int, model_id: str | None = None) -> str:
    path = protocol.SESSION_PATH if model_id is None else f'{protocol.SESSION_PATH}/{model_id}'
    return f'ws://127.0.0.1:{port}{path}'


def open_raw(port: int, model_id: str | None = None) -> ClientConnection:
    return connect(session_url(port, model_id), open_timeout=5, max_size=None, compression=None)


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
