"""How far a checkpoint's first chunk lands from the demonstration's, open loop, on a LeRobot dataset.

    python experiments/first_chunk_error.py <pretrained_model dir> <lerobot dataset> <frame cache dir> [--episodes 10]

For each episode and each start frame (0, 10, 20) the chunk predicted from the recorded observation is compared
with the recorded actions: the distance (cm) between the last action's position and the recorded one. At frame 0
the arm is at home, so only the cameras say where the cubes are: run it on the training dataset and on a dataset of
unseen layouts to tell memorizing from localizing (docs/results.md).
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from positronic.vendors.lerobot.act.normalize import load_processors
from positronic.vendors.lerobot.act.policy import ACTPolicy
from positronic.vendors.lerobot.lerobot_dataset import DatasetReader
from positronic.vendors.lerobot.training.frame_cache import FrameCache
from positronic.vendors.lerobot.training.training_data import ChunkDataset

START_FRAMES = (0, 10, 20)


def end_of_chunk_errors(pretrained: Path, dataset: Path, cache: Path, episodes: int) -> dict[int, np.ndarray]:
    """Start frame -> distances (cm, one per episode) between the chunk's last position and the recorded one."""
    policy = ACTPolicy.from_pretrained(pretrained)
    processors = load_processors(pretrained)
    reader = DatasetReader(dataset)
    keys = [k for k, f in policy.config.input_features.items() if f.type.value in ('STATE', 'ENV')]
    data = ChunkDataset(reader, FrameCache.open_or_build(reader, cache), policy.config.chunk_size, keys)
    actions, last = data.columns['action'], policy.config.chunk_size - 1
    out = {}
    for start in START_FRAMES:
        errors = []
        for episode in reader.episodes[:episodes]:
            index = episode.from_index + start
            if index + last >= episode.to_index:
                continue
            batch = processors.normalize(data.batch(np.array([index])))
            chunk = processors.unnormalize_action(policy.predict_action_chunk(batch))[0].numpy()
            errors.append(100 * np.linalg.norm(chunk[last, :3] - actions[index + last, :3]))
        out[start] = np.array(errors)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('pretrained', type=Path)
    parser.add_argument('dataset', type=Path)
    parser.add_argument('cache', type=Path, help='frame cache directory (built there when missing)')
    parser.add_argument('--episodes', type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for start, errors in end_of_chunk_errors(args.pretrained, args.dataset, args.cache, args.episodes).items():
        print(f'frame {start:3d}: end-of-chunk position error mean {errors.mean():5.2f} cm, max {errors.max():5.2f} cm')


if __name__ == '__main__':
    main()
