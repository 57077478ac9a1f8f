"""ACT training batches from a LeRobot dataset: numeric columns in memory, camera frames from the frame cache.

A sample at global frame index ``t`` of an episode ``[from, to)`` is, as LeRobot's dataset builds it for ACT:

- each numeric observation (``observation.state`` (S,) float32) at ``t``;
- each camera at ``t``: float32 (3, H, W) in [0, 1] (uint8 / 255, channel-first);
- ``action`` (chunk_size, A) float32 at ``clamp(t + k, from, to - 1)`` for k = 0..chunk_size-1;
- ``action_is_pad`` (chunk_size,) bool, true where ``t + k >= to``.

Sample order is a function of (seed, step) alone: the dataset's frames are shuffled once per epoch with a generator
seeded by ``(seed, epoch)``, the epochs are laid end to end, and step ``k`` takes the next ``batch_size x
world_size`` positions of that stream, rank ``r`` its ``r``-th slice. Resuming at a step therefore continues with
exactly the batches an uninterrupted run would have seen, and N ranks together see what one process sees with an N
times larger batch.

:class:`BatchStream` builds the batches of upcoming steps in background threads while the model trains.
"""

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from positronic.vendors.lerobot.act.config import ACTION_IS_PAD_KEY, ACTION_KEY, STATE_KEY
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader, NonFiniteValueError
from positronic.vendors.lerobot.training.frame_cache import FrameCache

IMAGE_SCALE = 255.0

Batch = dict[str, torch.Tensor]


@lru_cache(maxsize=4)
def epoch_permutation(num_frames: int, seed: int, epoch: int) -> np.ndarray:
    """The order (num_frames,) int64 in which epoch ``epoch`` visits the frames (seeded by ``(seed, epoch)``)."""
    return np.random.default_rng([seed, epoch]).permutation(num_frames)


@dataclass(frozen=True)
class SampleOrder:
    """Which frames ``rank`` trains on at each step (see the module docstring)."""

    batch_size: int
    seed: int
    rank: int = 0
    world_size: int = 1

    def epoch_slices(self, step: int, num_frames: int) -> list[tuple[int, int, int]]:
        """``(epoch, offset, count)``: the runs of the epochs' orders that make up the batch of ``step``, in order."""
        position = (step * self.world_size + self.rank) * self.batch_size
        slices, remaining = [], self.batch_size
        while remaining:
            epoch, offset = divmod(position, num_frames)
            count = min(remaining, num_frames - offset)
            slices.append((epoch, offset, count))
            position, remaining = position + count, remaining - count
        return slices

    def indices(self, step: int, num_frames: int) -> np.ndarray:
        """Global frame indices (batch_size,) int64 of the batch of ``step``."""
        runs = self.epoch_slices(step, num_frames)
        return np.concatenate([epoch_permutation(num_frames, self.seed, e)[o : o + n] for e, o, n in runs])


def sample_indices(
    step: int, batch_size: int, num_frames: int, seed: int, rank: int = 0, world_size: int = 1
) -> np.ndarray:
    """Global frame indices (batch_size,) int64 that ``rank`` trains on at ``step`` (see the module docstring)."""
    return SampleOrder(batch_size, seed, rank, world_size).indices(step, num_frames)


