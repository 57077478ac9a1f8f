"""The whole loop on the built-in simulator, at a small scale, with the same commands a user runs.

record (scripted demonstrations in MuJoCo) → convert (``eepose_absolute``) → train ACT → serve the experiment on a
free loopback port → ``positronic-inference sim --policy=.remote`` → the success table and where every artifact is.

Each stage is the documented console command, run as a child process, so this is also a check that those commands
work together. Sizes are small by default so that the loop finishes in minutes on a CPU; every size is a flag.
Each run writes into a new ``<workdir>/run-<UTC time>/`` and never touches earlier runs.
"""

import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import configuronic as cfn

from positronic.command import UsageError, flag_defaults, run_command
from positronic.data_collection import (
    checked_blend,
    checked_camera_size,
    checked_grasp_dwell,
    checked_misses,
    checked_noise,
)
from positronic.evaluation.curve import SUCCESS_CURVE_PNG, CurvePoint, training_time_s, write_success_curve_png
from positronic.evaluation.results import SUMMARY_JSON, write_json_atomic
from positronic.evaluation.selection import Candidate, best_candidate, write_selection
from positronic.evaluation.settings import LoopSettings
from positronic.host import host_facts
from positronic.sim.command_noise import CommandNoise
from positronic.vendors.lerobot.codecs import REGISTRY as CODECS
from positronic.vendors.lerobot.training.distributed import threads_per_process
from positronic.vendors.lerobot.training.lr_schedule import LR_SCHEDULES
from positronic.vendors.lerobot.training.precision import PRECISION_CHOICES
from positronic.vendors.lerobot.training.train import TrainSettings
from positronic.vendors.lerobot.training.train_log import read_metrics

EXPERIMENT = 'quickstart'
RUN_SUMMARY = 'run_summary.json'
"""The loop's own record in the run folder: its arguments, stage wall times, final losses and success rate."""
TRAINING_SEEDS_DIR = 'evaluation-training-seeds'
"""Where ``train_eval_iterations`` records the final checkpoint's episodes on demonstration seeds."""
SELECTION_JSON = 'selection.json'
"""With ``candidates`` above 1: each trainer seed's success on the validation layouts, and the one kept."""
SERVER_START_TIMEOUT_S = 120.0
SERVER_LOG = 'server.log'
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
        'positronic.vendors.lerobot.training.train',
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


@dataclass(frozen=True)
class SeedRange:
    """``count`` episode seeds from ``first``, set by the flag ``--<flag>``, used for ``what``."""

    flag: str
    what: str
    first: int
    count: int

    @property
    def last(self) -> int:
        return self.first + self.count - 1


def _check_apart(seeds: SeedRange, other: SeedRange) -> None:
    """UsageError naming ``seeds``' flag when its seeds overlap ``other``'s."""
    if seeds.first <= other.last and seeds.last >= other.first:
        raise UsageError(
            f'--{seeds.flag}={seeds.first}: {seeds.what} seeds {seeds.first}..{seeds.last} overlap the '
            f'{other.what} seeds {other.first}..{other.last}; choose seeds that do not overlap'
        )


