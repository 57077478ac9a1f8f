"""Times LeRobot 0.4.4's ACT training steps fed by LeRobotDataset + DataLoader; run with the side env's python.

    /tmp/venv-lerobot/bin/python benchmarks/lerobot_train_step.py <dataset_root> <steps> <batch_size> \
        <num_workers> <out.json>

Builds what ``lerobot-train`` builds for ACT (features from the dataset, ImageNet stats for the cameras, the
processors, AdamW at the ACT preset, gradient clip 10; backbone without pretrained weights, which changes nothing
in speed) and times each step from asking the DataLoader for a batch to the optimizer step. Writes JSON: per-step
``step_s`` and ``data_s`` (time spent waiting for the batch) and ``setup_s``.
"""

import json
import sys
import time
from pathlib import Path

import torch
from lerobot.configs.types import FeatureType
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.datasets.utils import dataset_to_policy_features
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.factory import make_pre_post_processors

REPO_ID = 'positronic/bench'
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).reshape(3, 1, 1)


def main(root: Path, steps: int, batch_size: int, num_workers: int, out: Path) -> None:
    start = time.perf_counter()
    torch.manual_seed(1000)
    meta = LeRobotDatasetMetadata(REPO_ID, root=root)
    features = dataset_to_policy_features(meta.features)
    outputs = {k: f for k, f in features.items() if f.type is FeatureType.ACTION}
    inputs = {k: f for k, f in features.items() if k not in outputs}
    config = ACTConfig(
        input_features=inputs,
        output_features=outputs,
        pretrained_backbone_weights=None,
        device='cpu',
        push_to_hub=False,
    )
    delta = {'action': [i / meta.fps for i in config.action_delta_indices]}
    dataset = LeRobotDataset(REPO_ID, root=root, delta_timestamps=delta)
    stats = {k: dict(v) for k, v in meta.stats.items()}
    for key in config.image_features:
        stats[key]['mean'], stats[key]['std'] = IMAGENET_MEAN.numpy(), IMAGENET_STD.numpy()
    preprocessor, _ = make_pre_post_processors(config, dataset_stats=stats)
    policy = ACTPolicy(config)
    policy.train()
    optimizer = torch.optim.AdamW(
        policy.get_optim_params(), lr=config.optimizer_lr, weight_decay=config.optimizer_weight_decay
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
        drop_last=False,
        prefetch_factor=2 if num_workers else None,
    )
    batches = iter(loader)
    setup_s = time.perf_counter() - start

    step_s, data_s = [], []
    for _ in range(steps):
        tick = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        data_s.append(time.perf_counter() - tick)
        batch = preprocessor(batch)
        loss, _ = policy.forward(batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad()
        step_s.append(time.perf_counter() - tick)
    out.write_text(json.dumps({'step_s': step_s, 'data_s': data_s, 'setup_s': setup_s, 'torch': torch.__version__}))


if __name__ == '__main__':
    root, steps, batch_size, num_workers, out = sys.argv[1:6]
    main(Path(root), int(steps), int(batch_size), int(num_workers), Path(out))
