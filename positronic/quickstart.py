"""The whole loop on the built-in simulator, at a small scale, with the same commands a user runs.

record (scripted demonstrations in MuJoCo) → convert (``eepose_absolute``) → train ACT → serve the experiment on a
free loopback port → ``positronic-inference sim --policy=.remote`` → the success table and where every artifact is.

Each stage is the documented console command, run as a child process, so this is also a check that those commands
work together. Sizes are small by default so that the loop finishes in minutes on a CPU; every size is a flag.
Each run writes into a new ``<workdir>/run-<UTC time>/`` and never touches earlier runs.
"""

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import configuronic as cfn

CODEC = '@positronic.vendors.lerobot.codecs.eepose_absolute'
EXPERIMENT = 'quickstart'
SERVER_START_TIMEOUT_S = 120.0


class StageError(RuntimeError):
    """A stage's command exited with an error."""


def console_script(name: str) -> str:
    """Path of the console script ``name`` of this environment (beside the running interpreter), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StageError(f'command {name!r} not found beside {sys.executable} nor on PATH: is the package installed?')
    return found


def free_port(host: str = '127.0.0.1') -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _banner(index: int, total: int, title: str, argv: Sequence[str]) -> None:
    print(f'\n=== [{index}/{total}] {title}', flush=True)
    print('    $ ' + ' '.join(Path(argv[0]).name if i == 0 else a for i, a in enumerate(argv)), flush=True)


def run_stage(index: int, total: int, title: str, argv: Sequence[str]) -> float:
    """Run one stage's command in the foreground; its own progress bars show. Returns the wall time in seconds."""
    _banner(index, total, title, argv)
    start = time.monotonic()
    completed = subprocess.run(list(argv), check=False)
    if completed.returncode != 0:
        raise StageError(f'stage {title!r} failed with exit code {completed.returncode}: {" ".join(argv)}')
    return time.monotonic() - start


def wait_for_server(host: str, port: int, process: subprocess.Popen, timeout_s: float) -> list[str]:
    """Poll ``GET /api/v1/models`` until it answers (the model list) or the server exits or ``timeout_s`` passes."""
    url = f'http://{host}:{port}/api/v1/models'
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StageError(f'the server exited with code {process.returncode} before answering {url}')
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2.0) as response:
            return list(json.load(response)['models'])
        time.sleep(0.5)
    raise StageError(f'the server did not answer {url} within {timeout_s:.0f} s')


