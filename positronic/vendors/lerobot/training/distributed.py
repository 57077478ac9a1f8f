"""The process group of a training run: one process, or N under ``torchrun`` (DistributedDataParallel).

``torchrun --nproc_per_node=N`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; with more than one process the
group uses NCCL on CUDA and gloo elsewhere. A single process needs no group and every collective is a no-op.
"""

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from positronic.vendors.lerobot.device import DEVICE_AUTO, resolve_device

GROUP_TIMEOUT = timedelta(hours=2)
"""Long enough for local rank 0 to decode a large dataset into the frame cache while the others wait."""


def threads_per_process(processes: int) -> int:
    """An equal share of this machine's CPUs for each of ``processes`` training processes (at least one)."""
    return max(1, (os.cpu_count() or 1) // processes)


@dataclass(frozen=True)
class ProcessGroup:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @classmethod
    def start(cls, requested_device: str | None = DEVICE_AUTO) -> 'ProcessGroup':
        """Join the group ``torchrun`` describes in the environment (or be the only process), on
        ``requested_device`` (see :func:`~positronic.vendors.lerobot.device.resolve_device`: auto = this process's GPU
        when CUDA is available)."""
        world_size = int(os.environ.get('WORLD_SIZE', '1'))
        rank = int(os.environ.get('RANK', '0'))
        local_rank = int(os.environ.get('LOCAL_RANK', '0'))
        device = resolve_device(requested_device, local_rank=local_rank)
        if world_size > 1 and not dist.is_initialized():
            if device.type == 'cuda':
                torch.cuda.set_device(device)
            backend = 'nccl' if device.type == 'cuda' else 'gloo'
            dist.init_process_group(backend, rank=rank, world_size=world_size, timeout=GROUP_TIMEOUT)
        return cls(rank=rank, local_rank=local_rank, world_size=world_size, device=device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def mean_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise mean of ``tensor`` (on this process's device) over all processes."""
        if not self.is_distributed:
            return tensor
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor / self.world_size

    def gather(self, obj):
        """``obj`` of every process, by rank (a list of one without a group)."""
        if not self.is_distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.is_distributed and dist.is_initialized():
            dist.destroy_process_group()