@dataclass(frozen=True)
class Options:
    """The flags of ``positronic-quickstart`` with their defaults (documented in :func:`quickstart`)."""

    workdir: str = '~/positronic-quickstart'
    num_episodes: int = 12
    seed: int = 0
    camera_size: Sequence[int] = field(default_factory=lambda: [96, 96])
    command_noise_m: float = 0.0
    command_noise_fade_s: float = 1.0
    expert_blend: float = 0.0
    grasp_miss_rate: float = 0.0
    grasp_dwell_s: float = 0.0
    image_size: int = 96
    fps: int = 15
    num_train_steps: int = 1500
    batch_size: int = 8
    chunk_size: int = 15
    dim_model: int = 128
    lr: float = 1e-4
    lr_schedule: str = 'constant'
    train_seed: int = TrainSettings.seed
    candidates: int = 1
    select_seed: int = 20_000
    select_iterations: int = 50
    use_vae: bool = False
    train_batchnorm: bool = True
    dropout: float = 0.1
    precision: str = 'auto'
    train_processes: int = 1
    codec: str = 'eepose_absolute'
    eval_iterations: int = 3
    eval_seed: int = 10_000
    simulation_time: float = 12.0
    actions_per_chunk: int | None = None
    temporal_ensemble_coeff: float | None = None
    curve_points: int = 0
    train_eval_iterations: int = 0

    def check(self) -> None:
        """UsageError naming the first flag that is out of range or contradicts another."""
        if self.codec not in CODECS:
            raise UsageError(f'--codec={self.codec!r}: expected one of {", ".join(CODECS)}')
        if self.precision not in PRECISION_CHOICES:
            raise UsageError(f'--precision={self.precision!r}: expected one of {", ".join(PRECISION_CHOICES)}')
        if self.lr_schedule not in LR_SCHEDULES:
            raise UsageError(f'--lr_schedule={self.lr_schedule!r}: expected one of {", ".join(LR_SCHEDULES)}')
        counts = ('num_episodes', 'num_train_steps', 'batch_size', 'chunk_size', 'dim_model', 'image_size', 'fps')
        for name in (*counts, 'train_processes', 'eval_iterations', 'candidates', 'select_iterations'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f'--{name}={value!r}: expected an integer >= 1')
        for name in ('seed', 'train_seed', 'eval_seed', 'select_seed'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f'--{name}={value!r}: expected an integer >= 0')
        time_s = self.simulation_time
        if isinstance(time_s, bool) or not isinstance(time_s, int | float) or not 0 < time_s < math.inf:
            raise UsageError(f'--simulation_time={time_s!r}: expected a positive number of seconds')
        # The recorder's own checks, so a bad recording flag stops the run before its folder exists.
        checked_camera_size(self.camera_size)
        checked_noise(self.command_noise_m, CommandNoise.time_constant_s, self.command_noise_fade_s)
        checked_blend(self.expert_blend)
        checked_misses(self.grasp_miss_rate)
        checked_grasp_dwell(self.grasp_dwell_s)
        # The checkpoint answers its whole chunk (n_action_steps = chunk_size): the loop's setting alone decides.
        loop = LoopSettings(
            actions_per_chunk=self.actions_per_chunk, temporal_ensemble_coeff=self.temporal_ensemble_coeff
        )
        loop.check_actions_per_chunk(self.chunk_size, 'chunk_size')
        if not 0 <= self.train_eval_iterations <= self.num_episodes:
            raise UsageError(
                f'--train_eval_iterations={self.train_eval_iterations}: expected 0..num_episodes ({self.num_episodes})'
            )
        if self.curve_points < 0 or self.num_train_steps % (self.curve_points + 1):
            raise UsageError(
                f'--curve_points={self.curve_points}: expected >= 0 and dividing num_train_steps into equal parts'
            )
        demonstrations = SeedRange('seed', 'demonstration', self.seed, self.num_episodes)
        evaluation = SeedRange('eval_seed', 'evaluation', self.eval_seed, self.eval_iterations)
        _check_apart(evaluation, demonstrations)
        if self.candidates > 1:
            validation = SeedRange('select_seed', 'validation', self.select_seed, self.select_iterations)
            _check_apart(validation, demonstrations)
            _check_apart(validation, evaluation)

    @property
    def save_freq(self) -> int:
        """Training steps between checkpoints: the final one and ``curve_points`` evenly before it."""
        return self.num_train_steps // (self.curve_points + 1)

    @property
    def curve_steps(self) -> list[int]:
        """The earlier checkpoints the success curve evaluates (the final one is evaluated anyway)."""
        return list(range(self.save_freq, self.num_train_steps, self.save_freq))

    @property
    def train_seeds(self) -> list[int]:
        """The trainer seeds of the candidates: ``train_seed`` and the ``candidates - 1`` after it."""
        return list(range(self.train_seed, self.train_seed + self.candidates))

    @property
    def camera_flag(self) -> str:
        width, height = (int(v) for v in self.camera_size)
        return f'--camera_size=[{width},{height}]'


