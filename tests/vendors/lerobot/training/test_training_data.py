import numpy as np
import pytest
import torch

from positronic.vendors.lerobot.training.training_data import (
    BatchStream,
    ChunkDataset,
    sample_indices,
)

from ..tiny_dataset import LENGTHS, episode_frames, tiny_chunk_dataset

CHUNK = 5


@pytest.fixture(scope='module')
def dataset(tmp_path_factory) -> ChunkDataset:
    return tiny_chunk_dataset(tmp_path_factory.mktemp('training_data'), CHUNK)


def test_each_epoch_visits_every_frame_once_in_a_seeded_order():
    n, batch = 30, 4
    stream = np.concatenate([sample_indices(step, batch, n, seed=1000) for step in range(15)])
    assert sorted(stream[:n]) == list(range(n)) and sorted(stream[n:]) == list(range(n))
    assert not np.array_equal(stream[:n], stream[n:])
    np.testing.assert_array_equal(sample_indices(7, batch, n, seed=1000), stream[28:32])
    assert not np.array_equal(sample_indices(0, batch, n, seed=1001), stream[:4])


def test_ranks_split_the_global_batch_of_one_process():
    n = 23
    for step in range(6):
        single = sample_indices(step, 8, n, seed=5)
        shards = [sample_indices(step, 4, n, seed=5, rank=r, world_size=2) for r in range(2)]
        np.testing.assert_array_equal(np.concatenate(shards), single)


def test_batch_holds_state_images_and_padded_action_chunks(dataset):
    last_of_first = LENGTHS[0] - 1
    indices = np.array([0, last_of_first - 2, last_of_first, LENGTHS[0]])
    batch = dataset.batch(indices)
    first = episode_frames(LENGTHS[0], seed=0)
    second = episode_frames(LENGTHS[1], seed=1)

    assert batch['observation.state'].shape == (4, 8) and batch['observation.state'].dtype == torch.float32
    np.testing.assert_array_equal(batch['observation.state'][0].numpy(), first['observation.state'][0])
    np.testing.assert_array_equal(batch['action'][0].numpy(), first['action'][:CHUNK])
    np.testing.assert_array_equal(batch['action'][3].numpy(), second['action'][:CHUNK])
    assert batch['action_is_pad'].tolist()[1] == [False, False, False, True, True]
    assert batch['action_is_pad'].tolist()[2] == [False, True, True, True, True]
    expected_tail = np.repeat(first['action'][last_of_first][None], CHUNK, axis=0)
    np.testing.assert_array_equal(batch['action'][2].numpy(), expected_tail)

    image = batch['observation.images.left']
    assert image.shape == (4, 3, 32, 32) and image.dtype == torch.float32
    cached = dataset.frames['observation.images.left'][indices].astype(np.float32) / 255
    np.testing.assert_array_equal(image.numpy(), cached)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0


@pytest.mark.parametrize('num_workers', [0, 2])
def test_batch_stream_yields_the_batches_of_its_steps_in_order(dataset, num_workers):
    def indices_of(step):
        return sample_indices(step, 3, len(dataset), seed=0)

    def mark(batch):
        return {**batch, 'marked': torch.ones(1)}

    batches = list(BatchStream(dataset, indices_of, 4, 9, transform=mark, num_workers=num_workers))
    assert len(batches) == 5
    for step, batch in zip(range(4, 9), batches, strict=True):
        expected = dataset.batch(indices_of(step))
        assert torch.equal(batch['action'], expected['action'])
        assert torch.equal(batch['observation.images.side'], expected['observation.images.side'])
        assert 'marked' in batch
