import pytest
import torch

from positronic.command import UsageError
from positronic.vendors.lerobot.device import resolve_device
from positronic.vendors.lerobot.training.distributed import ProcessGroup

TORCHRUN_ENV = ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')


@pytest.fixture
def single_process(monkeypatch):
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)


def test_a_process_outside_torchrun_is_a_group_of_one_on_the_auto_device(single_process):
    group = ProcessGroup.start()
    assert (group.rank, group.local_rank, group.world_size) == (0, 0, 1)
    assert group.is_main and not group.is_distributed
    assert group.device.type == resolve_device('auto').type
    tensor = torch.ones(2)
    assert group.mean_tensor(tensor) is tensor and group.gather('x') == ['x']
    group.close()


def test_the_group_takes_auto_and_an_explicit_cpu(single_process):
    assert ProcessGroup.start('auto').device == ProcessGroup.start(None).device
    assert ProcessGroup.start('cpu').device == torch.device('cpu')


def test_an_unknown_device_is_a_usage_error_naming_the_flag(single_process):
    with pytest.raises(UsageError, match=r"^--device='tpu' is not a device"):
        ProcessGroup.start('tpu')
