"""Diagnostic: ACT with the cube poses given as state instead of camera images.

This separates the two halves of the stacking problem. If ACT fed the true cube poses (``observation.
environment_state``, the input LeRobot's ACT has for privileged state) stacks on unseen seeds, then action
chunking, the demonstrations and the control loop are sound and what is left is seeing the cubes. If it fails,
the limit is on the control side, and vision work cannot fix it.

Everything runs in one process without rendering: demonstrations at the policy rate, training on the ACT model
of this package, evaluation with the project's loop and success measure. Prints one table row per evaluation.

    python experiments/oracle_state.py --demos 50 --steps 6000 --actions-per-query 10 20
"""

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from positronic import keys
from positronic.evaluation.drivers import TimedDriver
from positronic.evaluation.episode import EpisodeRun, LoopSettings
from positronic.sim import StackingExpert, World
from positronic.sim.expert import grasp_yaw
from positronic.vendors.lerobot.act.config import (
    ACTION_IS_PAD_KEY,
    ACTION_KEY,
    ENV_STATE_KEY,
    STATE_KEY,
    ACTConfig,
    FeatureType,
    PolicyFeature,
)
from positronic.vendors.lerobot.act.policy import ACTPolicy
from positronic.vendors.lerobot.codec import AbsolutePoseAction, canonical_poses

FPS = 15
ACTION = AbsolutePoseAction()
"""The codecs' action: commanded pose and gripper, encoded for training and decoded into robot commands."""


def env_state(world: World) -> np.ndarray:
    """Green then red cube: position (3) and the yaw as (cos 4y, sin 4y), which is what a cube's symmetry keeps."""
    cubes = world.cube_poses()
    parts = []
    for name in ('green', 'red'):
        yaw = grasp_yaw(cubes[name][3:])
        parts.append(np.r_[cubes[name][:3], np.cos(4 * yaw), np.sin(4 * yaw)])
    return np.concatenate(parts).astype(np.float32)


def robot_state(observation: Mapping[str, Any], with_dq: bool) -> np.ndarray:
    """End-effector pose (7) and grip, then the joint velocities (7) when ``with_dq``."""
    parts = [canonical_poses(observation[keys.ROBOT_EE_POSE]), [observation[keys.GRIP]]]
    if with_dq:
        parts.append(observation[keys.ROBOT_DQ])
    return np.concatenate(parts).astype(np.float32)


def record(seeds: range, with_dq: bool = False, blend: float = 0.0) -> list[dict[str, np.ndarray]]:
    """Expert episodes at FPS: state (T, 8 or 15), env (T, 10), action (T, 8); only those that stack are kept.

    ``blend`` is the expert's (:class:`StackingExpert`): 0 stops at every waypoint."""
    episodes = []
    world = World(camera_size=(32, 32))
    for seed in tqdm(seeds, desc='record', unit='episode'):
        world.reset(seed)
        expert = StackingExpert.for_world(world, np.random.default_rng(seed), blend=blend)
        states, envs, actions = [], [], []
        for tick in range(int(np.ceil((expert.duration_s + 0.5) * FPS))):
            pose, grip = expert.command(tick / FPS)
            states.append(robot_state(world.robot_state(), with_dq))
            envs.append(env_state(world))
            actions.append(ACTION.encode(pose, grip))
            world.command(pose, grip)
            world.step(1 / FPS)
        if world.stacking_success() >= 1.0:
            episodes.append({'state': np.stack(states), 'env': np.stack(envs), 'action': np.stack(actions)})
    world.close()
    return episodes


@dataclass(frozen=True)
class Stats:
    """Per-dimension mean and std (+ 0.01) of 'state', 'env' and 'action' over the demonstrations."""

    mean: dict[str, np.ndarray]
    std: dict[str, np.ndarray]

    @classmethod
    def of(cls, episodes: list[dict[str, np.ndarray]]) -> 'Stats':
        values = {k: np.concatenate([e[k] for e in episodes]) for k in ('state', 'env', 'action')}
        return cls({k: v.mean(0) for k, v in values.items()}, {k: v.std(0) + 1e-2 for k, v in values.items()})

    def norm(self, key: str, x: np.ndarray) -> np.ndarray:
        return (x - self.mean[key]) / self.std[key]


def make_policy(chunk: int, dim: int, use_vae: bool, lr: float, state_dim: int = 8) -> ACTPolicy:
    config = ACTConfig(
        input_features={
            STATE_KEY: PolicyFeature(FeatureType.STATE, (state_dim,)),
            ENV_STATE_KEY: PolicyFeature(FeatureType.ENV, (10,)),
        },
        output_features={ACTION_KEY: PolicyFeature(FeatureType.ACTION, (8,))},
        chunk_size=chunk,
        n_action_steps=chunk,
        dim_model=dim,
        dim_feedforward=4 * dim,
        use_vae=use_vae,
        dropout=0.0,
        pretrained_backbone_weights=None,
        optimizer_lr=lr,
        optimizer_lr_backbone=lr,
    )
    return ACTPolicy(config, load_backbone_weights=False)