@contextlib.contextmanager
def running_server(argv: Sequence[str], host: str, port: int, log_path: Path) -> Iterator[list[str]]:
    """Start the server command, wait until it lists its models, and always stop it on exit."""
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT)
        try:
            yield wait_for_server(host, port, process, SERVER_START_TIMEOUT_S)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@cfn.config(
    workdir='~/positronic-quickstart',
    num_episodes=12,
    seed=0,
    camera_size=[160, 120],
    image_size=96,
    fps=15,
    num_train_steps=1500,
    batch_size=8,
    chunk_size=15,
    dim_model=128,
    eval_iterations=3,
    eval_seed=10_000,
    simulation_time=12.0,
)
def quickstart(
    workdir: str,
    num_episodes: int,
    seed: int,
    camera_size: Sequence[int],
    image_size: int,
    fps: int,
    num_train_steps: int,
    batch_size: int,
    chunk_size: int,
    dim_model: int,
    eval_iterations: int,
    eval_seed: int,
    simulation_time: float,
) -> None:
    """Record → convert → train → serve → evaluate on the built-in simulator; prints where every artifact is.

    Args:
        workdir: parent folder of the run folder (``~`` expanded); each run gets ``run-<UTC time>/`` inside.
        num_episodes: scripted demonstrations to record (seeds ``seed`` .. ``seed + num_episodes - 1``).
        camera_size: ``[width, height]`` of the recorded cameras.
        image_size: side of the square images the codec letterboxes to (the model's input).
        fps: sampling rate of the converted dataset, and the rate the policy runs at in evaluation.
        num_train_steps: ACT training steps (one checkpoint at the end).
        chunk_size: ACT action chunk (and actions executed per chunk).
        dim_model: ACT transformer width (feed-forward width is 4x).
        eval_iterations: evaluation episodes, with seeds ``eval_seed`` .. (kept apart from the demonstration seeds).
        simulation_time: seconds of simulated time per evaluation episode.
    """
    if eval_seed < seed + num_episodes and eval_seed + eval_iterations > seed:
        raise ValueError(
            f'eval_seed={eval_seed}: evaluation seeds {eval_seed}..{eval_seed + eval_iterations - 1} overlap the '
            f'demonstration seeds {seed}..{seed + num_episodes - 1}; choose seeds that do not overlap'
        )
    run_dir = Path(workdir).expanduser().resolve() / datetime.now(UTC).strftime('run-%Y%m%d-%H%M%S')
    run_dir.mkdir(parents=True, exist_ok=False)
    raw_dir, lerobot_dir = run_dir / 'raw', run_dir / 'lerobot'
    checkpoints_dir, eval_dir = run_dir / 'checkpoints', run_dir / 'evaluation'
    experiment_dir = checkpoints_dir / EXPERIMENT
    width, height = (int(v) for v in camera_size)
    host, port = '127.0.0.1', free_port()
    print(f'quickstart run folder: {run_dir}', flush=True)

    timings = {}
    timings['record'] = run_stage(
        1,
        5,
        'record scripted demonstrations in the simulator',
        [
            console_script('positronic-data-collection'),
            'sim',
            f'--output_dir={raw_dir}',
            f'--num_episodes={num_episodes}',
            f'--seed={seed}',
            f'--camera_size=[{width},{height}]',
        ],
    )
    timings['convert'] = run_stage(
        2,
        5,
        'convert to a LeRobot v3.0 dataset (eepose_absolute)',
        [
            console_script('positronic-to-lerobot'),
            'convert',
            f'--dataset.dataset.path={raw_dir}',
            f'--dataset.codec={CODEC}',
            f'--dataset.codec.image_size={image_size}',
            f'--output_dir={lerobot_dir}',
            f'--fps={fps}',
        ],
    )
    timings['train'] = run_stage(
        3,
        5,
        'train ACT',
        [
            console_script('positronic-lerobot-train'),
            f'--input_path={lerobot_dir}',
            f'--exp_name={EXPERIMENT}',
            f'--output_dir={checkpoints_dir}',
            f'--num_train_steps={num_train_steps}',
            f'--save_freq={num_train_steps}',
            f'--batch_size={batch_size}',
            f'--policy.chunk_size={chunk_size}',
            f'--policy.n_action_steps={chunk_size}',
            f'--policy.dim_model={dim_model}',
            f'--policy.dim_feedforward={4 * dim_model}',
            '--policy.pretrained_backbone_weights=None',
        ],
    )
    server_argv = [
        console_script('positronic-lerobot-server'),
        f'--checkpoints_dir={experiment_dir}',
        f'--host={host}',
        f'--port={port}',
    ]
    _banner(4, 5, f'serve the experiment on {host}:{port} (log: {run_dir / "server.log"})', server_argv)
    with running_server(server_argv, host, port, run_dir / 'server.log') as models:
        print(f'    serving checkpoints {models}', flush=True)
        timings['evaluate'] = run_stage(
            5,
            5,
            'run the served policy in the simulator',
            [
                console_script('positronic-inference'),
                'sim',
                '--policy=.remote',
                f'--policy.host={host}',
                f'--policy.port={port}',
                f'--policy_fps={fps}',
                f'--driver.num_iterations={eval_iterations}',
                f'--driver.simulation_time={simulation_time}',
                f'--seed={eval_seed}',
                f'--camera_size=[{width},{height}]',
                f'--output_dir={eval_dir}',
            ],
        )
    print('\n=== artifacts', flush=True)
    for label, path in [
        ('raw demonstrations', raw_dir),
        ('LeRobot dataset', lerobot_dir),
        ('checkpoints', experiment_dir / 'checkpoints'),
        ('evaluation episodes + summary', eval_dir),
        ('server log', run_dir / 'server.log'),
    ]:
        print(f'  {label:<30} {path}')
    print('  stage wall times: ' + ', '.join(f'{k} {v:.0f} s' for k, v in timings.items()), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    try:
        cfn.cli(quickstart)
    except StageError as error:
        sys.exit(f'quickstart: {error}')


if __name__ == '__main__':
    main()
