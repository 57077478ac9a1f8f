"""The whole loop on the built-in simulator, at a small scale, with the same commands a user runs.

record (scripted demonstrations in MuJoCo) → convert (``eepose_absolute``) → train ACT → serve the experiment on a
free loopback port → ``positronic-inference sim --policy=.remote`` → the success table and where every artifact is.

Each stage is the documented console command, run as a child process, so this is also a check that those commands
work together. Sizes are small by default so that the loop finishes in minutes on a CPU; every size is a flag.
Each run writes into a new ``<workdir>/run-<UTC time>/`` and never touches earlier runs.
"""

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import configuronic as cfn

from positronic.command import UsageError, run_command
from positronic.evaluation.curve import SUCCESS_CURVE_PNG, CurvePoint, training_time_s, write_success_curve_png
from positronic.evaluation.results import SUMMARY_JSON, write_json_atomic
from positronic.vendors.lerobot.distributed import threads_per_process
from positronic.vendors.lerobot.train import PRECISION_CHOICES
from positronic.vendors.lerobot.train_log import read_metrics

CODECS = ('eepose_absolute', 'joints_absolute')
"""Codec names of ``positronic.vendors.lerobot.codecs`` the loop can use."""
EXPERIMENT = 'quickstart'
RUN_SUMMARY = 'run_summary.json'
"""The loop's own record in the run folder: its arguments, stage wall times, final losses and success rate."""
TRAINING_SEEDS_DIR = 'evaluation-training-seeds'
"""Where ``train_eval_iterations`` records the final checkpoint's episodes on demonstration seeds."""
SERVER_START_TIMEOUT_S = 120.0
PROG = 'positronic-quickstart'


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


