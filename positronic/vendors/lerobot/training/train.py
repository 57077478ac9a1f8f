"""``positronic-lerobot-train``: train ACT on a LeRobot v3.0 dataset into LeRobot-compatible checkpoints.

    positronic-lerobot-train --input_path=~/datasets/lerobot/stack --exp_name=stack_act --output_dir=~/runs
        [--num_train_steps=50000] [--save_freq=10000] [--batch_size=8] [--resume=True]
        [--codec=@positronic.vendors.lerobot.codecs.eepose_absolute] [--policy.chunk_size=50 ...]
    torchrun --nproc_per_node=4 -m positronic.vendors.lerobot.training.train ...     # DistributedDataParallel, 4 GPUs

Each step: take the batch, forward (under autocast on CUDA), backward, clip the gradient norm at 10, AdamW step
(LeRobot's ACT preset: lr 1e-5 for the backbone and the rest, weight decay 1e-4, no scheduler; ``--lr_schedule=cosine``
anneals both rates), log; every
``save_freq`` steps and at the last step, write ``<output_dir>/<exp_name>/checkpoints/<step:06d>/`` (see
``checkpoint``). ``--batch_size`` is per process: under torchrun the global batch is batch_size x processes, each
rank trains on its slice of it, and DDP averages the gradients.
"""

import dataclasses
import inspect
import json
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import configuronic as cfn
import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from positronic.command import DataError, UsageError, flag_defaults, run_command, writing_to
from positronic.vendors.lerobot.act import ACTConfig, ACTPolicy, ConfigError
from positronic.vendors.lerobot.act.backbone import BackboneWeightsError, unfreeze_batchnorm
from positronic.vendors.lerobot.act.config import ENV_STATE_KEY
from positronic.vendors.lerobot.act.normalize import (
    Normalizer,
    Processors,
    save_processors,
    stats_to_tensors,
    with_imagenet_stats,
)
from positronic.vendors.lerobot.codec import (
    ACTION,
    OBSERVATION_STATE,
    Codec,
    CodecMismatchError,
    channel_first,
)
from positronic.vendors.lerobot.codec_spec import CodecSpec, dataset_codec
from positronic.vendors.lerobot.device import DEVICE_AUTO
from positronic.vendors.lerobot.lerobot_dataset import (
    DatasetReader,
    FeatureSpecError,
    LeRobotDatasetError,
    NotADatasetError,
)
from positronic.vendors.lerobot.lerobot_dataset.format import STATS_PATH
from positronic.vendors.lerobot.training import augment
from positronic.vendors.lerobot.training.checkpoint import (
    PRETRAINED_DIR,
    TRAINING_STATE_DIR,
    CheckpointError,
    capture_rng_state,
    latest_step_dir,
    load_training_state,
    save_checkpoint,
    write_codec_record,
)
from positronic.vendors.lerobot.training.distributed import ProcessGroup
from positronic.vendors.lerobot.training.frame_cache import FrameCache, changed_files, file_stamps
from positronic.vendors.lerobot.training.lr_schedule import LR_SCHEDULES, LearningRate
from positronic.vendors.lerobot.training.precision import PRECISION_CHOICES, autocast_dtype, emulation_note
from positronic.vendors.lerobot.training.resident_batches import ResidentBatches, fits_on_device
from positronic.vendors.lerobot.training.train_log import (
    NonFiniteLossError,
    StepWindow,
    TrainingLog,
    WandbMissingError,
    start_wandb,
    wandb_module,
)
from positronic.vendors.lerobot.training.training_data import BatchStream, ChunkDataset, SampleOrder

