"""Closed-loop evaluation speed and the scripted expert's success rate, printed as a table.

- throughput: sim seconds per wall second of ``positronic.evaluation`` iterations, headless, two cameras,
  ``policy_fps`` 15, with a trivial in-process policy (hold the measured pose; one action per chunk, so
  both cameras render every tick). Rows: no recording; recording to a raw dataset; the same trivial policy
  served over protocol v1 on loopback (``RemotePolicy``). Target: >= 3x real time. Also per CPU second of
  the process (all threads), which does not depend on how busy a shared machine is.
- expert: ``--policy=.expert`` through the same loop over ``--expert-seeds`` seeds of ``--seconds`` each
  (seeds from 1000, apart from demonstration seeds). Target: >= 95% success.

Usage: MUJOCO_GL=egl python benchmarks/bench_inference.py [--camera 320 240] [--expert-seeds 20]
"""

import argparse
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from harness import machine_lines, print_table, record

from positronic import keys
from positronic.dataset import LocalDatasetWriter
from positronic.evaluation.drivers import TimedDriver
from positronic.evaluation.episode import EpisodeRun, LoopSettings
from positronic.evaluation.recorder import EpisodeRecorder
from positronic.evaluation.runner import run_evaluation
from positronic.offboard.server import ServerThread
from positronic.policy.action import cartesian_action
from positronic.policy.expert import ExpertPolicy
from positronic.policy.remote import RemotePolicy
from positronic.sim import World

EXPERT_FIRST_SEED = 1000


class HoldPolicy:
    """The trivial policy: stay at the measured end-effector pose, gripper open; one action per call."""

    meta: Mapping[str, Any] = {'type': 'hold'}

    def select_action(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [cartesian_action(observation[keys.ROBOT_EE_POSE], 0.0)]

    def reset(self, context: Mapping[str, Any] | None = None) -> None:
        pass

    def close(self) -> None:
        pass


class HoldModel(HoldPolicy):
    def warm_up(self) -> None:
        pass

    def infer(self, observation: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.select_action(observation)

    def unload(self) -> None:
        pass


class HoldSource:
    def model_ids(self) -> list[str]:
        return ['hold']

    def resolve(self, model_id: str | None) -> str:
        return 'hold'

    def load(self, model_id: str) -> HoldModel:
        return HoldModel()


def throughput(policy, camera: tuple[int, int], iterations: int, seconds: float, record: bool) -> tuple[float, float]:
    """Sim seconds per wall second, and per CPU second of this process (all its threads; what the machine
    would reach unshared, up to parallelism), over ``iterations`` iterations of ``seconds`` each."""
    settings = LoopSettings(policy_fps=15)
    with World(camera_size=camera) as world, tempfile.TemporaryDirectory() as root:
        writer = LocalDatasetWriter(root) if record else None
        world.render()  # the renderer's context is created once, outside the timing
        sim_s = 0.0
        began, began_cpu = time.perf_counter(), time.process_time()
        for i in range(iterations):
            recorder = EpisodeRecorder(writer.new_episode()) if writer is not None else None
            episode = EpisodeRun(world, policy, settings, i, seed=i, recorder=recorder)
            while episode.elapsed_s < seconds and episode.tick():
                pass
            sim_s += episode.elapsed_s
            episode.finish()
        return sim_s / (time.perf_counter() - began), sim_s / (time.process_time() - began_cpu)


def _record_speeds(name: str, speeds: tuple[float, float]) -> tuple[float, float]:
    record('inference', f'{name}, wall', speeds[0], '>= 3x', speeds[0] >= 3, unit='x real time')
    record('inference', f'{name}, per CPU s', speeds[1], unit='x real time')
    return speeds


def _speeds(speeds: tuple[float, float]) -> str:
    return f'{speeds[0]:.1f}x real time ({speeds[1]:.1f}x per CPU s)'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--camera', type=int, nargs=2, default=[320, 240], metavar=('WIDTH', 'HEIGHT'))
    parser.add_argument('--iterations', type=int, default=2, help='throughput iterations per row')
    parser.add_argument('--seconds', type=float, default=15.0, help='sim seconds per iteration')
    parser.add_argument('--expert-seeds', type=int, default=20)
    args = parser.parse_args()
    camera = tuple(args.camera)

    print('\n'.join(machine_lines('mujoco')))
    print(f'rendering: MUJOCO_GL={os.environ.get("MUJOCO_GL")}')
    size = f'{camera[0]}x{camera[1]} x2 cams, 15 fps, {args.iterations} x {args.seconds:g} s'
    rows = []
    for name, recording in (('throughput, hold policy', False), ('throughput, hold policy + recording', True)):
        speeds = _record_speeds(name, throughput(HoldPolicy(), camera, args.iterations, args.seconds, recording))
        rows.append((name, size, _speeds(speeds), '>= 3x'))
    with ServerThread(HoldSource(), port=0) as server:
        remote = RemotePolicy(host='127.0.0.1', port=server.port)
        speeds = throughput(remote, camera, args.iterations, args.seconds, record=False)
        remote.close()
    _record_speeds('throughput, hold policy over loopback', speeds)
    rows.append(('throughput, hold policy over loopback', size, _speeds(speeds), '>= 3x'))

    if args.expert_seeds > 0:
        driver = TimedDriver(args.expert_seeds, args.seconds)
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as table:
            summary = run_evaluation(ExpertPolicy(), driver, LoopSettings(), EXPERT_FIRST_SEED, camera)
        wall_s = time.perf_counter() - began
        low, high = summary.interval_95
        failed = [r.seed for r in summary.results if not r.success]
        rate = 100 * summary.successes / len(summary.results)
        record('inference', f'expert success, {len(summary.results)} seeds', rate, '>= 95%', rate >= 95, unit='%')
        rows.append(
            (
                'expert success rate',
                f'{args.expert_seeds} seeds from {EXPERT_FIRST_SEED}, {args.seconds:g} s each',
                f'{summary.successes}/{len(summary.results)} (95% CI {100 * low:.0f}-{100 * high:.0f}%)',
                '>= 95%',
            )
        )
        expert_size = f'{camera[0]}x{camera[1]} x2 cams, 15 fps, {args.expert_seeds} x {args.seconds:g} s'
        speed = args.expert_seeds * args.seconds / wall_s
        rows.append(('expert run speed (one action per call)', expert_size, f'{speed:.1f}x real time', '-'))
        if failed:
            print(table.getvalue())
            print(f'expert failed on seeds {failed}')

    print_table(('measure', 'sizes', 'value', 'target'), rows)


if __name__ == '__main__':
    main()
