import math

import pytest
import torch

from positronic.vendors.lerobot.training.distributed import ProcessGroup
from positronic.vendors.lerobot.training.train_log import NonFiniteLossError, StepWindow

ONE = ProcessGroup(rank=0, local_rank=0, world_size=1, device=torch.device('cpu'))


def test_a_window_reads_every_step_it_holds_once_and_empties():
    window = StepWindow(['loss', 'l1_loss', 'grad_norm'], ONE, samples_per_step=8)
    for step in (1, 2, 3):
        window.add(step, torch.tensor([step, step / 2, 10.0 * step]), data_s=0.0, extra={'lr': 1e-4 / step})
    rows = window.read()
    assert [r['step'] for r in rows] == [1, 2, 3]
    assert [r['loss'] for r in rows] == [1.0, 2.0, 3.0] and rows[2]['grad_norm'] == 30.0
    assert [r['lr'] for r in rows] == [1e-4, 1e-4 / 2, 1e-4 / 3]
    assert all(r['samples_per_s'] > 0 and 0 <= r['data_s'] <= r['step_s'] for r in rows)
    assert len(window) == 0 and window.read() == []


@pytest.mark.parametrize('bad', [math.nan, math.inf])
def test_a_non_finite_loss_stops_the_run_naming_its_step(bad):
    window = StepWindow(['loss', 'grad_norm'], ONE, samples_per_step=8)
    window.add(7, torch.tensor([0.5, 1.0]), 0.0)
    window.add(8, torch.tensor([bad, 1.0]), 0.0)
    with pytest.raises(NonFiniteLossError, match='at step 8'):
        window.read()