class ChunkDataset:
    """Every frame of a dataset as an ACT training sample (see the module docstring).

    ``observation_keys`` are the numeric observation columns the policy reads (``observation.state``); camera keys
    come from the cache.
    """

    def __init__(
        self,
        reader: DatasetReader,
        cache: FrameCache,
        chunk_size: int,
        observation_keys: Sequence[str] = (STATE_KEY,),
    ):
        if chunk_size < 1:
            raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
        self.chunk_size = chunk_size
        self.columns = {
            key: np.ascontiguousarray(values, dtype=np.float32)
            for key, values in reader.read_columns([*observation_keys, ACTION_KEY]).items()
        }
        for key, values in self.columns.items():
            finite_rows = np.isfinite(values).reshape(len(values), -1).all(axis=1)
            if not finite_rows.all():
                row = int(np.argmin(finite_rows))
                episode = next(ep for ep in reader.episodes if ep.from_index <= row < ep.to_index)
                raise NonFiniteValueError(
                    f'dataset {reader.root}: column {key!r} holds a non-finite value (NaN or inf) at frame '
                    f'{row - episode.from_index} of episode {episode.episode_index} (global index {row}); training '
                    'on it would give NaN weights: fix or drop that episode (positronic-to-lerobot verify lists them)'
                )
        self.frames = cache.frames
        lengths = [ep.length for ep in reader.episodes]
        self.episode_end = np.repeat([ep.to_index for ep in reader.episodes], lengths).astype(np.int64)
        self._offsets = np.arange(chunk_size, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.episode_end)

    def batch(self, indices: np.ndarray) -> Batch:
        """Samples at global frame ``indices`` (B,), stacked: numeric (B, ...), cameras (B, 3, H, W) float32 in
        [0, 1], ``action`` (B, chunk_size, A), ``action_is_pad`` (B, chunk_size) bool."""
        indices = np.asarray(indices, dtype=np.int64)
        wanted = indices[:, None] + self._offsets
        end = self.episode_end[indices][:, None]
        batch: Batch = {
            key: torch.from_numpy(values[indices]) for key, values in self.columns.items() if key != ACTION_KEY
        }
        for key, frames in self.frames.items():
            batch[key] = torch.from_numpy(frames[indices]).to(torch.float32).div_(IMAGE_SCALE)
        batch[ACTION_KEY] = torch.from_numpy(self.columns[ACTION_KEY][np.minimum(wanted, end - 1)])
        batch[ACTION_IS_PAD_KEY] = torch.from_numpy(wanted >= end)
        return batch


class BatchStream:
    """Batches for steps ``start .. stop - 1`` in order, each ``transform(dataset.batch(indices_of(step)))``.

    With ``num_workers`` > 0 that many threads build the next batches while the caller trains on the current one
    (up to ``num_workers + 1`` ahead); with 0 each batch is built when asked for.
    """

    def __init__(
        self,
        dataset: ChunkDataset,
        indices_of: Callable[[int], np.ndarray],
        start: int,
        stop: int,
        *,
        transform: Callable[[Batch], Batch] = lambda batch: batch,
        num_workers: int = 1,
        pin_memory: bool = False,
    ):
        self._dataset = dataset
        self._indices_of = indices_of
        self._transform = transform
        self._pin = pin_memory
        self._steps = iter(range(start, stop))
        self._pool = ThreadPoolExecutor(max_workers=num_workers) if num_workers > 0 else None
        self._ahead: deque[Future] = deque()
        self._depth = num_workers + 1

    @classmethod
    def for_training(
        cls,
        dataset: ChunkDataset,
        start: int,
        stop: int,
        order: SampleOrder,
        **kwargs,
    ) -> 'BatchStream':
        """The stream of the batches ``order`` gives; ``kwargs`` as for the class."""
        return cls(dataset, lambda step: order.indices(step, len(dataset)), start, stop, **kwargs)

    def _build(self, step: int) -> Batch:
        batch = self._transform(self._dataset.batch(self._indices_of(step)))
        return {k: v.pin_memory() for k, v in batch.items()} if self._pin else batch

    def __iter__(self) -> Iterator[Batch]:
        try:
            if self._pool is None:
                for step in self._steps:
                    yield self._build(step)
                return
            self._fill()
            while self._ahead:
                batch = self._ahead.popleft().result()
                self._fill()
                yield batch
        finally:
            self.close()

    def _fill(self) -> None:
        while len(self._ahead) < self._depth:
            step = next(self._steps, None)
            if step is None:
                return
            self._ahead.append(self._pool.submit(self._build, step))

    def close(self) -> None:
        if self._pool is not None:
            for future in self._ahead:
                future.cancel()
            self._pool.shutdown(wait=True)
