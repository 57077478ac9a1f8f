"""Times LeRobot 0.4.4's ACT on a checkpoint and a batch; run with the side environment's python.

    /tmp/venv-lerobot/bin/python benchmarks/lerobot_act_step.py <pretrained_dir> <batch.npz> <repeats> <out.json>

Loads the checkpoint with ``ACTPolicy.from_pretrained`` and measures what ``bench_act.py`` measures for ours:
training steps (forward, backward, clip 10, AdamW step) on the batch, the first step's loss after
``torch.manual_seed(0)``, and ``select_action`` on the batch's first sample (model call, then a cached pop).
Writes JSON: ``train_s`` (per timed step), ``loss``, ``select_model_s``, ``select_cached_s``.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from lerobot.policies.act.modeling_act import ACTPolicy


def main(pretrained_dir: Path, batch_file: Path, repeats: int, out: Path) -> None:
    policy = ACTPolicy.from_pretrained(pretrained_dir)
    with np.load(batch_file) as data:
        batch = {k: torch.from_numpy(v) for k, v in data.items()}
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-5, weight_decay=1e-4)
    policy.train()
    train_s, loss_value = [], None
    for i in range(repeats + 1):
        start = time.perf_counter()
        if i == 0:
            torch.manual_seed(0)
        loss, _ = policy.forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad()
        if i == 0:
            loss_value = loss.item()
        else:
            train_s.append(time.perf_counter() - start)

    single = {k: v[:1] for k, v in batch.items() if not k.startswith('action')}
    select_model_s, select_cached_s = [], []
    for _ in range(repeats + 1):
        policy.reset()
        start = time.perf_counter()
        policy.select_action(single)
        middle = time.perf_counter()
        policy.select_action(single)
        select_model_s.append(middle - start)
        select_cached_s.append(time.perf_counter() - middle)
    result = {
        'train_s': train_s,
        'loss': loss_value,
        'select_model_s': select_model_s[1:],
        'select_cached_s': select_cached_s[1:],
    }
    out.write_text(json.dumps(result))


if __name__ == '__main__':
    main(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
