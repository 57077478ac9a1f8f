"""LeRobot ACT server speed: protocol overhead and concurrent load on loopback, printed as a table.

Writes a small ACT experiment (random weights; ``--image-size`` cameras, ``--dim-model``, chunk of 100 actions)
with the trainer's checkpoint layout, starts ``python -m positronic.vendors.lerobot.serving.server`` on it in its own
process (as deployed), and talks to it with ``InferenceClient`` from this process.

- overhead: round trip of each request minus the policy's own time for that very request (``ACTRunner.infer``:
  the codec letterboxing the frames to the model's size, the model, the decoding), as the server measures and
  logs it at ``--log_level=debug``. Observations: two 480x480 RGB uint8 frames, state, task. Subtracting per
  request keeps the policy's own jitter out of the overhead's tail. Targets: median < 3 ms, p99 < 10 ms.
- load: ``--sessions`` concurrent sessions (one thread each) x ``--load-requests`` requests; zero errors expected.

Usage: python benchmarks/bench_server.py [--requests 300] [--sessions 16] [--load-requests 500]
    [--image-size 32] [--dim-model 32] [--torch-threads 1]
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from bench_offboard import (
    CHUNK_SIZE,
    IMAGE_SIDE,
    bench_observation,
    free_port,
    measure_load,
    record_load,
    record_overhead,
    wait_for_server,
)
from harness import load_average, machine_lines, percentile_ms, print_table
from server_log import measure_latency, overheads

from positronic.offboard import wire
from positronic.offboard.client import InferenceClient, Timeouts
from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy
from positronic.vendors.lerobot.act.normalize import save_processors
from positronic.vendors.lerobot.codecs import eepose_absolute
from positronic.vendors.lerobot.training.checkpoint import save_checkpoint, write_codec_record

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
    print('\n'.join(machine_lines('torch', 'uvicorn', 'websockets', 'msgpack')))
    with tempfile.TemporaryDirectory() as tmp:
        experiment = write_experiment(Path(tmp) / 'bench_experiment', args.image_size, args.dim_model)
        port = free_port()
        command = [
            sys.executable,
            '-m',
            'positronic.vendors.lerobot.serving.server',
            f'--checkpoints_dir={experiment}',
            '--host=127.0.0.1',
            f'--port={port}',
            '--device=cpu',
            '--log_level=debug',
        ]
        env = {**os.environ, 'OMP_NUM_THREADS': str(args.torch_threads)}
        log = Path(tmp) / 'server.log'
        with log.open('w') as log_file:
            server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log_file, env=env)
        try:
            client = InferenceClient('127.0.0.1', port, timeouts=Timeouts(connect_s=10, status_s=60, infer_s=60))
            wait_for_server(client, timeout_s=60)
            observations = [bench_observation(i) for i in range(8)]
            rtts, timings = measure_latency(client, log, observations, args.requests)
            latencies, errors, elapsed = measure_load(client, args.sessions, args.load_requests)
        finally:
            server.terminate()
            server.wait(10)

    print(
        f'observation: 2 x {IMAGE_SIDE}x{IMAGE_SIDE}x3 uint8 + state, '
        f'{len(wire.pack(bench_observation())) / 1e6:.2f} MB packed; model: ACT dim_model {args.dim_model}, '
        f'cameras {args.image_size}x{args.image_size}, resnet18, {CHUNK_SIZE}-action chunk, CPU'
    )
    policy = [t[1] for t in timings]
    overhead = overheads(rtts, timings)
    server_codec = [t[0] + t[2] for t in timings]

    def p50_p99(samples: list[float], digits: int = 2) -> str:
        return f'{percentile_ms(samples, 50):.{digits}f} / {percentile_ms(samples, 99):.{digits}f} ms'

    overhead_ms = (percentile_ms(overhead, 50), percentile_ms(overhead, 99))
    load_name = f'load {args.sessions} x {args.load_requests}'
    rows = [
        ('policy, in the server (ACTRunner.infer)', 'p50 / p99', p50_p99(policy), ''),
        ('round trip, 1 session', 'p50 / p99', p50_p99(rtts), ''),
        ('  of which server unpack + pack', 'p50 / p99', p50_p99(server_codec), ''),
        ('protocol overhead (round trip - policy)', 'p50', f'{overhead_ms[0]:.2f} ms', '< 3 ms'),
        ('protocol overhead (round trip - policy)', 'p99', f'{overhead_ms[1]:.2f} ms', '< 10 ms'),
        (load_name, 'throughput', f'{len(latencies) / elapsed:.0f} req/s', ''),
        (load_name, 'latency p50 / p99', p50_p99(latencies, 1), ''),
        (load_name, 'errors', str(errors), '0'),
    ]
    record_overhead('server', '', overhead_ms)
    record_load('server', load_name, latencies, errors, elapsed)
    print_table(('measure', 'metric', 'value', 'target'), rows)
    print(
        f'latency: 1 session x {args.requests} round trips; overhead per request = its round trip - its policy time '
        f'as the server logged it; torch threads {args.torch_threads}'
    )
    print('load average (1/5/15 min) at end: ' + load_average())


if __name__ == '__main__':
    main()
