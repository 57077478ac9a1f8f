"""LeRobot 0.4.4's ACT as a timing worker for ``bench_act.py``; run with the side environment's python.

    /tmp/venv-lerobot/bin/python benchmarks/lerobot_act_step.py <pretrained_dir> <batch.npz>

Loads the checkpoint with ``ACTPolicy.from_pretrained`` and the batch, prints ``ready``, then answers one JSON line
per command read from stdin, so that the benchmark can alternate LeRobot's runs with ours under the same load:
- ``loss``: ``torch.manual_seed(0)`` then one training step; ``{"loss": ...}``;
- ``train``: one training step (forward, backward, clip 10, AdamW step); ``{"s": seconds}``;
- ``select``: ``reset()``, ``select_action`` on the first sample (runs the model), then again (pops the queue);
  ``{"model_s": ..., "cached_s": ...}``.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from lerobot.policies.act.modeling_act import ACTPolicy


def main(pretrained_dir: Path, batch_file: Path) -> None:
    policy = ACTPolicy.from_pretrained(pretrained_dir)
    with np.load(batch_file) as data:
        batch = {k: torch.from_numpy(v) for k, v in data.items()}
    single = {k: v[:1] for k, v in batch.items() if not k.startswith('action')}
    optimizer = torch.optim.AdamW(policy.get_optim_params(), lr=1e-5, weight_decay=1e-4)

    def train_step() -> float:
        policy.train()
        loss, _ = policy.forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    print('ready', flush=True)
    for command in sys.stdin:
        command = command.strip()
        if command == 'loss':
            torch.manual_seed(0)
            answer = {'loss': train_step()}
        elif command == 'train':
            start = time.perf_counter()
            train_step()
            answer = {'s': time.perf_counter() - start}
        elif command == 'select':
            policy.reset()
            start = time.perf_counter()
            policy.select_action(single)
            middle = time.perf_counter()
            policy.select_action(single)
            answer = {'model_s': middle - start, 'cached_s': time.perf_counter() - middle}
        else:
            break
        print(json.dumps(answer), flush=True)


if __name__ == '__main__':
    main(Path(sys.argv[1]), Path(sys.argv[2]))
