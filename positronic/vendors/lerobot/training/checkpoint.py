"""Training checkpoints in LeRobot 0.4.4's layout (spec B.6), written atomically.

    <output_dir>/<exp_name>/checkpoints/
        000500/pretrained_model/   config.json, model.safetensors, processor files, positronic_codec.json
        000500/training_state/     optimizer_param_groups.json, optimizer_state.safetensors, rng_state.safetensors,
                                   training_step.json (+ scheduler_state.json when a scheduler exists)
        last -> 000500             relative symlink to the newest step

A step directory is built under a hidden temporary name (``.tmp-<step>-<pid>``) and renamed into place, then
``last`` is swapped with ``os.replace``; a crash leaves either the previous checkpoint set or the new one, never a
half-written step. What a killed save left (a ``.tmp-*-<pid>`` entry whose process is gone) is removed by the next
save into the same folder; an entry of a live process is never touched.

``positronic_codec.json`` beside config.json is the record of the codec the model was trained with (its name and
image size, see ``codec_spec``; LeRobot ignores the file), so a server can rebuild the codec and refuse a
mismatched one.
"""

import json
import os
import random
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch

from positronic.host import interrupted_writes
from positronic.vendors.lerobot.codec import Codec
from positronic.vendors.lerobot.codec_spec import CodecSpec

CHECKPOINTS_DIR = 'checkpoints'
PRETRAINED_DIR = 'pretrained_model'
TRAINING_STATE_DIR = 'training_state'
LAST_LINK = 'last'
CODEC_FILE = 'positronic_codec.json'

OPTIMIZER_PARAM_GROUPS_FILE = 'optimizer_param_groups.json'
OPTIMIZER_STATE_FILE = 'optimizer_state.safetensors'
SCHEDULER_STATE_FILE = 'scheduler_state.json'
RNG_STATE_FILE = 'rng_state.safetensors'
TRAINING_STEP_FILE = 'training_step.json'

STEP_DIGITS = 6
_TMP_PREFIX = '.tmp-'

RngState = dict[str, torch.Tensor]
"""Random generator states as flat tensors (spec B.6 ``rng_state.safetensors`` keys)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, malformed, not an ACT policy, or not fitting the model resumed."""


class CheckpointNotFoundError(CheckpointError, LookupError):
    """No checkpoint matches what was asked for (or the experiment has none); a server answers "no such model"."""


def step_dir_name(step: int) -> str:
    """``'000500'`` for step 500 (at least six digits, as LeRobot names them)."""
    if step < 0:
        raise ValueError(f'step must be >= 0, got {step}')
    return f'{step:0{STEP_DIGITS}d}'


def _step_of(name: str) -> int | None:
    return int(name) if name.isdigit() else None


def list_checkpoints(path: str | Path) -> dict[int, Path]:
    """Step -> ``pretrained_model`` directory, sorted by step.

    ``path`` may be an experiment directory (``<output_dir>/<exp_name>``), its ``checkpoints/`` directory, or one
    step directory (``checkpoints/000500`` or ``checkpoints/last``). Raises FileNotFoundError when ``path`` does not
    exist; an experiment without checkpoints gives ``{}``. A ``pretrained_model`` directory itself is accepted too.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f'checkpoint path {path} does not exist or is not a directory')
    if path.name == PRETRAINED_DIR:
        path = path.parent
    if (path / PRETRAINED_DIR).is_dir():
        step = _step_of(path.resolve().name)
        if step is None:
            raise CheckpointError(f'{path}: a checkpoint step directory must be named by its step, like 000500')
        return {step: path / PRETRAINED_DIR}
    if (path / CHECKPOINTS_DIR).is_dir():
        path = path / CHECKPOINTS_DIR
    found = {}
    for child in path.iterdir():
        step = _step_of(child.name)
        if step is not None and not child.is_symlink() and (child / PRETRAINED_DIR).is_dir():
            found[step] = child / PRETRAINED_DIR
    return dict(sorted(found.items()))


def write_codec_record(pretrained_dir: Path, codec: Codec) -> None:
    """Write ``positronic_codec.json`` = the record of ``codec``'s spec (``CodecSpec.to_record``)."""
    _write_json(Path(pretrained_dir) / CODEC_FILE, CodecSpec.of(codec).to_record())


def read_codec_record(pretrained_dir: Path) -> Any:
    """The codec record of a checkpoint as stored (read it with ``CodecSpec.from_record``), or None when it has
    none (a checkpoint written by LeRobot)."""
    path = Path(pretrained_dir) / CODEC_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except json.JSONDecodeError as e:
        raise CheckpointError(f'{path} is not valid JSON: {e}') from e


