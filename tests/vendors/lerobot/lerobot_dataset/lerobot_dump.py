"""Load a dataset with LeRobot 0.4.4 and dump what it returns (run in the side interpreter by the compat tests).

    python lerobot_dump.py ROOT OUT.npz ACTION_STEPS [STRIDE]

Saves, for every item (or every STRIDE-th item): its numeric values, camera frames (uint8 = round(255 * value),
(N, H, W, 3)), task string, and the ``action`` chunk of ACTION_STEPS steps from ``delta_timestamps`` with its
``action_is_pad``; plus the metadata LeRobot read (stats, tasks, episode index ranges, video timestamps) as JSON.
"""

import json
import sys

import numpy as np
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def main() -> None:
    root, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stride = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    probe = LeRobotDataset('compat/probe', root=root)
    fps = probe.fps
    deltas = {'action': [k / fps for k in range(steps)]}
    dataset = LeRobotDataset('compat/test', root=root, delta_timestamps=deltas)
    items = [dataset[i] for i in range(0, len(dataset), stride)]
    arrays = {}
    for key in items[0]:
        value = items[0][key]
        if isinstance(value, torch.Tensor):
            stacked = torch.stack([item[key] for item in items])
            if key in dataset.meta.video_keys:
                stacked = (stacked.permute(0, 2, 3, 1) * 255).round().to(torch.uint8)
            arrays[key] = stacked.numpy()
    arrays['task'] = np.array([item['task'] for item in items])
    episodes = dataset.meta.episodes
    meta = {
        'len': len(dataset),
        'num_episodes': dataset.num_episodes,
        'total_episodes': dataset.meta.total_episodes,
        'tasks': list(dataset.meta.tasks.index),
        'stats': {f: {s: np.asarray(v).tolist() for s, v in st.items()} for f, st in dataset.meta.stats.items()},
        'episodes': {
            col: list(episodes[col])
            for col in episodes.column_names
            if col.startswith(('dataset_', 'videos/')) or col in ('episode_index', 'length')
        },
    }
    arrays['meta'] = np.array(json.dumps(meta))
    np.savez(out, **arrays)


if __name__ == '__main__':
    main()
