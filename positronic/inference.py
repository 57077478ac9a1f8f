"""``positronic-inference``: run a policy on a robot and measure it. Command ``sim``: the simulated stacking task.

positronic-inference sim --policy=.remote --policy.host=localhost --driver.num_iterations=20
positronic-inference sim --policy=.expert --output_dir=~/datasets/inference_logs/expert
positronic-inference sim --policy=.act --policy.checkpoints_dir=... --driver=.keyboard --driver.show_gui=True
"""

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import configuronic as cfn

from positronic import inference_presets as policy_cfg
from positronic.command import INTERRUPTED_EXIT_CODE, UsageError, run_command
from positronic.evaluation.drivers import KeyboardDriver, NotATerminalError, TimedDriver
from positronic.evaluation.runner import run_evaluation
from positronic.evaluation.settings import LoopSettings
from positronic.policy.base import PolicyLoadError, PolicyUnavailableError

PROG = 'positronic-inference'

timed = cfn.config(num_iterations=1, simulation_time=15.0, show_gui=False)(TimedDriver)
"""``--driver.num_iterations`` iterations of ``--driver.simulation_time`` sim seconds each (the default)."""
keyboard = cfn.config(simulation_time=None, show_gui=False)(KeyboardDriver)
"""``--driver=.keyboard``: s start, p stop and keep, r reset and discard, q quit (needs a terminal)."""


LOOP_FLAGS = {field.name: field.default for field in dataclasses.fields(LoopSettings)}
"""``--policy_fps``, ``--actions_per_chunk``, ...: one flag per ``LoopSettings`` field, with its default."""


@cfn.config(
    policy=policy_cfg.remote,
    driver=timed,
    seed=0,
    camera_size=[320, 240],
    output_dir=None,
    **LOOP_FLAGS,
)
def sim(policy, driver, seed: int, camera_size: list[int], output_dir: str | None, **loop: Any):
    """Run a policy in the simulated cube-stacking task and report how often it succeeds.

    Iteration i resets the scene with seed `seed + i` and runs the policy at `policy_fps` (one action per tick,
    re-querying when `actions_per_chunk` actions of a chunk are used, default the whole chunk). An iteration
    succeeds when the stacking score stays >= `success_threshold` for `success_hold_s` sim seconds. Prints a
    table per iteration and the success rate with a 95% Wilson interval; with `output_dir`, records each
    iteration as a raw episode plus summary.json and summary.png. The sim runs as fast as it can unless
    `realtime`; `simulate_latency` advances sim time by each policy call's wall time while the robot holds.
    Policies: --policy=.remote (a protocol-v1 server), .act (a local checkpoint), .expert (scripted, sees the
    true cube poses). Drivers: --driver=.timed (default) or .keyboard. The loop's flags are the fields of
    `positronic.evaluation.settings.LoopSettings` (task, connect_attempts, retry_delay_s, ...).
    """
    settings = LoopSettings(**loop)
    if len(camera_size) != 2:
        raise UsageError(f'--camera_size must be [width, height], got {camera_size!r}')
    summary = run_evaluation(policy, driver, settings, int(seed), tuple(int(v) for v in camera_size), output_dir)
    if summary.interrupted:
        sys.exit(INTERRUPTED_EXIT_CODE)


COMMANDS = {'sim': sim}

USAGE_ERRORS = (NotATerminalError,)
"""The run cannot start as configured on this machine (a keyboard driver without a terminal): exit code 2."""
DATA_ERRORS = (PolicyUnavailableError, PolicyLoadError)
"""The policy named cannot be reached or loaded: exit code 1."""


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: ``positronic-inference sim ...``; ``argv`` replaces the command line (for tests)."""
    run_command(PROG, COMMANDS, argv, usage_errors=USAGE_ERRORS, data_errors=DATA_ERRORS)


if __name__ == '__main__':
    main()
