"""Training throughput of our trainer alone, one row per configuration: the part of ``bench_train.py --throughput``
meant for a GPU (it runs unchanged on a CPU with ``--quick``).

Each configuration trains ``2 x steps`` steps with ``log_freq=steps``: the first window (compilation, the upload of
the frames, warm-up) is left out and the second is timed from the trainer's own metrics (one host sync per window,
as in a real run). The fraction of peak is ``samples/s x FLOP per sample / peak``, with the FLOP of one forward and
backward counted by ``torch.utils.flop_counter`` (matmuls and convolutions). Time to first step is the wall time of
a one-step run on a fresh ``--episodes``-episode dataset: frame-cache build, upload, model build, compilation, the
step and its checkpoint.
"""

import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from positronic.vendors.lerobot.act import ACTPolicy
from positronic.vendors.lerobot.training.train import policy_config, train
from positronic.vendors.lerobot.training.train_log import read_metrics

RECIPE = {
    'policy.dim_model': 256,
    'policy.chunk_size': 20,
    'policy.n_action_steps': 20,
    'policy.use_vae': False,
    'policy.dropout': 0.0,
}
"""The stacking recipe's model (docs/results.md): the 96 px rows."""
DEFAULT_ACT: dict = {}
"""LeRobot's default ACT (dim 512, chunk 100, VAE): the 480 px rows."""


@dataclass(frozen=True)
class Config:
    size: int
    batch: int
    model: str  # 'recipe' or 'default'
    compile: str = 'off'
    data_on_device: bool | None = None
    channels_last: bool | None = None
    train_batchnorm: bool = field(default=False)

    @property
    def label(self) -> str:
        data = {True: 'frames on device', False: 'host stream', None: 'auto data'}[self.data_on_device]
        layout = {True: 'NHWC', False: 'NCHW', None: 'auto layout'}[self.channels_last]
        return f'{self.model} b{self.batch} compile={self.compile}, {data}, {layout}'

    def policy(self) -> dict:
        return {**(RECIPE if self.model == 'recipe' else DEFAULT_ACT), 'policy.pretrained_backbone_weights': None}

    def trainer_settings(self, precision: str) -> dict:
        """The trainer's keyword arguments for this configuration (all but paths and step counts)."""
        return {
            'batch_size': self.batch,
            'precision': precision,
            'compile': self.compile,
            'data_on_device': self.data_on_device,
            'channels_last': self.channels_last,
            'train_batchnorm': self.train_batchnorm,
            **self.policy(),
        }


def grid(quick: bool) -> list[Config]:
    """The configurations: today's baseline, then each speed-up added, at 96 px; LeRobot's default ACT at 480 px."""
    if quick:
        return [
            Config(32, 4, 'recipe', data_on_device=False),
            Config(32, 4, 'recipe', data_on_device=True, channels_last=True),
        ]
    return [
        Config(96, 64, 'recipe', data_on_device=False, channels_last=False, train_batchnorm=True),
        Config(96, 256, 'recipe', data_on_device=True, channels_last=True, train_batchnorm=True),
        Config(96, 256, 'recipe', 'default', data_on_device=True, channels_last=True, train_batchnorm=True),
        Config(96, 256, 'recipe', 'max-autotune-no-cudagraphs', True, True, train_batchnorm=True),
        Config(96, 512, 'recipe', 'default', data_on_device=True, channels_last=True, train_batchnorm=True),
        Config(480, 8, 'default', 'default', data_on_device=True, channels_last=True),
        Config(480, 64, 'default', 'default', data_on_device=True, channels_last=True),
    ]


def flop_per_sample(dataset: Path, config: Config, device: torch.device) -> float:
    """FLOP of one training forward and backward per sample (counted on a batch of 2)."""
    from positronic.vendors.lerobot.lerobot_dataset import DatasetReader

    reader = DatasetReader(dataset)
    fields = {k.removeprefix('policy.'): v for k, v in config.policy().items()}
    act = policy_config(fields, reader, device)
    policy = ACTPolicy(act).to(device).train()
    batch = {key: torch.randn(2, *feature.shape, device=device) for key, feature in act.input_features.items()}
    batch['action'] = torch.randn(2, act.chunk_size, act.output_features['action'].shape[0], device=device)
    batch['action_is_pad'] = torch.zeros(2, act.chunk_size, dtype=torch.bool, device=device)
    with FlopCounterMode(display=False) as counter:
        loss, _ = policy.forward(batch)
        loss.backward()
    return counter.get_total_flops() / 2


def measure(dataset: Path, output: Path, config: Config, steps: int, precision: str) -> dict:
    """samples/s of the timed window (the rows of the second log window), or the error that stopped the run."""
    name = (
        f'{config.size}_{config.batch}_{config.model}_{config.compile}_{config.data_on_device}_{config.channels_last}'
    )
    try:
        experiment = train(
            input_path=str(dataset),
            exp_name=name,
            output_dir=str(output),
            num_train_steps=2 * steps,
            save_freq=10**9,
            log_freq=steps,
            **config.trainer_settings(precision),
        )
    except torch.OutOfMemoryError:
        return {'error': 'out of memory'}
    rows = [r for r in read_metrics(experiment) if r['step'] > steps]
    return {'samples_per_s': rows[-1]['samples_per_s'], 'step_ms': 1000 * rows[-1]['step_s']}


def time_to_first_step(dataset: Path, output: Path, config: Config, precision: str) -> float:
    start = time.perf_counter()
    train(
        input_path=str(dataset),
        exp_name='first_step',
        output_dir=str(output),
        num_train_steps=1,
        save_freq=1,
        **config.trainer_settings(precision),
    )
    return time.perf_counter() - start
