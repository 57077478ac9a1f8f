"""Runs LeRobot 0.4.4's ACT on a checkpoint or a config; executed with the side environment's python.

python lerobot_act.py init <pretrained_dir> <seed> <out.npz>
    build LeRobot's ACTPolicy from <pretrained_dir>/config.json after torch.manual_seed(seed); save its
    state dict and parameter order.
python lerobot_act.py run <pretrained_dir> <obs.npz> <out.npz>
    load the checkpoint and its processors the way LeRobot's tools do; save the keys it found, the actions
    of the model alone and through the processors (chunk + 12 select_action steps), and a seeded training
    loss on the obs.npz targets ("action", "action_is_pad"; the seed is in "seed").
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file


def init(pretrained_dir: Path, seed: int, out: Path) -> None:
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.act.modeling_act import ACTPolicy

    config = PreTrainedConfig.from_pretrained(pretrained_dir)
    torch.manual_seed(seed)
    policy = ACTPolicy(config)
    arrays = {f'state/{k}': v.numpy() for k, v in policy.state_dict().items()}
    arrays['parameter_order'] = np.array(json.dumps([n for n, _ in policy.named_parameters()]))
    np.savez(out, **arrays)


def run(pretrained_dir: Path, obs_file: Path, out: Path) -> None:
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    policy = ACTPolicy.from_pretrained(pretrained_dir)
    file_state = load_file(pretrained_dir / 'model.safetensors')
    model_state = policy.state_dict()
    missing = sorted(set(model_state) - set(file_state))
    unexpected = sorted(set(file_state) - set(model_state))
    differing = sorted(k for k in set(file_state) & set(model_state) if not torch.equal(file_state[k], model_state[k]))
    preprocessor, postprocessor = make_pre_post_processors(policy.config, pretrained_path=str(pretrained_dir))

    with np.load(obs_file) as data:
        inputs = {k: torch.from_numpy(v) for k, v in data.items()}
    seed = int(inputs.pop('seed'))
    targets = {k: inputs.pop(k) for k in ('action', 'action_is_pad')}
    results = {}

    results['model_chunk'] = policy.predict_action_chunk(dict(inputs)).numpy()
    policy.reset()
    results['model_select'] = np.stack([policy.select_action(dict(inputs)).numpy() for _ in range(12)])

    normalized = preprocessor(dict(inputs))
    results['normalized_state'] = normalized['observation.state'].numpy()
    chunk = policy.predict_action_chunk(normalized)
    results['processed_chunk'] = postprocessor(chunk).numpy()
    policy.reset()
    results['processed_select'] = np.stack(
        [postprocessor(policy.select_action(preprocessor(dict(inputs)))).numpy() for _ in range(12)]
    )

    batch = preprocessor({**inputs, **targets})
    results['normalized_action'] = batch['action'].numpy()
    torch.manual_seed(seed)
    policy.train()
    loss, logs = policy.forward(batch)
    results['loss'] = np.array(loss.item())
    results['l1_loss'] = np.array(logs['l1_loss'])
    results['kld_loss'] = np.array(logs['kld_loss'])
    results['keys'] = np.array(json.dumps({'missing': missing, 'unexpected': unexpected, 'differing': differing}))
    np.savez(out, **results)


if __name__ == '__main__':
    command, directory, arg, output = sys.argv[1:5]
    if command == 'init':
        init(Path(directory), int(arg), Path(output))
    else:
        run(Path(directory), Path(arg), Path(output))