PROG = 'positronic-lerobot-train'
GRAD_CLIP_NORM = 10.0
ADAMW_BETAS = (0.9, 0.999)
ADAMW_EPS = 1e-8
FUSED_ADAMW_DEVICES = ('cpu', 'cuda')
"""Devices with torch's fused AdamW kernel: the same update, one pass over the parameters (docs/training.md)."""
RUN_FILE = 'run.json'
"""What an experiment was started with; a resumed run must agree on the dataset, codec and policy."""
FRAME_CACHE_DIR = 'frame_cache'
DATASET_FILES = 'files'
"""run.json's record of the dataset's files (size, mtime_ns); a resume refuses a dataset changed since the start."""
TRAINER_SET_FIELDS = ('input_features', 'output_features', 'device', 'pretrained_path')
"""ACTConfig fields the trainer fills itself (from the dataset and the device), not settable with --policy."""
RESUME_MAY_CHANGE = ('batch_size', 'seed', 'world_size', 'precision', 'random_shift', 'state_noise', 'lr_schedule')
"""Settings a resumed run may change (with a note): they change the batches, numerics or step sizes, not which
parameters there are."""
COMPILE_CHOICES = ('auto', 'off', 'default', 'reduce-overhead', 'max-autotune', 'max-autotune-no-cudagraphs')
"""The values ``--compile`` accepts: off, auto, or a torch.compile mode."""
LOSS_PARTS = ('l1_loss', 'kld_loss')
"""The parts of the loss ACTPolicy.forward logs (kld_loss only with the VAE)."""


def act_fields(**fields: Any) -> dict[str, Any]:
    """ACTConfig fields (LeRobot 0.4.4's names and defaults) as ``--policy.<field>=value``."""
    return fields


policy_defaults = cfn.Config(
    act_fields, **{k: v for k, v in ACTConfig().to_dict().items() if k not in ('type', *TRAINER_SET_FIELDS)}
)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def policy_config(fields: Mapping[str, Any], reader: DatasetReader, device: torch.device) -> ACTConfig:
    """ACTConfig with ``fields`` and the dataset's features, classified as LeRobot does: cameras VISUAL (in
    info.json order), ``observation.environment_state`` ENV, other ``observation.*`` STATE, ``action`` ACTION."""
    inputs: dict[str, dict[str, Any]] = {}
    for name, feature in reader.features.items():
        if feature.is_video:
            inputs[name] = {'type': 'VISUAL', 'shape': channel_first(feature.shape)}
        elif name == ENV_STATE_KEY:
            inputs[name] = {'type': 'ENV', 'shape': list(feature.shape)}
        elif name.startswith('observation.'):
            inputs[name] = {'type': 'STATE', 'shape': list(feature.shape)}
    if ACTION not in reader.features:
        raise FeatureSpecError(
            f'dataset {reader.root} has no {ACTION!r} feature to learn; it has {list(reader.features)}'
        )
    outputs = {ACTION: {'type': 'ACTION', 'shape': list(reader.features[ACTION].shape)}}
    known = {f.name for f in dataclasses.fields(ACTConfig)} - set(TRAINER_SET_FIELDS)
    if unknown := sorted(set(fields) - known):
        raise ConfigError(f'--policy: unknown ACTConfig field(s) {unknown}; known: {sorted(known)}')
    config = ACTConfig(**fields, input_features=inputs, output_features=outputs, device=device.type)
    config.validate_features()
    return config


def make_processors(stats: Mapping[str, Any], config: ACTConfig) -> Processors:
    """The normalization ``save_processors`` writes for ``stats``, ready to apply to training batches."""
    tensors = stats_to_tensors(stats)
    norm_map = dict(config.normalization_mapping)
    return Processors(
        Normalizer({**config.input_features, **config.output_features}, norm_map, tensors),
        Normalizer(dict(config.output_features), norm_map, tensors),
    )


def run_record(reader: DatasetReader, codec: Codec, config: ACTConfig, **settings: Any) -> dict[str, Any]:
    policy = {k: v for k, v in config.to_dict().items() if k not in TRAINER_SET_FIELDS}
    dataset = {'root': str(reader.root), 'total_frames': reader.total_frames, DATASET_FILES: file_stamps(reader.root)}
    return {'dataset': dataset, 'codec': CodecSpec.of(codec).to_record(), 'policy': policy, **settings}


