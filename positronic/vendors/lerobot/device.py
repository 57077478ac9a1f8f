"""The torch device a command runs on: ``--device`` of training and serving, ``--policy.device`` of ``--policy=.act``.

``auto`` is CUDA when this machine has it (under ``torchrun``, the process's own GPU), else MPS, else the CPU.
"""

import torch

from positronic.command import UsageError

DEVICE_AUTO = 'auto'
DEVICE_FLAG = '--device'
DEVICE_CHOICES = 'auto, cpu, cuda, cuda:<index> or mps'
"""The values a device flag accepts, as its errors list them."""


def resolve_device(
    requested: str | torch.device | None = DEVICE_AUTO, *, local_rank: int | None = None, flag: str = DEVICE_FLAG
) -> torch.device:
    """The device ``requested`` names, checked to exist on this machine; ``auto`` (or None) picks the first available
    of CUDA (GPU ``local_rank`` when given, else the current one), MPS and CPU.

    Raises UsageError naming ``flag`` and the value for an unknown device or one this machine does not have.
    """
    if requested is None or str(requested) == DEVICE_AUTO:
        if torch.cuda.is_available():
            return torch.device('cuda', local_rank)
        if torch.backends.mps.is_available():
            return torch.device('mps')
        return torch.device('cpu')
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError) as e:
        raise UsageError(f'{flag}={requested!r} is not a device; expected {DEVICE_CHOICES}') from e
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UsageError(f'{flag}={requested}: CUDA is not available on this machine; use {flag}=cpu')
    if device.type == 'cuda' and device.index is not None and device.index >= torch.cuda.device_count():
        raise UsageError(f'{flag}={requested}: this machine has {torch.cuda.device_count()} CUDA device(s)')
    if device.type == 'mps' and not torch.backends.mps.is_available():
        raise UsageError(f'{flag}={requested}: MPS is not available on this machine; use {flag}=cpu')
    return device