def _write_json(path: Path, content: Any, indent: int = 4) -> None:
    tmp = path.with_name(f'.{path.name}.tmp')
    tmp.write_text(json.dumps(content, indent=indent), encoding='utf-8')
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------------- RNG states


def capture_rng_state() -> RngState:
    """Python, numpy, torch (and the current CUDA device's) generator states, keyed as LeRobot saves them."""
    version, py_state, _ = random.getstate()
    _, np_values, np_index, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        'py_rng_version': torch.tensor([version], dtype=torch.int64),
        'py_rng_state': torch.tensor(py_state, dtype=torch.int64),
        'np_rng_state_values': torch.tensor(np_values.astype(np.int64), dtype=torch.int64),
        'np_rng_state_index': torch.tensor([np_index], dtype=torch.int64),
        'np_rng_has_gauss': torch.tensor([np_has_gauss], dtype=torch.int64),
        'np_rng_cached_gaussian': torch.tensor([np_gauss], dtype=torch.float32),
        'torch_rng_state': torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['torch_cuda_rng_state'] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: Mapping[str, torch.Tensor]) -> None:
    """Set the generators captured by :func:`capture_rng_state`."""
    py_state = tuple(int(v) for v in state['py_rng_state'].tolist())
    random.setstate((int(state['py_rng_version'].item()), py_state, None))
    np.random.set_state(
        (
            'MT19937',
            state['np_rng_state_values'].numpy().astype(np.uint32),
            int(state['np_rng_state_index'].item()),
            int(state['np_rng_has_gauss'].item()),
            float(state['np_rng_cached_gaussian'].item()),
        )
    )
    torch.set_rng_state(state['torch_rng_state'])
    if 'torch_cuda_rng_state' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['torch_cuda_rng_state'])


def rng_state_file(rank: int) -> str:
    """``rng_state.safetensors`` for rank 0 (LeRobot's name); ``rng_state_rank<r>.safetensors`` for other ranks."""
    return RNG_STATE_FILE if rank == 0 else f'rng_state_rank{rank}.safetensors'


# ---------------------------------------------------------------------------------------------- optimizer state


def _flatten_optimizer_state(state: Mapping[int, Mapping[str, Any]]) -> dict[str, torch.Tensor]:
    flat = {}
    for index, values in state.items():
        for name, value in values.items():
            tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            flat[f'state/{index}/{name}'] = tensor.detach().cpu().contiguous()
    return flat