def check_resumable(experiment_dir: Path, record: Mapping[str, Any]) -> None:
    """Refuse to resume with another dataset, codec or policy than the experiment was started with; warn when the
    batch size, seed, process count or precision differ (the run continues, but not as an unbroken run would)."""
    path = experiment_dir / RUN_FILE
    saved = json.loads(path.read_text(encoding='utf-8')) if path.is_file() else {}
    _check_same_dataset_files(experiment_dir, saved.get('dataset', {}), record['dataset'])
    if saved.get('codec') is not None:  # a record written before the codec spec's version reads as its new form
        saved['codec'] = CodecSpec.from_record(saved['codec'], path).to_record()
    for key in ('dataset', 'codec', 'policy'):
        before, now = saved.get(key), json.loads(json.dumps(record[key]))
        if key == 'dataset' and before is not None:
            before, now = _without_files(before), _without_files(now)
        if before is not None and now != before:
            diff = {k: (before.get(k), now.get(k)) for k in set(before) | set(now) if before.get(k) != now.get(k)}
            raise ResumeRefusedError(
                f'--resume: this command trains with another {key} than {experiment_dir} was started with '
                f'(saved, now): {diff}; resume with the original settings or use a new --exp_name'
            )
    if saved.get('train_batchnorm', False) != record.get('train_batchnorm', False):
        raise ResumeRefusedError(
            f'--resume: {experiment_dir} was started with train_batchnorm={saved.get("train_batchnorm", False)}; '
            'resume with the same setting (it changes which parameters the optimizer holds)'
        )
    changed = [k for k in RESUME_MAY_CHANGE if k in saved and saved[k] != record[k]]
    if changed:
        print(f'note: resuming with a different {", ".join(changed)}; the run will differ from an unbroken one')


def _without_files(dataset: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dataset.items() if k != DATASET_FILES}


def _check_same_dataset_files(experiment_dir: Path, saved: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """Refuse to resume on a dataset whose files changed since the run started (run.json of older runs has none)."""
    if DATASET_FILES not in saved or saved.get('root') != now['root'] or saved[DATASET_FILES] == now[DATASET_FILES]:
        return
    raise ResumeRefusedError(
        f'--resume: dataset {now["root"]} changed since {experiment_dir} was started: '
        f'{changed_files(saved[DATASET_FILES], now[DATASET_FILES])}; resume only on the data the run started with, '
        'or train a new --exp_name'
    )


def open_experiment(experiment_dir: Path, resume: bool) -> Path | None:
    """The step directory to resume from (None for a fresh run); refuses an existing dir without ``resume``."""
    if not resume:
        if experiment_dir.exists():
            raise ExperimentExistsError(
                f'{experiment_dir} already exists; pass --resume=True to continue it, or choose a new --exp_name'
            )
        return None
    step_dir = latest_step_dir(experiment_dir) if experiment_dir.is_dir() else None
    if step_dir is None:
        raise ResumeRefusedError(f'--resume: {experiment_dir} has no checkpoint to resume from')
    return step_dir


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """One training run: each field is the ``positronic-lerobot-train`` flag of that name (documented once, in
    :func:`train`'s docstring, which ``--help`` prints). Checked on creation: UsageError names the first flag whose
    value cannot work, before anything is read or written."""

    input_path: str
    exp_name: str
    output_dir: str
    num_train_steps: int = 50_000
    save_freq: int = 10_000
    resume: bool = False
    codec: Codec | None = None
    batch_size: int = 8
    seed: int = 1000
    num_workers: int = 1
    log_freq: int = 200
    device: str | None = DEVICE_AUTO
    precision: str = 'auto'
    use_imagenet_stats: bool = True
    cache_dir: str | None = None
    train_batchnorm: bool = False
    random_shift: int = 0
    state_noise: float = 0.0
    lr_schedule: str = 'constant'
    data_on_device: bool | None = None
    compile: str = 'auto'
    channels_last: bool | None = None
    policy: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """ACTConfig fields; empty = LeRobot's defaults (the command line starts from ``policy_defaults``)."""

    def __post_init__(self) -> None:
        counts = {'num_train_steps': self.num_train_steps, 'save_freq': self.save_freq, 'batch_size': self.batch_size}
        for name, value in {**counts, 'log_freq': self.log_freq}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f'--{name} must be an integer >= 1, got {value!r}')
        for name, value in {'num_workers': self.num_workers, 'random_shift': self.random_shift}.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UsageError(f'--{name} must be an integer >= 0, got {value!r}')
        noise = self.state_noise
        if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < math.inf:
            raise UsageError(f'--state_noise must be a number >= 0 (standard deviations), got {noise!r}')
        if self.precision not in PRECISION_CHOICES:
            raise UsageError(f'--precision must be one of {", ".join(PRECISION_CHOICES)}, got {self.precision!r}')
        if self.lr_schedule not in LR_SCHEDULES:
            raise UsageError(f'--lr_schedule must be one of {", ".join(LR_SCHEDULES)}, got {self.lr_schedule!r}')
        if self.compile not in COMPILE_CHOICES:
            raise UsageError(f'--compile must be one of {", ".join(COMPILE_CHOICES)}, got {self.compile!r}')
        name = self.exp_name
        if not isinstance(name, str) or not name or Path(name).name != name or name in ('.', '..'):
            raise UsageError(f'--exp_name must be a plain folder name inside --output_dir, got {name!r}')

    @property
    def experiment_dir(self) -> Path:
        """``<output_dir>/<exp_name>``, absolute."""
        return Path(self.output_dir).expanduser().absolute() / self.exp_name

    @property
    def cache_root(self) -> Path:
        """Where decoded frames are kept: ``--cache_dir``, else ``<output_dir>/frame_cache``."""
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(self.output_dir).expanduser() / FRAME_CACHE_DIR