def run_stage(index: int, total: int, title: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    """Run one stage's command in the foreground (with ``env`` added to the environment); its own progress bars
    show. Returns the wall time in seconds."""
    _banner(index, total, title, argv)
    start = time.monotonic()
    completed = subprocess.run(list(argv), check=False, env={**os.environ, **env} if env else None)
    if completed.returncode != 0:
        raise StageError(f'stage {title!r} failed with exit code {completed.returncode}: {" ".join(argv)}')
    return time.monotonic() - start


def train_launcher(processes: int) -> list[str]:
    """The trainer's command: ``positronic-lerobot-train``, or its module under ``torchrun`` for several processes."""
    if processes == 1:
        return [console_script('positronic-lerobot-train')]
    return [
        console_script('torchrun'),
        '--standalone',
        f'--nproc_per_node={processes}',
        '-m',
        'positronic.vendors.lerobot.train',
    ]


def train_environment(processes: int) -> dict[str, str]:
    """Threads per training process: an equal share of the CPUs, unless ``OMP_NUM_THREADS`` is set already."""
    if processes == 1 or 'OMP_NUM_THREADS' in os.environ:
        return {}
    return {'OMP_NUM_THREADS': str(threads_per_process(processes))}


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
    camera_size=[96, 96],
    image_size=96,
    fps=15,
    num_train_steps=1500,
    batch_size=8,
    chunk_size=15,
    dim_model=128,
    lr=1e-4,
    use_vae=False,
    train_batchnorm=True,
    dropout=0.1,
    precision='auto',
    train_processes=1,
    codec='eepose_absolute',
    eval_iterations=3,
    eval_seed=10_000,
    simulation_time=12.0,
    actions_per_chunk=None,
    curve_points=0,
    train_eval_iterations=0,
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
    lr: float,
    use_vae: bool,
    train_batchnorm: bool,
    dropout: float,
    precision: str,
    train_processes: int,
    codec: str,
    eval_iterations: int,
    eval_seed: int,
    simulation_time: float,
    actions_per_chunk: int | None,
    curve_points: int,
    train_eval_iterations: int,
) -> None:
    """Record → convert → train → serve → evaluate on the built-in simulator; prints where every artifact is.

    Args:
        workdir: parent folder of the run folder (``~`` expanded); each run gets ``run-<UTC time>/`` inside.
        num_episodes: scripted demonstrations to record (seeds ``seed`` .. ``seed + num_episodes - 1``).
        camera_size: ``[width, height]`` of the recorded cameras.
        image_size: side of the square images the codec letterboxes to (the model's input).
        fps: sampling rate of the converted dataset, and the rate the policy runs at in evaluation.
        num_train_steps: ACT training steps (a checkpoint at the end, and ``curve_points`` evenly before it).
        chunk_size: ACT action chunk.
        dim_model: ACT transformer width (feed-forward width is 4x).
        lr: learning rate of the transformer and of the backbone (the backbone trains from scratch here, so
            LeRobot's 1e-5 for fine-tuning ImageNet weights learns too slowly).
        use_vae: train ACT's VAE encoder (the scripted demonstrations are deterministic, so it is off by default).
        train_batchnorm: train the backbone's batch norm (see ``positronic-lerobot-train --help``), which a backbone
            trained from scratch needs; checkpoints keep LeRobot's layout.
        dropout: ACT's transformer dropout (LeRobot's default 0.1).
        precision: the trainer's ``--precision``: auto (fp32 on CPU, autocast on CUDA), fp32 or bf16 (autocast;
            fast on CPUs with AMX or AVX512-BF16).
        train_processes: training processes (``torchrun --nproc_per_node``, DistributedDataParallel), each with
            ``batch_size`` samples and an equal share of the CPU threads; the global batch is
            ``train_processes * batch_size``. For several GPUs; on a CPU with few cores a bigger ``batch_size``
            in one process is as fast (see docs/training.md).
        codec: ``eepose_absolute`` or ``joints_absolute``; used to convert, train and serve.
        eval_iterations: evaluation episodes, with seeds ``eval_seed`` .. (kept apart from the demonstration seeds).
        simulation_time: seconds of simulated time per evaluation episode.
        actions_per_chunk: actions executed from each chunk before the policy is queried again (default: all).
        curve_points: earlier checkpoints, evenly spaced, evaluated after the final one (same seeds) to draw
            ``success_curve.png``; not counted in the reported time to the final evaluation.
        train_eval_iterations: also run the final checkpoint on the first this many demonstration seeds (layouts it
            was trained on), after the final evaluation and not counted in its time; success there against success
            on unseen seeds separates fitting from generalizing.
    """
    if codec not in CODECS:
        raise UsageError(f'--codec={codec!r}: expected one of {", ".join(CODECS)}')
    if precision not in PRECISION_CHOICES:
        raise UsageError(f'--precision={precision!r}: expected one of {", ".join(PRECISION_CHOICES)}')
    if train_processes < 1:
        raise UsageError(f'--train_processes={train_processes}: expected >= 1')
    if actions_per_chunk is not None and not 1 <= actions_per_chunk <= chunk_size:
        raise UsageError(f'--actions_per_chunk={actions_per_chunk}: expected 1..chunk_size ({chunk_size})')
    if not 0 <= train_eval_iterations <= num_episodes:
        raise UsageError(f'--train_eval_iterations={train_eval_iterations}: expected 0..num_episodes ({num_episodes})')
    if curve_points < 0 or num_train_steps % (curve_points + 1):
        raise UsageError(f'--curve_points={curve_points}: expected >= 0 and dividing num_train_steps into equal parts')
    save_freq = num_train_steps // (curve_points + 1)
    if eval_seed < seed + num_episodes and eval_seed + eval_iterations > seed:
        raise UsageError(
            f'--eval_seed={eval_seed}: evaluation seeds {eval_seed}..{eval_seed + eval_iterations - 1} overlap the '
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

    started = time.monotonic()
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
        f'convert to a LeRobot v3.0 dataset ({codec})',
        [
            console_script('positronic-to-lerobot'),
            'convert',
            f'--dataset.dataset.path={raw_dir}',
            f'--dataset.codec=@positronic.vendors.lerobot.codecs.{codec}',
            f'--dataset.codec.image_size={image_size}',
            f'--output_dir={lerobot_dir}',
            f'--fps={fps}',
        ],
    )
    timings['train'] = run_stage(
        3,
        5,
        'train ACT' + (f' ({train_processes} processes)' if train_processes > 1 else ''),
        [
            *train_launcher(train_processes),
            f'--input_path={lerobot_dir}',
            f'--exp_name={EXPERIMENT}',
            f'--output_dir={checkpoints_dir}',
            f'--num_train_steps={num_train_steps}',
            f'--save_freq={save_freq}',
            f'--batch_size={batch_size}',
            f'--precision={precision}',
            f'--policy.chunk_size={chunk_size}',
            f'--policy.n_action_steps={chunk_size}',
            f'--policy.dim_model={dim_model}',
            f'--policy.dim_feedforward={4 * dim_model}',
            f'--policy.dropout={dropout}',
            f'--policy.optimizer_lr={lr}',
            f'--policy.optimizer_lr_backbone={lr}',
            f'--policy.use_vae={use_vae}',
            f'--train_batchnorm={train_batchnorm}',
            '--policy.pretrained_backbone_weights=None',
        ],
        env=train_environment(train_processes),
    )
    server_argv = [
        console_script('positronic-lerobot-server'),
        f'--checkpoints_dir={experiment_dir}',
        f'--host={host}',
        f'--port={port}',
    ]

    def evaluate(
        index: int,
        total: int,
        title: str,
        output_dir: Path,
        model_id: int | None = None,
        first_seed: int = eval_seed,
        iterations: int = eval_iterations,
    ) -> float:
        return run_stage(
            index,
            total,
            title,
            [
                console_script('positronic-inference'),
                'sim',
                '--policy=.remote',
                f'--policy.host={host}',
                f'--policy.port={port}',
                *([f'--policy.model_id={model_id}'] if model_id is not None else []),
                f'--policy_fps={fps}',
                f'--driver.num_iterations={iterations}',
                f'--driver.simulation_time={simulation_time}',
                f'--seed={first_seed}',
                f'--camera_size=[{width},{height}]',
                f'--output_dir={output_dir}',
                *([f'--actions_per_chunk={actions_per_chunk}'] if actions_per_chunk else []),
            ],
        )

    curve = [(step, run_dir / f'evaluation-{step}') for step in range(save_freq, num_train_steps, save_freq)]
    _banner(4, 5, f'serve the experiment on {host}:{port} (log: {run_dir / "server.log"})', server_argv)
    with running_server(server_argv, host, port, run_dir / 'server.log') as models:
        print(f'    serving checkpoints {models}', flush=True)
        timings['evaluate'] = evaluate(5, 5, 'run the served policy in the simulator', eval_dir)
        total_s = time.monotonic() - started
        train_eval_dir = run_dir / TRAINING_SEEDS_DIR if train_eval_iterations else None
        if train_eval_dir is not None:
            title = f'the final checkpoint on {train_eval_iterations} training seeds'
            evaluate(1, 1, title, train_eval_dir, first_seed=seed, iterations=train_eval_iterations)
        for k, (step, curve_dir) in enumerate(curve, start=1):
            evaluate(k, len(curve), f'success curve: checkpoint {step}', curve_dir, step)
    print('\n=== artifacts', flush=True)
    for label, path in [
        ('raw demonstrations', raw_dir),
        ('LeRobot dataset', lerobot_dir),
        ('checkpoints', experiment_dir / 'checkpoints'),
        ('evaluation episodes + summary', eval_dir),
        *([('evaluation on training seeds', train_eval_dir)] if train_eval_dir is not None else []),
        ('server log', run_dir / 'server.log'),
        ('run summary', run_dir / RUN_SUMMARY),
        *([('success curve', run_dir / SUCCESS_CURVE_PNG)] if curve else []),
    ]:
        print(f'  {label:<30} {path}')
    summary = run_summary(
        run_dir, timings, total_s, [*curve, (num_train_steps, eval_dir)] if curve else [], train_eval_dir
    )
    print('  stage wall times: ' + ', '.join(f'{k} {v:.0f} s' for k, v in timings.items()), flush=True)
    print(f'  record to final evaluation: {total_s / 60:.1f} min; final loss {summary["final_loss"]}', flush=True)
    print(f'  final checkpoint: {summary["successes"]}/{summary["total"]} succeeded on unseen seeds', flush=True)
    if summary['training_seeds'] is not None:
        trained = summary['training_seeds']
        print(f'  final checkpoint: {trained["successes"]}/{trained["total"]} succeeded on training seeds', flush=True)
    for point in summary['curve']:
        print(
            f'  checkpoint {point["step"]:>6} after {point["train_s"] / 60:5.1f} min of training: '
            f'{point["successes"]}/{point["total"]} succeeded',
            flush=True,
        )