def _unflatten_optimizer_state(flat: Mapping[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in flat.items():
        _, index, name = key.split('/', 2)
        state.setdefault(int(index), {})[name] = tensor
    return state


def _param_groups_for_json(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    groups = optimizer.state_dict()['param_groups']
    return [{k: list(v) if isinstance(v, tuple) else v for k, v in group.items()} for group in groups]


def _check_param_groups(saved: list[dict[str, Any]], live: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """The saved groups with tuples restored where the live optimizer has them; CheckpointError on any misfit."""
    if len(saved) != len(live):
        raise CheckpointError(f'{path}: {len(saved)} parameter groups saved, the optimizer has {len(live)}')
    restored = []
    for i, (s, current) in enumerate(zip(saved, live, strict=True)):
        if set(s) != set(current):
            raise CheckpointError(
                f'{path}: parameter group {i} has keys {sorted(s)}, the optimizer has {sorted(current)} '
                '(saved with another torch version?)'
            )
        if len(s['params']) != len(current['params']):
            raise CheckpointError(
                f'{path}: parameter group {i} holds {len(s["params"])} tensors, the model has {len(current["params"])}'
            )
        restored.append({k: tuple(v) if isinstance(current[k], tuple) else v for k, v in s.items()})
    return restored


# ------------------------------------------------------------------------------------------------ training state


def save_training_state(
    directory: Path,
    step: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    rng_states: Sequence[RngState] | None = None,
) -> None:
    """Write ``training_state/`` files into ``directory``; ``rng_states`` holds one state per rank (default: this
    process's generators as rank 0)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = optimizer.state_dict()
    safetensors.torch.save_file(_flatten_optimizer_state(state['state']), directory / OPTIMIZER_STATE_FILE)
    _write_json(directory / OPTIMIZER_PARAM_GROUPS_FILE, _param_groups_for_json(optimizer))
    if scheduler is not None:
        _write_json(directory / SCHEDULER_STATE_FILE, scheduler.state_dict())
    for rank, rng in enumerate(rng_states if rng_states is not None else [capture_rng_state()]):
        safetensors.torch.save_file(dict(rng), directory / rng_state_file(rank))
    _write_json(directory / TRAINING_STEP_FILE, {'step': step})


def load_training_state(
    directory: Path, optimizer: torch.optim.Optimizer, scheduler: Any | None = None, rank: int = 0
) -> int:
    """Restore the optimizer (and scheduler) state and this rank's generators from ``training_state/``; returns the
    step the checkpoint was taken at. Rank r > 0 falls back to rank 0's generators when the checkpoint has none
    of its own (a checkpoint written by a run with fewer processes)."""
    directory = Path(directory)
    for name in (OPTIMIZER_STATE_FILE, OPTIMIZER_PARAM_GROUPS_FILE, RNG_STATE_FILE, TRAINING_STEP_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f'{directory}: missing {name}; not a training_state directory')
    groups_path = directory / OPTIMIZER_PARAM_GROUPS_FILE
    saved_groups = json.loads(groups_path.read_text(encoding='utf-8'))
    groups = _check_param_groups(saved_groups, optimizer.state_dict()['param_groups'], groups_path)
    flat = safetensors.torch.load_file(directory / OPTIMIZER_STATE_FILE)
    optimizer.load_state_dict({'state': _unflatten_optimizer_state(flat), 'param_groups': groups})
    if scheduler is not None:
        path = directory / SCHEDULER_STATE_FILE
        if not path.is_file():
            raise CheckpointError(f'{directory}: missing {SCHEDULER_STATE_FILE} for the scheduler being resumed')
        scheduler.load_state_dict(json.loads(path.read_text(encoding='utf-8')))
    rng_path = directory / rng_state_file(rank)
    restore_rng_state(safetensors.torch.load_file(rng_path if rng_path.is_file() else directory / RNG_STATE_FILE))
    step = json.loads((directory / TRAINING_STEP_FILE).read_text(encoding='utf-8')).get('step')
    if not isinstance(step, int):
        raise CheckpointError(f'{directory / TRAINING_STEP_FILE}: expected {{"step": <int>}}, got step={step!r}')
    return step


# ------------------------------------------------------------------------------------------------- whole checkpoints


def checkpoints_dir(experiment_dir: Path) -> Path:
    return Path(experiment_dir) / CHECKPOINTS_DIR


def save_checkpoint(
    experiment_dir: Path,
    step: int,
    write_pretrained: Callable[[Path], None],
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    rng_states: Sequence[RngState] | None = None,
) -> Path:
    """Write ``checkpoints/<step>/{pretrained_model,training_state}`` atomically and point ``last`` at it.

    ``write_pretrained(directory)`` fills ``pretrained_model/`` (model, processors, codec record). Returns the
    step directory. Raises CheckpointError when that step already has a checkpoint.
    """
    root = checkpoints_dir(experiment_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_dir_name(step)
    if final.exists():
        raise CheckpointError(f'{final} already exists; refusing to overwrite a checkpoint')
    remove_stale_tmp(root)
    tmp = root / f'{_TMP_PREFIX}{step_dir_name(step)}-{os.getpid()}'
    try:
        (tmp / PRETRAINED_DIR).mkdir(parents=True)
        write_pretrained(tmp / PRETRAINED_DIR)
        save_training_state(tmp / TRAINING_STATE_DIR, step, optimizer, scheduler, rng_states)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _point_last_at(root, final.name)
    return final


def remove_stale_tmp(root: Path) -> list[str]:
    """Remove the ``.tmp-*-<pid>`` entries under ``root`` left by saves of processes that are gone (or by this one),
    saying so in one line; returns their names."""
    removed = []
    for entry in interrupted_writes(root, _TMP_PREFIX):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
    if removed:
        print(f'removed what interrupted checkpoint saves left in {root}: {", ".join(removed)}')
    return removed


def _point_last_at(root: Path, name: str) -> None:
    tmp_link = root / f'{_TMP_PREFIX}{LAST_LINK}-{os.getpid()}'
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(name, tmp_link)
    os.replace(tmp_link, root / LAST_LINK)


def latest_step_dir(experiment_dir: Path) -> Path | None:
    """The newest complete step directory of an experiment, or None when it has no checkpoint."""
    root = checkpoints_dir(experiment_dir)
    if not root.is_dir():
        return None
    found = list_checkpoints(root)
    return found[max(found)].parent if found else None
