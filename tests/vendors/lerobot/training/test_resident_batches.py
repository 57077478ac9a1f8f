import numpy as np
import pytest
import torch

from positronic.vendors.lerobot.training.resident_batches import ResidentBatches, fits_on_device, resident_bytes
from positronic.vendors.lerobot.training.training_data import BatchStream, ChunkDataset, SampleOrder, sample_indices

from ..tiny_dataset import tiny_chunk_dataset

CHUNK = 5


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> ChunkDataset:
    return tiny_chunk_dataset(tmp_path_factory.mktemp('resident'), CHUNK)


def halve(batch):
    return {k: v / 2 if v.dtype == torch.float32 else v for k, v in batch.items()}


@pytest.mark.parametrize('rank', [0, 1])
def test_resident_batches_are_the_batch_streams_batches(dataset, rank):
    """Same samples, order and transform as the host stream, across an epoch boundary, for each rank's slice."""
    order = SampleOrder(batch_size=7, seed=3, rank=rank, world_size=2)
    start, stop = 0, len(dataset) // 7  # 2 x 7 samples a step: the stream crosses epochs
    host = list(BatchStream.for_training(dataset, start, stop, order, transform=halve, num_workers=0))
    resident = ResidentBatches(dataset, torch.device('cpu'), start, stop, order, transform=halve)
    for step, (expected, batch) in enumerate(zip(host, resident, strict=True)):
        assert sorted(batch) == sorted(expected)
        for key in expected:
            assert batch[key].dtype == expected[key].dtype, key
            assert torch.equal(batch[key], expected[key]), (step, key)
        np.testing.assert_array_equal(resident.indices(step).numpy(), sample_indices(step, 7, len(dataset), 3, rank, 2))


def test_resident_batches_resume_at_any_step(dataset):
    order = SampleOrder(batch_size=4, seed=0)
    whole = list(ResidentBatches(dataset, torch.device('cpu'), 0, 12, order))
    tail = list(ResidentBatches(dataset, torch.device('cpu'), 9, 12, order))
    for a, b in zip(whole[9:], tail, strict=True):
        assert torch.equal(a['action'], b['action']) and torch.equal(
            a['observation.images.left'], b['observation.images.left']
        )


def test_only_cuda_memory_is_counted_as_room_for_the_data(dataset):
    frames = sum(f.nbytes for f in dataset.frames.values())
    assert resident_bytes(dataset) > frames > 0
    assert not fits_on_device(dataset, torch.device('cpu'))