@dataclass(frozen=True)
class RunPaths:
    """Where one run writes: every artifact lives under ``run_dir``."""

    run_dir: Path

    @classmethod
    def create(cls, workdir: str) -> 'RunPaths':
        """A new ``run-<UTC time>/`` folder inside ``workdir`` (``~`` expanded); refuses to reuse one."""
        run_dir = Path(workdir).expanduser().resolve() / datetime.now(UTC).strftime('run-%Y%m%d-%H%M%S')
        run_dir.mkdir(parents=True, exist_ok=False)
        return cls(run_dir)

    @property
    def raw(self) -> Path:
        """Raw demonstrations (``positronic-data-collection``)."""
        return self.run_dir / 'raw'

    @property
    def lerobot(self) -> Path:
        """The converted LeRobot v3.0 dataset."""
        return self.run_dir / 'lerobot'

    @property
    def checkpoints(self) -> Path:
        """The trainer's ``--output_dir``."""
        return self.run_dir / 'checkpoints'

    @property
    def experiment(self) -> Path:
        """The experiment the server serves (``checkpoints/<step>/pretrained_model``)."""
        return self.checkpoints / EXPERIMENT

    @property
    def frame_cache(self) -> Path:
        """The trainer's decoded frames, shared by every candidate."""
        return self.checkpoints / 'frame_cache'

    def candidate(self, train_seed: int) -> Path:
        """The trainer's ``--output_dir`` for the candidate of ``train_seed``; the kept one's experiment moves
        from there to :attr:`experiment`."""
        return self.checkpoints / 'candidates' / f'seed-{train_seed}'

    def validation(self, train_seed: int) -> Path:
        """The candidate of ``train_seed`` on the validation layouts."""
        return self.run_dir / f'validation-seed-{train_seed}'

    @property
    def selection(self) -> Path:
        """``selection.json``."""
        return self.run_dir / SELECTION_JSON

    @property
    def evaluation(self) -> Path:
        """The final checkpoint on unseen seeds: episodes and ``summary.json``."""
        return self.run_dir / 'evaluation'

    @property
    def training_seeds(self) -> Path:
        """The final checkpoint on demonstration seeds."""
        return self.run_dir / TRAINING_SEEDS_DIR

    @property
    def server_log(self) -> Path:
        """The server's output."""
        return self.run_dir / SERVER_LOG

    @property
    def summary(self) -> Path:
        """``run_summary.json``."""
        return self.run_dir / RUN_SUMMARY

    def curve_evaluation(self, step: int) -> Path:
        return self.run_dir / f'evaluation-{step}'


@dataclass(frozen=True)
class Endpoint:
    """The loopback address the experiment is served on."""

    host: str
    port: int


STAGES = 5
"""record, convert, train, serve, evaluate: the numbered stages of a run."""


