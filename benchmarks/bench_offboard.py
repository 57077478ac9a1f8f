"""Protocol-v1 speed: loopback latency overhead and concurrent load, printed as a table.

The server runs in its own process (uvicorn, as deployed) serving a policy that answers a 100-action chunk
computed from the state; the client is ``positronic.offboard.client.InferenceClient`` in this process.

- overhead: round trip of each request minus the policy's own time for that very request, as the server measures
  and logs it at DEBUG level (``benchmarks/server_log.py``). Observation: two 480x480 RGB uint8 frames, joint and
  pose state, task. Targets: median < 3 ms, p99 < 10 ms.
- load: ``--sessions`` concurrent sessions (one thread each) x ``--load-requests`` requests; zero errors
  expected; throughput and per-request latency.
- ``--idle-ms 0 27``: the overhead again with a policy that sleeps 27 ms first. Nothing else changes, so any
  difference from the 0 ms row is what waiting costs on this machine (threads woken from idle CPUs, cold caches),
  not work done by the protocol.

Usage: python benchmarks/bench_offboard.py [--requests 2000] [--idle-ms 0 27] [--ws websockets-sansio websockets]

``--ws`` compares uvicorn's WebSocket implementations (default: the server's own, the only one that enforces its
limits).
"""

import argparse
import logging
import multiprocessing
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from harness import load_average, machine_lines, percentile_ms, print_table, record
from server_log import measure_latency, overheads

from positronic import keys
from positronic.offboard import server, wire
from positronic.offboard.client import InferenceClient, OffboardError, Timeouts
from positronic.offboard.models import ModelNotFoundError
from positronic.offboard.server import GUARDED_WS_IMPLEMENTATION, ServerSettings, serve
from positronic.policy.action import cartesian_action

CHUNK_SIZE = 100
IMAGE_SIDE = 480
MODEL_ID = '1'


def bench_observation(step: int = 0) -> dict[str, Any]:
    """Two 480x480 frames plus state, as a robot sends them."""
    rng = np.random.default_rng(step)
    return {
        keys.ROBOT_Q: rng.standard_normal(7).astype(np.float32),
        keys.ROBOT_DQ: rng.standard_normal(7).astype(np.float32),
        keys.ROBOT_EE_POSE: np.array([0.4, -0.1, 0.5, 0.0, 1.0, 0.0, 0.0]),
        keys.GRIP: 0.5,
        keys.IMAGE_WRIST: rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8),
        keys.IMAGE_EXTERIOR: rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), dtype=np.uint8),
        keys.TASK: keys.STACK_CUBES_TASK,
    }


class ChunkModel:
    """A policy whose cost is small and known: a 100-action chunk ramping up from the measured pose, after
    sleeping ``idle_s`` (a stand-in for a slow model that leaves the CPUs idle)."""

    meta: Mapping[str, Any] = {'type': 'bench', 'chunk_size': CHUNK_SIZE}

    def __init__(self, idle_s: float = 0.0):
        self.idle_s = idle_s

    def warm_up(self) -> None:
        self.infer(bench_observation())

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        if self.idle_s:
            time.sleep(self.idle_s)
        pose = np.array(observation[keys.ROBOT_EE_POSE], dtype=np.float64)
        brightness = float(observation[keys.IMAGE_WRIST][::16, ::16].mean()) / 255.0
        chunk = []
        for k in range(CHUNK_SIZE):
            pose[2] += 1e-4 * k
            chunk.append(cartesian_action(pose, brightness))
        return chunk

    def unload(self) -> None:
        pass


class OneModelSource:
    def __init__(self, idle_s: float = 0.0):
        self.idle_s = idle_s

    def model_ids(self) -> list[str]:
        return [MODEL_ID]

    def resolve(self, model_id: str | None) -> str:
        if model_id not in (None, MODEL_ID):
            raise ModelNotFoundError(f'no model {model_id!r}')
        return MODEL_ID

    def load(self, model_id: str) -> ChunkModel:
        return ChunkModel(self.idle_s)


