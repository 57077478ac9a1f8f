"""The ``--precision`` values and their autocast dtypes, which of them a device computes fast, and the precision a
recipe should ask for on this machine.

On a CPU, bf16 and fp16 autocast are fast only where oneDNN has kernels for them (bf16: AVX512 or ARM's BF16
extension; fp16: AVX512-FP16 or AMX-FP16). Elsewhere torch emulates them: measured on a 2-vCPU AMD EPYC with AVX2
alone, the recipe's training step took 28 s in bf16 against 1.7 s in fp32 (docs/training.md).
"""

import torch

PRECISIONS = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}
"""``--precision`` values and their autocast dtype (None: no autocast)."""
PRECISION_CHOICES = ('auto', *PRECISIONS)
"""The values ``--precision`` accepts."""
_CPU_CHECKS = {torch.bfloat16: '_is_mkldnn_bf16_supported', torch.float16: '_is_mkldnn_fp16_supported'}


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``--precision`` on ``device``: auto is bf16 on a CUDA GPU with it, else fp16 there,
    and no autocast (fp32) elsewhere."""
    if precision != 'auto':
        return PRECISIONS[precision]
    if device.type != 'cuda':
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def cpu_computes(dtype: torch.dtype) -> bool:
    """Whether this CPU has fast kernels for autocast in ``dtype`` (True for fp32, which needs none)."""
    check = _CPU_CHECKS.get(dtype)
    if check is None:
        return dtype == torch.float32
    try:
        return bool(getattr(torch.ops.mkldnn, check)())
    except (AttributeError, RuntimeError):  # a torch without the check: assume the slow path
        return False


def emulation_note(device: torch.device, amp_dtype: torch.dtype | None, flag: str) -> str | None:
    """One line for the user when autocast in ``amp_dtype`` on ``device`` would be emulated (None when it is not)."""
    if device.type != 'cpu' or amp_dtype is None or cpu_computes(amp_dtype):
        return None
    name = _name(amp_dtype)
    return (
        f'note: {flag}={name}: this CPU has no fast {name} kernels, so autocast is emulated and a step takes many '
        f'times longer than in fp32 (16-24x measured); {flag}=fp32 trains faster here'
    )


def fastest_precision() -> str:
    """``bf16`` where this machine trains fast in it (a CUDA GPU with bf16, or a CPU with bf16 kernels), else
    ``fp32`` (``fp16`` on a CUDA GPU without bf16): the ``--precision`` for a recipe that must run anywhere."""
    if torch.cuda.is_available():
        return _name(autocast_dtype('auto', torch.device('cuda')))
    return 'bf16' if cpu_computes(torch.bfloat16) else 'fp32'


def _name(dtype: torch.dtype | None) -> str:
    return next(name for name, value in PRECISIONS.items() if value == dtype)


if __name__ == '__main__':
    print(fastest_precision())