@cfn.config(**flag_defaults(Options))
def quickstart(**flags: Any) -> None:
    """Record → convert → train → serve → evaluate on the built-in simulator; prints where every artifact is.

    Args:
        workdir: parent folder of the run folder (``~`` expanded); each run gets ``run-<UTC time>/`` inside.
        num_episodes: scripted demonstrations to record (seeds ``seed`` .. ``seed + num_episodes - 1``).
        camera_size: ``[width, height]`` of the recorded cameras.
        command_noise_m: the recorder's ``--command_noise_m`` (see ``positronic-data-collection sim --help``): a
            smooth random offset (standard deviation, metres) on the executed position, not on the recorded one.
        command_noise_fade_s: the recorder's ``--command_noise_fade_s``: how long before and after the grasp and
            the release the offset fades to zero (0: no fade).
        expert_blend: the recorder's ``--expert_blend``: how much the scripted expert overlaps its moves, so it
            passes its waypoints without stopping (0: it stops at each).
        grasp_miss_rate: the recorder's ``--grasp_miss_rate``: the share of episodes whose gripper closes early,
            with the expert grasping again after each miss (0: none).
        grasp_dwell_s: the recorder's ``--grasp_dwell_s``: how long the scripted expert holds still at the grasp
            pose, open, before closing (0: it closes as the hand arrives).
        image_size: side of the square images the codec letterboxes to (the model's input).
        fps: sampling rate of the converted dataset, and the rate the policy runs at in evaluation.
        num_train_steps: ACT training steps (a checkpoint at the end, and ``curve_points`` evenly before it).
        chunk_size: ACT action chunk; the checkpoints answer the whole chunk per query (n_action_steps = chunk_size).
        dim_model: ACT transformer width (feed-forward width is 4x).
        lr: learning rate of the transformer and of the backbone (the backbone trains from scratch here, so
            LeRobot's 1e-5 for fine-tuning ImageNet weights learns too slowly).
        lr_schedule: the trainer's ``--lr_schedule``: constant (LeRobot's) or cosine (both rates annealed to near
            zero at the last step).
        train_seed: the trainer's ``--seed`` (weights' initialisation and batch order); another value is another
            draw of the same recipe, which is how to measure its spread (one host reproduces a seed exactly).
        candidates: training runs, with trainer seeds ``train_seed`` .. ``train_seed + candidates - 1``. With more
            than one, each final checkpoint runs on ``select_iterations`` validation layouts and the one that
            stacks most often (the first on a tie) is kept, served and evaluated; ``selection.json`` says how each
            did. Training and validation count in the time to the final evaluation.
        select_seed: the first validation seed (kept apart from the demonstration and evaluation seeds).
        select_iterations: validation episodes per candidate.
        use_vae: train ACT's VAE encoder (the scripted demonstrations are deterministic, so it is off by default).
        train_batchnorm: train the backbone's batch norm (see ``positronic-lerobot-train --help``), which a backbone
            trained from scratch needs; checkpoints keep LeRobot's layout.
        dropout: ACT's transformer dropout (LeRobot's default 0.1).
        precision: the trainer's ``--precision``: auto (fp32 on CPU, autocast on CUDA), fp32 or bf16 (autocast;
            fast only on CPUs with bf16 kernels, e.g. AVX512 or AMX; the trainer notes when it is emulated).
        train_processes: training processes (``torchrun --nproc_per_node``, DistributedDataParallel), each with
            ``batch_size`` samples and an equal share of the CPU threads; the global batch is
            ``train_processes * batch_size``. For several GPUs; on a CPU with few cores a bigger ``batch_size``
            in one process is as fast (see docs/training.md).
        codec: ``eepose_absolute`` or ``joints_absolute``; used to convert, train and serve.
        eval_iterations: evaluation episodes, with seeds ``eval_seed`` .. (kept apart from the demonstration seeds).
        simulation_time: seconds of simulated time per evaluation episode.
        actions_per_chunk: actions executed from each chunk before the policy is queried again (1..chunk_size;
            default: all). The one setting for actions per query (see docs/evaluation.md).
        temporal_ensemble_coeff: evaluate with ACT's temporal ensembling (``positronic-inference sim
            --temporal_ensemble_coeff``): a query every tick, each action the weighted mean of every chunk's
            prediction for that tick (0.01 as in ACT); excludes ``actions_per_chunk``. Default: off.
        curve_points: earlier checkpoints, evenly spaced, evaluated after the final one (same seeds) to draw
            ``success_curve.png``; not counted in the reported time to the final evaluation.
        train_eval_iterations: also run the final checkpoint on the first this many demonstration seeds (layouts it
            was trained on), after the final evaluation and not counted in its time; success there against success
            on unseen seeds separates fitting from generalizing.
    """
    options = Options(**flags)
    options.check()
    paths = RunPaths.create(options.workdir)
    print(f'quickstart run folder: {paths.run_dir}', flush=True)
    started = time.monotonic()
    timings = {'record': record(options, paths), 'convert': convert(options, paths)}
    if options.candidates == 1:
        timings['train'] = train(options, paths)
    else:
        timings['train'], timings['validate'] = train_and_select(options, paths)
    timings['evaluate'], total_s = serve_and_evaluate(options, paths, Endpoint('127.0.0.1', free_port()), started)
    report(options, paths, timings, total_s)