def _serve(port: int, ws: str, log: Path, idle_s: float) -> None:
    """Serve ChunkModel, logging each request's timings to ``log``."""
    server_logger = logging.getLogger(server.__name__)
    server_logger.setLevel(logging.DEBUG)
    server_logger.addHandler(logging.FileHandler(log))
    serve(OneModelSource(idle_s), '127.0.0.1', port, ServerSettings(ws_implementation=ws), log_level='error')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def wait_for_server(client: InferenceClient, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.list_models()
            return
        except OffboardError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def measure_load(client: InferenceClient, sessions: int, requests: int) -> tuple[list[float], int, float]:
    observation = bench_observation()
    latencies: list[list[float]] = [[] for _ in range(sessions)]
    errors = [0] * sessions
    start = threading.Barrier(sessions + 1)

    def run(index: int) -> None:
        try:
            session = client.new_session(on_status=lambda *_: None)
        except OffboardError:
            errors[index] = requests
            start.wait()
            return
        with session:
            start.wait()
            for _ in range(requests):
                began = time.perf_counter()
                try:
                    chunk = session.infer(observation)
                    if len(chunk) != CHUNK_SIZE:
                        errors[index] += 1
                except OffboardError:
                    errors[index] += 1
                latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(sessions)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return [t for per_session in latencies for t in per_session], sum(errors), elapsed


def record_overhead(stage: str, prefix: str, overhead_ms: tuple[float, float]) -> None:
    """Record the (p50, p99) protocol overhead against its targets, as ``<prefix>protocol overhead p50|p99``."""
    record(stage, f'{prefix}protocol overhead p50', overhead_ms[0], '< 3 ms', overhead_ms[0] < 3, unit='ms')
    record(stage, f'{prefix}protocol overhead p99', overhead_ms[1], '< 10 ms', overhead_ms[1] < 10, unit='ms')


def record_load(stage: str, name: str, latencies: list[float], errors: int, elapsed_s: float) -> None:
    """Record a load run (``measure_load``'s result): throughput, latency p50/p99, errors against zero."""
    record(stage, f'{name}, throughput', len(latencies) / elapsed_s, unit='req/s')
    record(stage, f'{name}, latency p50', percentile_ms(latencies, 50), unit='ms')
    record(stage, f'{name}, latency p99', percentile_ms(latencies, 99), unit='ms')
    record(stage, f'{name}, errors', errors, '0', errors == 0)


def measure_server(
    ws: str, idle_s: float, observations: list[dict], args: argparse.Namespace, with_load: bool
) -> tuple[list[float], list, tuple[list[float], int, float] | None]:
    """Start a server process with ``ws`` and a policy idling ``idle_s``; round trips and server timings of
    ``args.requests`` requests, then (if ``with_load``) the load run's latencies, errors and seconds."""
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / 'server.log'
        process = multiprocessing.get_context('spawn').Process(target=_serve, args=(port, ws, log, idle_s), daemon=True)
        process.start()
        try:
            client = InferenceClient('127.0.0.1', port, timeouts=Timeouts(connect_s=10, status_s=30, infer_s=30))
            wait_for_server(client)
            rtts, timings = measure_latency(client, log, observations, args.requests, warmup=100)
            load = measure_load(client, args.sessions, args.load_requests) if with_load else None
        finally:
            process.terminate()
            process.join(10)
    return rtts, timings, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--ws', nargs='+', default=[GUARDED_WS_IMPLEMENTATION], help="uvicorn's WebSocket implementations to compare"
    )
    parser.add_argument('--requests', type=int, default=2000, help='latency requests (one session)')
    parser.add_argument('--sessions', type=int, default=16)
    parser.add_argument('--load-requests', type=int, default=500, help='requests per session under load')
    parser.add_argument(
        '--idle-ms',
        type=float,
        nargs='+',
        default=[0.0],
        help='also measure the overhead with a policy that first sleeps this long (e.g. 27, as long as the CPU '
        'ACT of bench_server.py); load runs at 0 only',
    )
    args = parser.parse_args()

    observation_bytes = len(wire.pack(bench_observation()))
    observations = [bench_observation(i) for i in range(8)]
    print('\n'.join(machine_lines('uvicorn', 'websockets', 'msgpack', 'numpy')))
    print(
        f'observation: 2 x {IMAGE_SIDE}x{IMAGE_SIDE}x3 uint8 + state = {observation_bytes / 1e6:.2f} MB packed; '
        f'answer: {CHUNK_SIZE} actions'
    )
    rows = []
    for ws in args.ws:
        for idle_ms in args.idle_ms:
            with_load = idle_ms == 0
            rtts, timings, load = measure_server(ws, idle_ms / 1e3, observations, args, with_load)
            overhead = overheads(rtts, timings)
            overhead_ms = (percentile_ms(overhead, 50), percentile_ms(overhead, 99))
            name = ws if idle_ms == 0 else f'{ws}, policy idle {idle_ms:g} ms'
            record_overhead('offboard', f'{name}: ', overhead_ms)
            load_columns = ('-', '-', '-', '-')
            if load is not None:
                latencies, errors, elapsed = load
                record_load(
                    'offboard', f'{ws}: load {args.sessions} x {args.load_requests}', latencies, errors, elapsed
                )
                load_columns = (
                    f'{len(latencies) / elapsed:.0f}',
                    f'{percentile_ms(latencies, 50):.1f} ms',
                    f'{percentile_ms(latencies, 99):.1f} ms',
                    str(errors),
                )
            rows.append(
                (
                    ws,
                    f'{idle_ms:g} ms',
                    f'{overhead_ms[0]:.3f} ms',
                    f'{overhead_ms[1]:.3f} ms',
                    f'{percentile_ms([t[1] for t in timings], 50):.3f} ms',
                    f'{percentile_ms(rtts, 50):.2f} ms',
                    *load_columns,
                )
            )
    print(f'latency: 1 session x {args.requests} requests; load: {args.sessions} sessions x {args.load_requests}')
    header = ('ws implementation', 'idle', 'overhead p50', 'overhead p99', 'policy p50', 'rtt p50')
    print_table((*header, 'load req/s', 'load p50', 'load p99', 'errors'), rows)
    print('targets: overhead p50 < 3 ms, p99 < 10 ms; load errors = 0')
    print('load average (1/5/15 min) at end: ' + load_average())


if __name__ == '__main__':
    main()
