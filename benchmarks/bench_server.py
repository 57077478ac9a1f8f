"""LeRobot ACT server speed: protocol overhead and concurrent load on loopback, printed as a table.

Writes a small ACT experiment (random weights; ``--image-size`` cameras, ``--dim-model``, chunk of 100 actions)
with the trainer's checkpoint layout, starts ``python -m positronic.vendors.lerobot.server`` on it in its own
process (as deployed), and talks to it with ``InferenceClient`` from this process.

- overhead: round trip of one request minus the median in-process ``ACTRunner.infer`` time for the same
  observations (two 480x480 RGB uint8 frames, state, task; the codec letterboxes the frames to the model's size
  on both paths), the two alternated request by request. Targets: median < 3 ms, p99 < 10 ms.
- load: ``--sessions`` concurrent sessions (one thread each) x ``--load-requests`` requests; zero errors expected.

Usage: python benchmarks/bench_server.py [--requests 300] [--sessions 16] [--load-requests 500]
    [--image-size 32] [--dim-model 32] [--torch-threads 1]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_offboard import (
    CHUNK_SIZE,
    IMAGE_SIDE,
    _free_port,
    _percentile_ms,
    _wait_for_server,
    bench_observation,
    machine_info,
    measure_load,
)
from machine import load_average
from results import record

from positronic.offboard import wire
from positronic.offboard.client import InferenceClient, Timeouts
from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy
from positronic.vendors.lerobot.act.normalize import save_processors
from positronic.vendors.lerobot.checkpoint import save_checkpoint, write_codec_record
from positronic.vendors.lerobot.checkpoint_selection import select_checkpoint
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.policy import ACTRunner

STEP = 1000


def write_experiment(root: Path, image_size: int, dim_model: int) -> Path:
    """One checkpoint of an ACT with random weights, ``image_size`` px cameras and a 100-action chunk."""
    camera = {'type': 'VISUAL', 'shape': [3, image_size, image_size]}
    config = ACTConfig(
        input_features={
            'observation.state': {'type': 'STATE', 'shape': [8]},
            'observation.images.left': camera,
            'observation.images.side': camera,
        },
        output_features={'action': {'type': 'ACTION', 'shape': [8]}},
        chunk_size=CHUNK_SIZE,
        n_action_steps=CHUNK_SIZE,
        dim_model=dim_model,
        dim_feedforward=4 * dim_model,
        pretrained_backbone_weights=None,
    )
    torch.manual_seed(0)
    policy = ACTPolicy(config)

    def vector() -> dict[str, np.ndarray]:
        return {'mean': np.zeros(8, np.float32), 'std': np.full(8, 0.1, np.float32)}

    def image() -> dict[str, np.ndarray]:
        return {'mean': np.full((3, 1, 1), 0.45, np.float32), 'std': np.full((3, 1, 1), 0.225, np.float32)}

    stats = {
        'observation.state': vector(),
        'observation.images.left': image(),
        'observation.images.side': image(),
        'action': vector(),
    }

    def write_pretrained(directory: Path) -> None:
        policy.save_pretrained(directory)
        save_processors(directory, stats, config)
        write_codec_record(directory, eepose_absolute.override(image_size=image_size).instantiate())

    save_checkpoint(root, STEP, write_pretrained, torch.optim.AdamW(policy.parameters()))
    return root


def measure_paired(client: InferenceClient, experiment: Path, requests: int) -> tuple[list[float], list[float]]:
    """Round trips and in-process ``ACTRunner.infer`` times, alternated request by request so that both see the
    same machine load; observations are decoded from the wire (read-only arrays) as the server gets them."""
    runner = ACTRunner.load(select_checkpoint(experiment)[1], device='cpu')
    runner.warm_up()
    observations = [bench_observation(i) for i in range(8)]
    decoded = [wire.unpack(wire.pack(observation)) for observation in observations]
    rtts, in_process = [], []
    with client.new_session(on_status=lambda *_: None) as session:
        for i in range(20 + requests):
            started = time.perf_counter()
            runner.infer(decoded[i % 8])
            between = time.perf_counter()
            session.infer(observations[i % 8])
            ended = time.perf_counter()
            if i >= 20:
                in_process.append(between - started)
                rtts.append(ended - between)
    return rtts, in_process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=300, help='latency requests (one session)')
    parser.add_argument('--sessions', type=int, default=16)
    parser.add_argument('--load-requests', type=int, default=500, help='requests per session under load')
    parser.add_argument('--image-size', type=int, default=32, help="the model's camera size (px, square)")
    parser.add_argument('--dim-model', type=int, default=32, help="the transformer's width")
    parser.add_argument('--torch-threads', type=int, default=1, help='torch CPU threads, here and in the server')
    args = parser.parse_args()

    torch.set_num_threads(args.torch_threads)
    print('\n'.join(machine_info()))
    with tempfile.TemporaryDirectory() as tmp:
        experiment = write_experiment(Path(tmp) / 'bench_experiment', args.image_size, args.dim_model)
        port = _free_port()
        command = [
            sys.executable,
            '-m',
            'positronic.vendors.lerobot.server',
            f'--checkpoints_dir={experiment}',
            '--host=127.0.0.1',
            f'--port={port}',
            '--device=cpu',
        ]
        env = {**os.environ, 'OMP_NUM_THREADS': str(args.torch_threads)}
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            client = InferenceClient('127.0.0.1', port, timeouts=Timeouts(connect_s=10, status_s=60, infer_s=60))
            _wait_for_server(client, timeout_s=60)
            rtts, in_process = measure_paired(client, experiment, args.requests)
            latencies, errors, elapsed = measure_load(client, args.sessions, args.load_requests)
        finally:
            server.terminate()
            server.wait(10)

    print(
        f'observation: 2 x {IMAGE_SIDE}x{IMAGE_SIDE}x3 uint8 + state, '
        f'{len(wire.pack(bench_observation())) / 1e6:.2f} MB packed; model: ACT dim_model {args.dim_model}, '
        f'cameras {args.image_size}x{args.image_size}, resnet18, {CHUNK_SIZE}-action chunk, CPU'
    )
    policy_ms = _percentile_ms(in_process, 50)
    rows = [
        (
            'policy in-process (ACTRunner.infer)',
            'p50 / p99',
            f'{policy_ms:.2f} / {_percentile_ms(in_process, 99):.2f} ms',
            '',
        ),
        (
            'round trip, 1 session',
            'p50 / p99',
            f'{_percentile_ms(rtts, 50):.2f} / {_percentile_ms(rtts, 99):.2f} ms',
            '',
        ),
        ('protocol overhead', 'p50', f'{_percentile_ms(rtts, 50) - policy_ms:.2f} ms', '< 3 ms'),
        ('protocol overhead', 'p99', f'{_percentile_ms(rtts, 99) - policy_ms:.2f} ms', '< 10 ms'),
        (f'load {args.sessions} x {args.load_requests}', 'throughput', f'{len(latencies) / elapsed:.0f} req/s', ''),
        (
            f'load {args.sessions} x {args.load_requests}',
            'latency p50 / p99',
            f'{_percentile_ms(latencies, 50):.1f} / {_percentile_ms(latencies, 99):.1f} ms',
            '',
        ),
        (f'load {args.sessions} x {args.load_requests}', 'errors', str(errors), '0'),
    ]
    overhead_ms = (_percentile_ms(rtts, 50) - policy_ms, _percentile_ms(rtts, 99) - policy_ms)
    record('server', 'protocol overhead p50', overhead_ms[0], '< 3 ms', overhead_ms[0] < 3, unit='ms')
    record('server', 'protocol overhead p99', overhead_ms[1], '< 10 ms', overhead_ms[1] < 10, unit='ms')
    load = f'load {args.sessions} x {args.load_requests}'
    record('server', f'{load}, throughput', len(latencies) / elapsed, unit='req/s')
    record('server', f'{load}, latency p50', _percentile_ms(latencies, 50), unit='ms')
    record('server', f'{load}, latency p99', _percentile_ms(latencies, 99), unit='ms')
    record('server', f'{load}, errors', errors, '0', errors == 0)
    header = f'{"measure":<38} | {"metric":<18} | {"value":>20} | {"target":>8}'
    print(header)
    print('-' * len(header))
    for name, metric, value, target in rows:
        print(f'{name:<38} | {metric:<18} | {value:>20} | {target:>8}')
    print(
        f'latency: 1 session x {args.requests} round trips, each after one in-process call on the same observation; '
        f'torch threads {args.torch_threads}'
    )
    print('load average (1/5/15 min) at end: ' + load_average())


if __name__ == '__main__':
    main()