def record(options: Options, paths: RunPaths) -> float:
    """Stage 1: scripted demonstrations in the simulator, as a raw dataset. Returns the wall time in seconds."""
    return run_stage(
        1,
        STAGES,
        'record scripted demonstrations in the simulator',
        [
            console_script('positronic-data-collection'),
            'sim',
            f'--output_dir={paths.raw}',
            f'--num_episodes={options.num_episodes}',
            f'--seed={options.seed}',
            options.camera_flag,
            f'--command_noise_m={options.command_noise_m}',
            f'--command_noise_fade_s={options.command_noise_fade_s}',
            f'--expert_blend={options.expert_blend}',
            f'--grasp_miss_rate={options.grasp_miss_rate}',
            f'--grasp_dwell_s={options.grasp_dwell_s}',
        ],
    )


def convert(options: Options, paths: RunPaths) -> float:
    """Stage 2: the raw dataset as a LeRobot v3.0 dataset through the codec. Returns the wall time in seconds."""
    return run_stage(
        2,
        STAGES,
        f'convert to a LeRobot v3.0 dataset ({options.codec})',
        [
            console_script('positronic-to-lerobot'),
            'convert',
            f'--dataset.dataset.path={paths.raw}',
            f'--dataset.codec=@positronic.vendors.lerobot.codecs.{options.codec}',
            f'--dataset.codec.image_size={options.image_size}',
            f'--output_dir={paths.lerobot}',
            f'--fps={options.fps}',
        ],
    )


def train(options: Options, paths: RunPaths, train_seed: int | None = None) -> float:
    """Stage 3: ACT on the LeRobot dataset, checkpoints every ``save_freq`` steps, into the run's experiment; with
    ``train_seed``, into that candidate's folder with that seed. Returns the wall time in seconds."""
    processes = options.train_processes
    title = 'train ACT' + (f' ({processes} processes)' if processes > 1 else '')
    output_dir, cache = paths.checkpoints, []
    if train_seed is not None:
        title += f', candidate {train_seed - options.train_seed + 1} of {options.candidates}'
        output_dir, cache = paths.candidate(train_seed), [f'--cache_dir={paths.frame_cache}']
    return run_stage(
        3,
        STAGES,
        title,
        [
            *train_launcher(processes),
            f'--input_path={paths.lerobot}',
            f'--exp_name={EXPERIMENT}',
            f'--output_dir={output_dir}',
            *cache,
            f'--num_train_steps={options.num_train_steps}',
            f'--save_freq={options.save_freq}',
            f'--batch_size={options.batch_size}',
            f'--precision={options.precision}',
            f'--policy.chunk_size={options.chunk_size}',
            f'--policy.n_action_steps={options.chunk_size}',  # answer whole chunks: --actions_per_chunk decides
            f'--policy.dim_model={options.dim_model}',
            f'--policy.dim_feedforward={4 * options.dim_model}',
            f'--policy.dropout={options.dropout}',
            f'--policy.optimizer_lr={options.lr}',
            f'--policy.optimizer_lr_backbone={options.lr}',
            f'--policy.use_vae={options.use_vae}',
            f'--train_batchnorm={options.train_batchnorm}',
            f'--lr_schedule={options.lr_schedule}',
            f'--seed={options.train_seed if train_seed is None else train_seed}',
            '--policy.pretrained_backbone_weights=None',
        ],
        env=train_environment(processes),
    )


