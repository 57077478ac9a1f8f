"""Training batches gathered where the model trains: the frame cache, the numeric columns and the sample order are
copied to the device once, and each step is a few gather, cast and normalize kernels there, with no host threads,
no pinned copies and no host sync.

It yields exactly the batches of :class:`~positronic.vendors.lerobot.training.training_data.BatchStream` over the same
:class:`~positronic.vendors.lerobot.training.training_data.ChunkDataset` (same samples, same order, same normalization):
the per-epoch permutations of its ``SampleOrder`` are uploaded once per epoch and sliced on the device.
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch

from positronic.vendors.lerobot.act.config import ACTION_IS_PAD_KEY, ACTION_KEY
from positronic.vendors.lerobot.training.training_data import (
    IMAGE_SCALE,
    Batch,
    ChunkDataset,
    SampleOrder,
    epoch_permutation,
)

UPLOAD_FRAMES = 1024
"""Frames copied to the device per transfer while uploading the cache (bounds the host memory it takes)."""
DEVICE_SHARE = 0.5
"""Largest share of the device's free memory the resident data may take (the rest is for the model's step)."""


def resident_bytes(dataset: ChunkDataset) -> int:
    """Device memory :class:`ResidentBatches` takes for ``dataset`` (frames, columns and the episode index)."""
    arrays = [*dataset.frames.values(), *dataset.columns.values()]
    return sum(a.nbytes for a in arrays) + dataset.episode_end.nbytes


def fits_on_device(dataset: ChunkDataset, device: torch.device) -> bool:
    """Whether ``dataset`` fits in ``DEVICE_SHARE`` of the free memory of CUDA ``device`` (False elsewhere)."""
    if device.type != 'cuda':
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return resident_bytes(dataset) <= DEVICE_SHARE * free


def _upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``array`` (a memory map) copied to ``device`` a slice at a time."""
    out = torch.empty(array.shape, dtype=torch.from_numpy(np.empty(0, array.dtype)).dtype, device=device)
    for start in range(0, len(array), UPLOAD_FRAMES):
        part = np.array(array[start : start + UPLOAD_FRAMES])  # a writable copy: torch refuses read-only memory
        out[start : start + len(part)].copy_(torch.from_numpy(part))
    return out


class ResidentBatches:
    """The normalized batches of steps ``start .. stop - 1`` for ``rank``, built on ``device`` from resident copies.

    Args:
        dataset: the samples (its frame cache is read once, here).
        transform: the normalization, applied on the device (``Processors.normalize``).
        order: which frames each step takes.
    """

    def __init__(
        self,
        dataset: ChunkDataset,
        device: torch.device,
        start: int,
        stop: int,
        order: SampleOrder,
        *,
        transform: Callable[[Batch], Batch] = lambda batch: batch,
    ):
        self.device = device
        self._num_frames = len(dataset)
        self._order = order
        self._steps = range(start, stop)
        self._transform = transform
        self._frames = {key: _upload(frames, device) for key, frames in dataset.frames.items()}
        self._columns = {key: torch.from_numpy(values).to(device) for key, values in dataset.columns.items()}
        self._episode_end = torch.from_numpy(dataset.episode_end).to(device)
        self._offsets = torch.arange(dataset.chunk_size, device=device)
        self._epochs: dict[int, torch.Tensor] = {}

    def _epoch(self, epoch: int) -> torch.Tensor:
        if epoch not in self._epochs:
            self._epochs = {e: t for e, t in self._epochs.items() if e >= epoch - 1}
            permutation = epoch_permutation(self._num_frames, self._order.seed, epoch)
            self._epochs[epoch] = torch.from_numpy(permutation).to(self.device)
        return self._epochs[epoch]

    def indices(self, step: int) -> torch.Tensor:
        """Global frame indices (batch_size,) on the device: ``order.indices(step, ...)``."""
        runs = self._order.epoch_slices(step, self._num_frames)
        parts = [self._epoch(epoch)[offset : offset + count] for epoch, offset, count in runs]
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def batch(self, indices: torch.Tensor) -> Batch:
        """What ``ChunkDataset.batch(indices)`` holds, on the device and not yet normalized."""
        wanted = indices[:, None] + self._offsets
        end = self._episode_end[indices][:, None]
        batch: Batch = {key: values[indices] for key, values in self._columns.items() if key != ACTION_KEY}
        for key, frames in self._frames.items():
            batch[key] = frames[indices].to(torch.float32).div_(IMAGE_SCALE)
        batch[ACTION_KEY] = self._columns[ACTION_KEY][torch.minimum(wanted, end - 1)]
        batch[ACTION_IS_PAD_KEY] = wanted >= end
        return batch

    def __iter__(self) -> Iterator[Batch]:
        for step in self._steps:
            yield self._transform(self.batch(self.indices(step)))

    def close(self) -> None:
        self._frames.clear()
        self._columns.clear()
        self._epochs.clear()
