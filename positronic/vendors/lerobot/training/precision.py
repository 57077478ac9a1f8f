"""Which autocast precisions a device computes fast, and the precision a recipe should ask for on this machine.

On a CPU, bf16 and fp16 autocast are fast only where oneDNN has kernels for them (bf16: AVX512 or ARM's BF16
extension; fp16: AVX512-FP16 or AMX-FP16). Elsewhere torch emulates them: measured on a 2-vCPU AMD EPYC with AVX2
alone, the recipe's training step took 28 s in bf16 against 1.7 s in fp32 (docs/training.md).
"""

import torch

_CPU_CHECKS = {torch.bfloat16: '_is_mkldnn_bf16_supported', torch.float16: '_is_mkldnn_fp16_supported'}


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
    name = {torch.bfloat16: 'bf16', torch.float16: 'fp16'}.get(amp_dtype, str(amp_dtype))
    return (
        f'note: {flag}={name}: this CPU has no fast {name} kernels, so autocast is emulated and a step takes many '
        f'times longer than in fp32 (16-24x measured); {flag}=fp32 trains faster here'
    )


def fastest_precision() -> str:
    """``bf16`` where this machine trains fast in it (a CUDA GPU with bf16, or a CPU with bf16 kernels), else
    ``fp32`` (``fp16`` on a CUDA GPU without bf16): the ``--precision`` for a recipe that must run anywhere."""
    if torch.cuda.is_available():
        return 'bf16' if torch.cuda.is_bf16_supported() else 'fp16'
    return 'bf16' if cpu_computes(torch.bfloat16) else 'fp32'


if __name__ == '__main__':
    print(fastest_precision())
