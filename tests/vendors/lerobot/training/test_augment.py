import pytest
import torch
import torch.nn.functional as F

from positronic.vendors.lerobot.training.augment import random_shift, state_noise, step_generator


def images(batch=16, size=12):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0))


def shift_of(out: torch.Tensor, image: torch.Tensor, pad: int) -> tuple[int, int] | None:
    """The (dy, dx) in [-pad, pad] that makes ``out`` from ``image`` with the edges repeated, if any."""
    padded = F.pad(image[None], (pad,) * 4, mode='replicate')[0]
    size = image.shape[-1]
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            if torch.equal(padded[:, dy : dy + size, dx : dx + size], out):
                return dy - pad, dx - pad
    return None


def test_each_image_is_shifted_by_at_most_pad_pixels_with_its_edges_repeated():
    x = images()
    out = random_shift(x, 3, step_generator(torch.device('cpu'), seed=1, rank=0, step=5))
    assert out.shape == x.shape
    shifts = [shift_of(o, i, 3) for o, i in zip(out, x, strict=True)]
    assert None not in shifts
    assert len(set(shifts)) > 3  # its own draw per image


def test_shifts_repeat_for_the_same_seed_rank_and_step_and_differ_otherwise():
    x = images()
    cpu = torch.device('cpu')

    def shifted(seed, rank, step):
        return random_shift(x, 4, step_generator(cpu, seed, rank, step))

    assert torch.equal(shifted(1, 0, 5), shifted(1, 0, 5))
    assert not torch.equal(shifted(1, 0, 5), shifted(1, 0, 6))
    assert not torch.equal(shifted(1, 0, 5), shifted(1, 1, 5))
    assert not torch.equal(shifted(1, 0, 5), shifted(2, 0, 5))


def test_no_pad_leaves_the_images_and_a_negative_pad_is_refused():
    x = images()
    assert random_shift(x, 0, torch.Generator()) is x
    with pytest.raises(ValueError, match='>= 0'):
        random_shift(x, -1, torch.Generator())


def test_state_noise_has_the_asked_standard_deviation_per_value_and_repeats_for_the_same_step():
    state = torch.linspace(-2, 2, 8).repeat(4096, 1)
    cpu = torch.device('cpu')
    noised = state_noise(state, 0.25, step_generator(cpu, seed=1, rank=0, step=5))
    noise = noised - state
    assert noise.mean().abs() < 0.01
    assert noise.std(dim=0) == pytest.approx(torch.full((8,), 0.25), rel=0.05)
    assert abs(float(torch.corrcoef(noise[:, :2].T)[0, 1])) < 0.05  # its own draw per value
    assert torch.equal(noised, state_noise(state, 0.25, step_generator(cpu, seed=1, rank=0, step=5)))
    assert not torch.equal(noised, state_noise(state, 0.25, step_generator(cpu, seed=1, rank=0, step=6)))


def test_no_state_noise_is_the_state_itself_and_negative_noise_is_refused():
    state = torch.zeros(2, 8)
    assert state_noise(state, 0.0, torch.Generator()) is state
    with pytest.raises(ValueError, match='>= 0'):
        state_noise(state, -0.5, torch.Generator())