def train(policy: ACTPolicy, episodes, stats: Stats, steps: int, batch: int, seed: int) -> list[float]:
    chunk = policy.config.chunk_size
    state = np.concatenate([stats.norm('state', e['state']) for e in episodes])
    env = np.concatenate([stats.norm('env', e['env']) for e in episodes])
    actions, pads = [], []
    for e in episodes:
        a = stats.norm('action', e['action'])
        n = len(a)
        idx = np.arange(n)[:, None] + np.arange(chunk)[None]
        pads.append(idx >= n)
        actions.append(a[np.minimum(idx, n - 1)])
    action, pad = np.concatenate(actions), np.concatenate(pads)
    tensors = [torch.from_numpy(x) for x in (state, env, action, pad)]
    gen = torch.Generator().manual_seed(seed)
    optim = torch.optim.AdamW(policy.get_optim_params(), lr=policy.config.optimizer_lr, weight_decay=1e-4)
    policy.train()
    losses = []
    for _ in tqdm(range(steps), desc='train', unit='step'):
        i = torch.randint(len(state), (batch,), generator=gen)
        b = {
            STATE_KEY: tensors[0][i],
            ENV_STATE_KEY: tensors[1][i],
            ACTION_KEY: tensors[2][i],
            ACTION_IS_PAD_KEY: tensors[3][i],
        }
        loss, logs = policy(b)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 10.0)
        optim.step()
        losses.append(logs['l1_loss'])
    return losses


class OraclePolicy:
    """Runs the trained ACT in the evaluation loop, reading the cube poses from the world it is attached to."""

    def __init__(self, policy: ACTPolicy, stats: Stats):
        self.policy, self.stats, self.world = policy, stats, None

    def attach_world(self, world: World, seed: int) -> None:
        self.world = world

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        pass

    @property
    def meta(self) -> dict[str, Any]:
        return {'type': 'oracle-act'}

    def close(self) -> None:
        pass

    @torch.no_grad()
    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        s = self.stats
        state = robot_state(observation, with_dq=self.policy.config.robot_state_feature.shape[0] > 8)
        batch = {
            STATE_KEY: torch.from_numpy(s.norm('state', state)[None]).float(),
            ENV_STATE_KEY: torch.from_numpy(s.norm('env', env_state(self.world))[None]).float(),
        }
        chunk = self.policy.predict_action_chunk(batch)[0].numpy() * s.std['action'] + s.mean['action']
        return [ACTION.decode(a) for a in chunk]


def evaluate(policy, seeds: range, actions_per_query: int | None, sim_s: float = 15.0) -> int:
    """Successes of ``policy`` on ``seeds``, each run for ``sim_s`` sim seconds by the evaluation's timed driver."""
    settings = LoopSettings(policy_fps=FPS, actions_per_chunk=actions_per_query)
    driver = TimedDriver(num_iterations=len(seeds), simulation_time=sim_s)
    with World(camera_size=(32, 32)) as world:
        results = driver.run(lambda i: EpisodeRun(world, policy, settings, i, seeds[i]), idle=lambda: None)
        return sum(result.success for result in results)


def save(path: str, policy: ACTPolicy, stats: Stats) -> None:
    torch.save(
        {'config': policy.config.to_dict(), 'model': policy.state_dict(), 'mean': stats.mean, 'std': stats.std}, path
    )


def load(path: str) -> tuple[ACTPolicy, Stats]:
    saved = torch.load(path, weights_only=False)
    policy = ACTPolicy(ACTConfig.from_dict(saved['config']), load_backbone_weights=False)
    policy.load_state_dict(saved['model'])
    return policy, Stats(saved['mean'], saved['std'])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--demos', type=int, default=50, help='demonstrations, seeds 0 .. demos - 1')
    parser.add_argument('--steps', type=int, default=4000, help='training steps')
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--chunk', type=int, default=20, help='ACT chunk size')
    parser.add_argument('--dim', type=int, default=256, help='ACT dim_model (feed-forward 4x)')
    parser.add_argument('--lr', type=float, default=1e-4)
    parser.add_argument('--vae', action='store_true', help="train with ACT's VAE")
    parser.add_argument('--with-dq', action='store_true', help='add the joint velocities to the robot state')
    parser.add_argument(
        '--blend', type=float, default=0.0, help="the expert's move overlap (0-0.5; 0 stops at every waypoint)"
    )
    parser.add_argument('--eval-seeds', type=int, default=50, help='unseen evaluation seeds, 10000 ..')
    parser.add_argument('--train-eval-seeds', type=int, default=10, help='training seeds evaluated, 0 ..')
    parser.add_argument('--sim-seconds', type=float, default=15.0, help='sim time per evaluation episode')
    parser.add_argument('--actions-per-query', type=int, nargs='+', default=[10])
    parser.add_argument('--threads', type=int, default=None, help='torch threads (default: torch decides)')
    parser.add_argument('--save', help='file to save the trained policy and statistics to')
    parser.add_argument('--load', help='file of a policy saved with --save: skip recording and training')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[tuple[int, int, int]]:
    """Run the experiment; returns (actions per query, training-seed successes, unseen-seed successes) rows."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    if args.load:
        policy, stats = load(args.load)
    else:
        episodes = record(range(args.demos), args.with_dq, args.blend)
        print(f'{len(episodes)}/{args.demos} demonstrations kept, {sum(len(e["state"]) for e in episodes)} frames')
        stats = Stats.of(episodes)
        policy = make_policy(args.chunk, args.dim, args.vae, args.lr, episodes[0]['state'].shape[1])
        losses = train(policy, episodes, stats, args.steps, args.batch, seed=0)
        print(f'trained in {time.perf_counter() - start:.0f} s; L1 last 200 steps {np.mean(losses[-200:]):.4f}')
        if args.save:
            save(args.save, policy, stats)
    oracle = OraclePolicy(policy, stats)
    print('| actions per query | training seeds | unseen seeds (10000+) |')
    print('|---|---|---|')
    rows = []
    for n in args.actions_per_query:
        train_wins = evaluate(oracle, range(args.train_eval_seeds), n, args.sim_seconds)
        wins = evaluate(oracle, range(10000, 10000 + args.eval_seeds), n, args.sim_seconds)
        print(f'| {n} | {train_wins}/{args.train_eval_seeds} | {wins}/{args.eval_seeds} |', flush=True)
        rows.append((n, train_wins, wins))
    return rows


if __name__ == '__main__':
    main()