def _flags_of(settings_type: type) -> Callable[[Callable[..., Path]], Callable[..., Path]]:
    """Give a ``**settings`` command the signature of ``settings_type``: configuronic reads its flags from it."""

    def mark(command: Callable[..., Path]) -> Callable[..., Path]:
        command.__signature__ = inspect.signature(settings_type).replace(return_annotation=Path)
        return command

    return mark


@cfn.config(**{**flag_defaults(TrainSettings), 'policy': policy_defaults})
@_flags_of(TrainSettings)
def train(**settings: Any) -> Path:
    """Train ACT on the LeRobot dataset at ``input_path``; checkpoints go to ``<output_dir>/<exp_name>/checkpoints``.

    codec: default = the codec the dataset records (eepose_absolute when none); it must match the dataset. A
    recorded codec of your own is not imported from the file: name it here (--codec=@my_robot.codecs.joints_wrist).
    batch_size: per process. num_workers: threads preparing the next batches (0 = in the training thread).
    device: auto (cuda, else mps, else cpu), cpu, cuda, cuda:<index> or mps. precision: auto (bf16 or fp16 autocast
    on CUDA, fp32 elsewhere), fp32, bf16 or fp16 (on a CPU fast only with its kernels, e.g. AVX512: a note says
    when they are emulated). cache_dir: where decoded frames are kept (default <output_dir>/frame_cache).
    train_batchnorm: train the backbone's batch norm (batch statistics, learned affine terms) instead of keeping it
    frozen as LeRobot does; for a backbone trained from scratch. Checkpoints keep LeRobot's keys and meaning.
    random_shift: shift each training image by up to this many pixels (edges repeated; 0 = off).
    state_noise: add Gaussian noise of this standard deviation, in units of each dimension's standard deviation over
    the dataset, to the robot state the model sees while training (0 = off; the actions stay clean).
    lr_schedule: constant (LeRobot's ACT preset) or cosine: every rate (--policy.optimizer_lr, _backbone) annealed
    from its value at step 1 to near zero at --num_train_steps along half a cosine.
    data_on_device: keep the frame cache in the device's memory and build batches there (default: on CUDA when it
    fits in half the free memory). compile: torch.compile mode of the step (default, reduce-overhead,
    max-autotune, max-autotune-no-cudagraphs) or off; auto = default on CUDA, off elsewhere. channels_last:
    channels-last convolutions (default: on CUDA).
    policy: ACTConfig fields, e.g. --policy.chunk_size=50 --policy.pretrained_backbone_weights=None.
    """
    return run_training(TrainSettings(**settings))


def run_training(settings: TrainSettings) -> Path:
    """Train as ``settings`` say, as this process's part of the ``torchrun`` group; returns the experiment dir."""
    group = ProcessGroup.start(settings.device)
    try:
        return _train(settings, group)
    finally:
        group.close()


@dataclasses.dataclass(frozen=True)
class Run:
    """What the dataset and the experiment directory fix before a model exists."""

    reader: DatasetReader
    codec: Codec
    config: ACTConfig
    directory: Path
    record: dict[str, Any]
    """run.json: what the experiment is trained with (a resume must agree)."""
    resume_from: Path | None
    """The step directory to resume from; None for a fresh run."""


