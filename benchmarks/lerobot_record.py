"""LeRobot 0.4.4's recording path on given frames; run by bench_lerobot_dataset.py in the side interpreter.

    python lerobot_record.py FRAMES.npz ROOT EPISODES

Writes EPISODES episodes with ``LeRobotDataset.create`` (defaults: AV1) + ``add_frame`` + ``save_episode`` +
``finalize`` and prints one JSON line: frames/s (one frame = both cameras + state + action) and video MiB.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
from lerobot.datasets.lerobot_dataset import LeRobotDataset

FPS = 30


def main() -> None:
    frames_file, root, episodes = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    data = np.load(frames_file)
    left, side, state, action = data['left'], data['side'], data['state'], data['action']
    height, width = left.shape[1:3]
    video = {'dtype': 'video', 'shape': (height, width, 3), 'names': ['height', 'width', 'channels']}
    features = {
        'observation.state': {'dtype': 'float32', 'shape': (8,), 'names': [f's{i}' for i in range(8)]},
        'action': {'dtype': 'float32', 'shape': (8,), 'names': [f'a{i}' for i in range(8)]},
        'observation.images.left': video,
        'observation.images.side': video,
    }
    start = time.perf_counter()
    dataset = LeRobotDataset.create('bench/lerobot', FPS, features, root=root, robot_type='bench')
    for _ in range(episodes):
        for k in range(len(left)):
            dataset.add_frame(
                {
                    'observation.state': state[k],
                    'action': action[k],
                    'observation.images.left': left[k],
                    'observation.images.side': side[k],
                    'task': 'stack the cubes',
                }
            )
        dataset.save_episode()
    dataset.finalize()
    elapsed = time.perf_counter() - start
    video_mib = sum(p.stat().st_size for p in (root / 'videos').rglob('*.mp4')) / 2**20
    print(json.dumps({'frames_per_s': episodes * len(left) / elapsed, 'video_mib': video_mib}))


if __name__ == '__main__':
    main()