def train_and_select(options: Options, paths: RunPaths) -> tuple[float, float]:
    """Stage 3 with several candidates: train each trainer seed, run its final checkpoint on the validation
    layouts, move the best one's experiment to the run's experiment and write ``selection.json``. Returns the wall
    times of training and of validation, in seconds."""
    train_s = validate_s = 0.0
    candidates = []
    for train_seed in options.train_seeds:
        train_s += train(options, paths, train_seed)
        started = time.monotonic()
        endpoint = Endpoint('127.0.0.1', free_port())
        argv = server_argv(paths.candidate(train_seed) / EXPERIMENT, endpoint)
        with running_server(argv, endpoint.host, endpoint.port, paths.run_dir / f'server-seed-{train_seed}.log'):
            title = f'validate trainer seed {train_seed} on {options.select_iterations} held-out layouts'
            output_dir = paths.validation(train_seed)
            seeds = {'first_seed': options.select_seed, 'iterations': options.select_iterations}
            run_stage(3, STAGES, title, inference_argv(options, endpoint, output_dir, **seeds))
        validate_s += time.monotonic() - started
        candidates.append(Candidate.from_evaluation(train_seed, output_dir))
    chosen = best_candidate(candidates)
    (paths.candidate(chosen.train_seed) / EXPERIMENT).rename(paths.experiment)
    write_selection(candidates, chosen, paths.selection)
    scores = ', '.join(f'seed {c.train_seed} {c.successes}/{c.total}' for c in candidates)
    print(f'    validation: {scores}; keeping trainer seed {chosen.train_seed}', flush=True)
    return train_s, validate_s


def server_argv(experiment: Path, endpoint: Endpoint) -> list[str]:
    """``positronic-lerobot-server`` serving ``experiment``'s checkpoints on ``endpoint``."""
    return [
        console_script('positronic-lerobot-server'),
        f'--checkpoints_dir={experiment}',
        f'--host={endpoint.host}',
        f'--port={endpoint.port}',
    ]


def serve_and_evaluate(options: Options, paths: RunPaths, endpoint: Endpoint, started: float) -> tuple[float, float]:
    """Stages 4 and 5: serve the experiment, evaluate the final checkpoint on unseen seeds; then (not timed) on
    training seeds and the success curve's earlier checkpoints. Returns the final evaluation's wall time and the
    seconds from ``started`` to its end."""
    argv = server_argv(paths.experiment, endpoint)
    _banner(4, STAGES, f'serve the experiment on {endpoint.host}:{endpoint.port} (log: {paths.server_log})', argv)
    with running_server(argv, endpoint.host, endpoint.port, paths.server_log) as models:
        print(f'    serving checkpoints {models}', flush=True)
        title = 'run the served policy in the simulator'
        evaluate_s = run_stage(5, STAGES, title, inference_argv(options, endpoint, paths.evaluation))
        total_s = time.monotonic() - started
        if options.train_eval_iterations:
            title = f'the final checkpoint on {options.train_eval_iterations} training seeds'
            argv = inference_argv(
                options,
                endpoint,
                paths.training_seeds,
                first_seed=options.seed,
                iterations=options.train_eval_iterations,
            )
            run_stage(1, 1, title, argv)
        for k, step in enumerate(options.curve_steps, start=1):
            argv = inference_argv(options, endpoint, paths.curve_evaluation(step), model_id=step)
            run_stage(k, len(options.curve_steps), f'success curve: checkpoint {step}', argv)
    return evaluate_s, total_s


