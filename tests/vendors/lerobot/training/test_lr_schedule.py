import itertools
import math

import pytest
import torch

from positronic.vendors.lerobot.training.lr_schedule import LR_SCHEDULES, LearningRate, lr_factor


def test_constant_keeps_the_base_rate_at_every_step():
    assert [lr_factor('constant', step, 10) for step in (1, 5, 10)] == [1.0, 1.0, 1.0]


def test_cosine_starts_at_the_base_rate_halves_midway_and_ends_near_zero():
    steps = 1000
    factors = [lr_factor('cosine', step, steps) for step in range(1, steps + 1)]
    assert factors[0] == 1.0
    assert lr_factor('cosine', steps // 2 + 1, steps) == pytest.approx(0.5)
    assert 0 < factors[-1] < 1e-5
    assert all(a > b for a, b in itertools.pairwise(factors))


def test_an_unknown_schedule_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="one of constant, cosine, got 'linear'"):
        lr_factor('linear', 1, 10)
    assert LR_SCHEDULES == ('constant', 'cosine')


def test_every_group_follows_the_curve_from_its_own_base_rate_even_after_its_rate_was_overwritten():
    backbone, head = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(
        [{'params': backbone.parameters(), 'lr': 1e-5}, {'params': head.parameters()}], lr=1e-4
    )
    rate = LearningRate(optimizer, 'cosine', num_steps=4)
    optimizer.param_groups[0]['lr'] = 123.0  # as a resume loads the saved (decayed) groups
    rate.set_for(3)
    factor = 0.5 * (1 + math.cos(math.pi * 2 / 4))
    assert [g['lr'] for g in optimizer.param_groups] == pytest.approx([1e-5 * factor, 1e-4 * factor])
