# ruff: noqa: I001  (this `positronic` is the 0.4.1 package of the side environment, a third-party import)
"""Run in a side environment with positronic==0.4.1: its own InferenceClient against a protocol-v1 server.

Usage: python positronic041_client.py PORT. Prints one JSON line describing what the client saw.
This file imports only positronic 0.4.1 (and numpy), never this project.
"""

import json
import sys

import numpy as np
from positronic.offboard.client import InferenceClient
from positronic_wire.websocket import WebsocketClientWire
from positronic_wire.wire import SESSION_PATH, HostPortAddress


def main(port: int) -> None:
    address = HostPortAddress(host='127.0.0.1', port=port, path=SESSION_PATH, query='')
    client = InferenceClient(WebsocketClientWire(), address, connect_deadline=20.0, infer_timeout=20.0)
    session = client.new_session()
    observation = {
        'robot_state.q': np.linspace(-1, 1, 7, dtype=np.float32),
        'robot_state.ee_pose': np.array([0.3, -0.1, 0.5, 0.0, 1.0, 0.0, 0.0]),
        'grip': 0.25,
        'image.wrist': np.full((240, 320, 3), 51, dtype=np.uint8),
        'image.exterior': np.zeros((240, 320, 3), dtype=np.uint8),
        'task': 'Pick up the green cube and place it on the red cube.',
    }
    results = [session.infer(observation) for _ in range(3)]
    error = None
    try:
        session.infer({'task': 'no robot state'})
    except Exception as e:  # the server's {"error": ...} answer, surfaced by 0.4.1's client
        error = f'{type(e).__name__}: {e}'
    after_error = session.infer(observation)
    action = results[0][0]
    command = action['robot_command']
    report = {
        'protocol_version': str(session.protocol_version),
        'session_id': session.session_id,
        'meta': session.metadata,
        'chunk_sizes': [len(r) for r in results],
        'command_type': type(command).__name__,
        'command_repr': repr(command)[:300],
        'target_grip': float(action['target_grip']),
        'error': error,
        'chunk_size_after_error': len(after_error),
    }
    session.close()
    print(json.dumps(report, default=str))


if __name__ == '__main__':
    main(int(sys.argv[1]))