def open_run(settings: TrainSettings, world_size: int, device: torch.device) -> Run:
    """Read the dataset, fix the codec and the policy config, and check the experiment directory (new, or resumable
    with the same dataset, codec and policy); nothing is written."""
    reader = DatasetReader(Path(settings.input_path).expanduser())
    if reader.stats is None:
        raise NotADatasetError(f'{reader.root / STATS_PATH} is missing: training normalizes with it')
    codec = dataset_codec(reader.root, settings.codec)
    config = policy_config(settings.policy, reader, device)
    resume_from = open_experiment(settings.experiment_dir, settings.resume)
    record = run_record(
        reader,
        codec,
        config,
        batch_size=settings.batch_size,
        seed=settings.seed,
        world_size=world_size,
        precision=settings.precision,
        train_batchnorm=settings.train_batchnorm,
        random_shift=settings.random_shift,
        state_noise=settings.state_noise,
        lr_schedule=settings.lr_schedule,
    )
    if resume_from is not None:
        check_resumable(settings.experiment_dir, record)
    return Run(reader, codec, config, settings.experiment_dir, record, resume_from)


def load_samples(
    settings: TrainSettings, run: Run, group: ProcessGroup
) -> tuple[ChunkDataset, Mapping[str, Any], Processors]:
    """The training samples (frames decoded once into the cache, by local rank 0), the normalization statistics
    and the processors that apply them."""
    cache = FrameCache.open_or_build(run.reader, settings.cache_root) if group.local_rank == 0 else None
    group.barrier()
    cache = cache or FrameCache.open_or_build(run.reader, settings.cache_root)
    config = run.config
    observation_keys = [k for k, f in config.input_features.items() if f.type.value in ('STATE', 'ENV')]
    data = ChunkDataset(run.reader, cache, config.chunk_size, observation_keys)
    stats = run.reader.stats
    if settings.use_imagenet_stats:
        stats = with_imagenet_stats(stats, list(config.image_features))
    return data, stats, make_processors(stats, config)


def build_model(settings: TrainSettings, run: Run, device: torch.device, channels_last: bool) -> ACTPolicy:
    """The policy to train (seeded by ``--seed``): new, or the weights of the checkpoint resumed; in train mode."""
    seed_everything(settings.seed)
    if run.resume_from is None:
        model = ACTPolicy(run.config).to(device)
    else:
        model = ACTPolicy.from_pretrained(run.resume_from / PRETRAINED_DIR, device=device, config=run.config)
    if settings.train_batchnorm:
        unfreeze_batchnorm(model.model.backbone)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model.train()


def make_optimizer(model: ACTPolicy, config: ACTConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with LeRobot's ACT preset (the backbone's own learning rate, no scheduler); fused where torch has it."""
    return torch.optim.AdamW(
        model.get_optim_params(),
        lr=config.optimizer_lr,
        betas=ADAMW_BETAS,
        eps=ADAMW_EPS,
        weight_decay=config.optimizer_weight_decay,
        fused=device.type in FUSED_ADAMW_DEVICES,
    )


def restore_or_seed(settings: TrainSettings, run: Run, optimizer: torch.optim.Optimizer, rank: int) -> int:
    """The last step done: 0 for a fresh run (then each rank seeds its own dropout and latent noise), else the
    resumed checkpoint's, with its optimizer state and random generators restored."""
    if run.resume_from is None:
        seed_everything(settings.seed + rank)
        return 0
    step = load_training_state(run.resume_from / TRAINING_STATE_DIR, optimizer, rank=rank)
    _match_state_layout(optimizer)
    return step


def make_step(
    settings: TrainSettings, model: ACTPolicy, optimizer: torch.optim.Optimizer, group: ProcessGroup
) -> tuple['CompiledStep', list[str]]:
    """The training step (autocast at ``--precision``, DDP across the group, compiled per ``--compile``) and the
    names of the loss terms it returns before the gradient norm."""
    device = group.device
    amp_dtype = autocast_dtype(settings.precision, device)
    note = emulation_note(device, amp_dtype, '--precision')
    if note is not None and group.is_main:
        print(note, flush=True)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    terms = LossTerms(model)
    forward = terms
    if group.is_distributed:
        forward = DistributedDataParallel(terms, device_ids=[device.index] if device.type == 'cuda' else None)
    step = CompiledStep(forward, model, optimizer, scaler, autocast, _compile_mode(settings.compile, device))
    return step, terms.names


