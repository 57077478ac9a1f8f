import pytest
import torch

from positronic.command import UsageError
from positronic.vendors.lerobot.device import resolve_device

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')


def _best_available() -> str:
    return 'cuda' if torch.cuda.is_available() else 'mps' if torch.backends.mps.is_available() else 'cpu'


def test_auto_and_none_pick_cuda_else_mps_else_cpu():
    assert resolve_device('auto').type == _best_available()
    assert resolve_device(None) == resolve_device('auto')
    assert resolve_device('cpu') == torch.device('cpu')


def test_a_resolved_device_resolves_to_itself():
    device = resolve_device('auto')
    assert resolve_device(device) == device


@pytest.mark.parametrize('flag', ['--device', '--policy.device'])
def test_an_unknown_device_is_a_usage_error_naming_the_flag_and_the_choices(flag):
    with pytest.raises(
        UsageError, match=rf"^{flag}='tpu' is not a device; expected auto, cpu, cuda, cuda:<index> or mps"
    ):
        resolve_device('tpu', flag=flag)


@NO_CUDA
def test_cuda_on_a_machine_without_it_is_a_usage_error_naming_the_flag():
    with pytest.raises(UsageError, match=r'^--device=cuda: CUDA is not available on this machine; use --device=cpu'):
        resolve_device('cuda')
    with pytest.raises(UsageError, match=r'^--policy\.device=cuda:1: CUDA is not available'):
        resolve_device('cuda:1', flag='--policy.device')


@NO_CUDA
def test_auto_on_a_machine_without_cuda_ignores_the_local_rank():
    assert resolve_device('auto', local_rank=3).type == _best_available()


@CUDA
def test_auto_under_torchrun_is_the_process_own_gpu():
    assert resolve_device('auto', local_rank=0) == torch.device('cuda', 0)
    assert resolve_device('auto') == torch.device('cuda')


@CUDA
def test_a_gpu_index_this_machine_lacks_is_a_usage_error_naming_the_count():
    count = torch.cuda.device_count()
    with pytest.raises(UsageError, match=rf'^--device=cuda:{count}: this machine has {count} CUDA device\(s\)'):
        resolve_device(f'cuda:{count}')
    assert resolve_device(f'cuda:{count - 1}') == torch.device('cuda', count - 1)