def run_summary(
    run_dir: Path,
    timings: dict[str, float],
    total_s: float,
    curve: Sequence[tuple[int, Path]],
    train_eval_dir: Path | None = None,
) -> dict:
    """Write ``run_summary.json`` into ``run_dir``: the command line, stage wall times, the time from recording to
    the final evaluation, the last logged training losses, the final success rate with its 95% interval, the
    success on training seeds (from ``train_eval_dir``, else None) and the success curve of ``curve`` (checkpoint
    step, its evaluation folder), also drawn into ``success_curve.png``. Returns what it wrote."""
    metrics = read_metrics(run_dir / 'checkpoints' / EXPERIMENT)
    final_loss = None
    if metrics:
        final_loss = {k: metrics[-1][k] for k in ('step', 'loss', 'l1_loss', 'kld_loss') if k in metrics[-1]}
    points = []
    for step, evaluation_dir in curve:
        result = json.loads((evaluation_dir / SUMMARY_JSON).read_text())
        points.append(CurvePoint(step, training_time_s(metrics, step), result['successes'], result['total']))
    if points:
        write_success_curve_png(points, run_dir / SUCCESS_CURVE_PNG, title='success rate on unseen seeds')
    summary = {
        'command': [PROG, *sys.argv[1:]],
        'stage_s': timings,
        'total_s': total_s,
        'final_loss': final_loss,
        **_successes(run_dir / 'evaluation' / SUMMARY_JSON),
        'training_seeds': _successes(train_eval_dir / SUMMARY_JSON) if train_eval_dir is not None else None,
        'curve': [point.to_json() for point in points],
    }
    write_json_atomic(summary, run_dir / RUN_SUMMARY)
    return summary


def _successes(summary_json: Path) -> dict[str, Any]:
    """The success count, total, rate and its 95% interval of an evaluation's ``summary.json``."""
    result = json.loads(summary_json.read_text())
    return {k: result[k] for k in ('successes', 'total', 'success_rate', 'success_rate_ci95')}


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``positronic-quickstart``; ``argv`` replaces the command line (for tests)."""
    run_command(PROG, quickstart, argv, data_errors=(StageError,))


if __name__ == '__main__':
    main()
