import pytest
import torch

from positronic.vendors.lerobot.training.precision import (
    autocast_dtype,
    cpu_computes,
    emulation_note,
    fastest_precision,
)

CPU, CUDA = torch.device('cpu'), torch.device('cuda')


def test_a_named_precision_is_its_dtype_everywhere_and_auto_autocasts_only_on_cuda():
    assert autocast_dtype('bf16', CPU) is torch.bfloat16 and autocast_dtype('fp16', CUDA) is torch.float16
    assert autocast_dtype('fp32', CUDA) is None and autocast_dtype('auto', CPU) is None


def test_fp32_needs_no_special_kernels_and_is_never_noted():
    assert cpu_computes(torch.float32)
    assert emulation_note(CPU, None, '--precision') is None


@pytest.mark.parametrize(('dtype', 'name'), [(torch.bfloat16, 'bf16'), (torch.float16, 'fp16')])
def test_a_cpu_autocast_without_fast_kernels_is_noted_naming_the_flag_and_the_fast_choice(dtype, name):
    note = emulation_note(CPU, dtype, '--precision')
    if cpu_computes(dtype):
        assert note is None
    else:
        assert note.startswith(f'note: --precision={name}: this CPU has no fast {name} kernels')
        assert '--precision=fp32 trains faster here' in note


def test_gpu_autocast_is_never_noted():
    assert emulation_note(CUDA, torch.bfloat16, '--precision') is None


@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU rule')
def test_the_fastest_precision_of_a_cpu_is_bf16_only_with_its_kernels():
    assert fastest_precision() == ('bf16' if cpu_computes(torch.bfloat16) else 'fp32')