def make_batches(
    settings: TrainSettings,
    data: ChunkDataset,
    processors: Processors,
    start_step: int,
    on_device: bool,
    group: ProcessGroup,
) -> ResidentBatches | BatchStream:
    """The normalized batches of steps ``start_step + 1 ..``: built in device memory, or by host threads."""
    order = SampleOrder(settings.batch_size, settings.seed, group.rank, group.world_size)
    device, steps = group.device, settings.num_train_steps
    if on_device:
        return ResidentBatches(data, device, start_step, steps, order, transform=processors.normalize)
    return BatchStream.for_training(
        data,
        start_step,
        steps,
        order,
        transform=processors.normalize,
        num_workers=settings.num_workers,
        pin_memory=device.type == 'cuda',
    )


def on_device_batch(
    batch: dict[str, torch.Tensor],
    settings: TrainSettings,
    group: ProcessGroup,
    step: int,
    image_keys: list[str],
    channels_last: bool,
) -> dict[str, torch.Tensor]:
    """``batch`` on the device, its images shifted by ``--random_shift`` and its robot state noised by
    ``--state_noise`` (seeded by seed, rank and step; images first, so a shift draws what it did without noise), the
    images laid out channels-last when asked."""
    device = group.device
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    shift, noise = settings.random_shift, settings.state_noise
    generator = augment.step_generator(device, settings.seed, group.rank, step) if shift or noise else None
    for key in image_keys:
        if shift:
            batch[key] = augment.random_shift(batch[key], shift, generator)
        if channels_last:
            batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
    if noise and OBSERVATION_STATE in batch:
        batch[OBSERVATION_STATE] = augment.state_noise(batch[OBSERVATION_STATE], noise, generator)
    return batch


def pretrained_writer(
    model: ACTPolicy, stats: Mapping[str, Any], run: Run, device: torch.device
) -> Callable[[Path], None]:
    """What writes a checkpoint's ``pretrained_model`` directory: weights, processors and the codec record."""
    config, codec = run.config, run.codec

    def write_pretrained(directory: Path) -> None:
        model.save_pretrained(directory)
        save_processors(directory, stats, config, device=device.type)
        write_codec_record(directory, codec)

    return write_pretrained


def open_log(settings: TrainSettings, run: Run, start_step: int, group: ProcessGroup, wandb) -> TrainingLog:
    """The log of the steps to come (written by the main process), sent to W&B too when ``wandb`` is given."""
    wandb_run = None
    if wandb is not None:
        config = {**run.record, 'dataset': _without_files(run.record['dataset'])}  # W&B config: no per-file stamps
        wandb_run = start_wandb(wandb, run.directory, settings.exp_name, config, settings.resume)
    steps, log_freq = settings.num_train_steps, settings.log_freq
    return TrainingLog(run.directory, start_step, steps, log_freq, enabled=group.is_main, wandb_run=wandb_run)


def _train(settings: TrainSettings, group: ProcessGroup) -> Path:
    """Set the run up, then loop: get a batch, step (forward, backward, clip, AdamW), log, checkpoint."""
    device = group.device
    wandb = wandb_module() if group.is_main else None
    run = open_run(settings, group.world_size, device)
    data, stats, processors = load_samples(settings, run, group)
    channels_last = device.type == 'cuda' if settings.channels_last is None else settings.channels_last
    model = build_model(settings, run, device, channels_last)
    on_device = fits_on_device(data, device) if settings.data_on_device is None else settings.data_on_device
    optimizer = make_optimizer(model, run.config, device)
    learning_rate = LearningRate(optimizer, settings.lr_schedule, settings.num_train_steps)
    start_step = restore_or_seed(settings, run, optimizer, group.rank)
    group.barrier()  # every rank has checked the directory and built its model before rank 0 creates it
    if group.is_main:
        run.directory.mkdir(parents=True, exist_ok=settings.resume)
        (run.directory / RUN_FILE).write_text(json.dumps(run.record, indent=2), encoding='utf-8')
    if start_step >= settings.num_train_steps:
        print(f'{run.directory} is already at step {start_step} >= --num_train_steps={settings.num_train_steps}')
        return run.directory

    step_fn, loss_names = make_step(settings, model, optimizer, group)
    write_pretrained = pretrained_writer(model, stats, run, device)
    stream = make_batches(settings, data, processors, start_step, on_device, group)
    image_keys = list(run.config.image_features)
    log = open_log(settings, run, start_step, group, wandb)
    window = StepWindow([*loss_names, 'grad_norm'], group, settings.batch_size * group.world_size)
    batches = iter(stream)
    try:
        for step in range(start_step + 1, settings.num_train_steps + 1):
            tick = time.perf_counter()
            batch = next(batches)
            data_s = time.perf_counter() - tick
            batch = on_device_batch(batch, settings, group, step, image_keys, channels_last)
            learning_rate.set_for(step)
            window.add(step, step_fn(batch), data_s, {'lr': optimizer.param_groups[0]['lr']})
            log.advance()
            saving = step % settings.save_freq == 0 or step == settings.num_train_steps
            if saving or step % settings.log_freq == 0:
                log.record(window.read())
            if saving:
                rng_states = group.gather(capture_rng_state())
                if group.is_main:
                    with writing_to(Path(settings.output_dir), 'output_dir'):
                        saved = save_checkpoint(run.directory, step, write_pretrained, optimizer, None, rng_states)
                    log.checkpoint(saved)
                group.barrier()
                window.restart()
    finally:
        stream.close()
        log.close()
    return run.directory