def inference_argv(
    options: Options,
    endpoint: Endpoint,
    output_dir: Path,
    model_id: int | None = None,
    first_seed: int | None = None,
    iterations: int | None = None,
) -> list[str]:
    """``positronic-inference sim`` against the served experiment (checkpoint ``model_id``, default the latest),
    on ``iterations`` seeds from ``first_seed`` (default: the evaluation seeds), recording into ``output_dir``."""
    return [
        console_script('positronic-inference'),
        'sim',
        '--policy=.remote',
        f'--policy.host={endpoint.host}',
        f'--policy.port={endpoint.port}',
        *([f'--policy.model_id={model_id}'] if model_id is not None else []),
        f'--policy_fps={options.fps}',
        f'--driver.num_iterations={options.eval_iterations if iterations is None else iterations}',
        f'--driver.simulation_time={options.simulation_time}',
        f'--seed={options.eval_seed if first_seed is None else first_seed}',
        options.camera_flag,
        f'--output_dir={output_dir}',
        *([f'--actions_per_chunk={options.actions_per_chunk}'] if options.actions_per_chunk else []),
        *(
            [f'--temporal_ensemble_coeff={options.temporal_ensemble_coeff}']
            if options.temporal_ensemble_coeff is not None
            else []
        ),
    ]


def report(options: Options, paths: RunPaths, timings: dict[str, float], total_s: float) -> None:
    """Write ``run_summary.json`` and print where every artifact is, the stage times and the success rates."""
    curve = [(step, paths.curve_evaluation(step)) for step in options.curve_steps]
    train_eval_dir = paths.training_seeds if options.train_eval_iterations else None
    print('\n=== artifacts', flush=True)
    for label, path in [
        ('raw demonstrations', paths.raw),
        ('LeRobot dataset', paths.lerobot),
        ('checkpoints', paths.experiment / 'checkpoints'),
        ('evaluation episodes + summary', paths.evaluation),
        *([('evaluation on training seeds', train_eval_dir)] if train_eval_dir is not None else []),
        ('server log', paths.server_log),
        *([('validation of the candidates', paths.selection)] if paths.selection.exists() else []),
        ('run summary', paths.summary),
        *([('success curve', paths.run_dir / SUCCESS_CURVE_PNG)] if curve else []),
    ]:
        print(f'  {label:<30} {path}')
    curve = [*curve, (options.num_train_steps, paths.evaluation)] if curve else []
    summary = run_summary(paths.run_dir, timings, total_s, curve, train_eval_dir)
    print('  stage wall times: ' + ', '.join(f'{k} {v:.0f} s' for k, v in timings.items()), flush=True)
    print(f'  record to final evaluation: {total_s / 60:.1f} min; final loss {summary["final_loss"]}', flush=True)
    for candidate in (summary['selection'] or {}).get('candidates', []):
        kept = ' (kept)' if candidate['train_seed'] == summary['selection']['chosen_train_seed'] else ''
        print(
            f'  trainer seed {candidate["train_seed"]}: {candidate["successes"]}/{candidate["total"]} succeeded on '
            f'validation seeds{kept}',
            flush=True,
        )
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
    success on training seeds (from ``train_eval_dir``, else None), the candidates' validation
    (``selection.json``, else None), the success curve of ``curve`` (checkpoint
    step, its evaluation folder), also drawn into ``success_curve.png``, and the host
    (:func:`positronic.host.host_facts`). Returns what it wrote."""
    paths = RunPaths(run_dir)
    metrics = read_metrics(paths.experiment)
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
        **_successes(paths.evaluation / SUMMARY_JSON),
        'training_seeds': _successes(train_eval_dir / SUMMARY_JSON) if train_eval_dir is not None else None,
        'selection': json.loads(paths.selection.read_text()) if paths.selection.exists() else None,
        'curve': [point.to_json() for point in points],
        'host': host_facts(),
    }
    write_json_atomic(summary, paths.summary)
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