class ExperimentExistsError(DataError):
    """The experiment directory exists and ``--resume`` was not given."""


class ResumeRefusedError(DataError):
    """``--resume`` cannot continue the experiment: no checkpoint, or another dataset, codec or policy."""


class LossTerms(torch.nn.Module):
    """The policy's training loss and its parts as one tensor ``[loss, l1_loss(, kld_loss)]``: the module that
    DistributedDataParallel and torch.compile wrap (the policy's own ``forward`` reads its logs on the host)."""

    def __init__(self, policy: ACTPolicy):
        super().__init__()
        self.policy = policy
        self.names = ['loss', *(k for k in LOSS_PARTS if k != 'kld_loss' or policy.config.use_vae)]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = self.policy.loss_terms(batch)
        return torch.stack([terms[name] for name in self.names])


def train_step(forward, model, optimizer, scaler, autocast, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """One optimizer step (forward, backward, clip at ``GRAD_CLIP_NORM``, AdamW); returns ``[*losses, grad_norm]``
    as a float32 tensor on the device, read by no one here (no host sync)."""
    with autocast:
        terms = forward(batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(terms[0]).backward()
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP_NORM)
    scaler.step(optimizer)
    scaler.update()
    return torch.cat([terms.detach().float(), grad_norm.detach().float().reshape(1)])


class CompiledStep:
    """:func:`train_step` with ``forward`` compiled by ``torch.compile(mode=mode)`` (``None``: eager). When the
    first compiled step fails (no compiler, an unsupported op), it says so in one line and continues eagerly."""

    def __init__(self, forward, model, optimizer, scaler, autocast, mode: str | None):
        self._parts = (model, optimizer, scaler, autocast)
        self._optimizer = optimizer
        self._eager = forward
        self._forward = forward if mode is None else torch.compile(forward, mode=mode)
        self._proven = mode is None

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._proven:
            return train_step(self._forward, *self._parts, batch)
        try:
            out = train_step(self._forward, *self._parts, batch)
        except Exception as e:  # any failure to compile falls back; a real error recurs eagerly
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            print(f'note: torch.compile failed on the first step ({type(e).__name__}: {first}); training eagerly')
            self._forward = self._eager
            self._optimizer.zero_grad(set_to_none=True)
            out = train_step(self._forward, *self._parts, batch)
        self._proven = True
        return out


def _compile_mode(choice: str, device: torch.device) -> str | None:
    if choice == 'auto':
        return 'default' if device.type == 'cuda' else None
    return None if choice == 'off' else choice


def _match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Give loaded optimizer moments their parameter's memory layout (channels-last weights, contiguous files)."""
    for param, state in optimizer.state.items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)


USAGE_ERRORS = (ConfigError, BackboneWeightsError)
"""Errors of the --policy settings: exit code 2 (UsageError itself is always one)."""
DATA_ERRORS = (LeRobotDatasetError, CodecMismatchError, CheckpointError, NonFiniteLossError, WandbMissingError)
"""Errors of the dataset, the experiment directory or the run: exit code 1 (DataError itself is always one)."""


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``positronic-lerobot-train``; ``argv`` replaces the command line (for tests)."""
    run_command(PROG, train, argv, usage_errors=USAGE_ERRORS, data_errors=DATA_ERRORS)


if __name__ == '__main__':
    main()
