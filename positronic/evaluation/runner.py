"""A whole evaluation run: the world, the policy, the driver's iterations, the recording and the summary."""

import contextlib
import dataclasses
import datetime
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from positronic.dataset import LocalDatasetWriter
from positronic.evaluation.drivers import StartEpisode
from positronic.evaluation.episode import EpisodeRun, LoopSettings
from positronic.evaluation.interrupts import DeferredInterrupt
from positronic.evaluation.plot import SUMMARY_PNG, write_summary_png
from positronic.evaluation.recorder import EpisodeRecorder, json_static
from positronic.evaluation.results import SUMMARY_JSON, IterationResult, RunSummary, write_json_atomic
from positronic.evaluation.retry import call_with_retry
from positronic.evaluation.viewer import CameraWindow, open_viewer
from positronic.policy.base import ACTIONS_PER_QUERY, Policy
from positronic.policy.remote import SERVER_META_PREFIX, flat_meta
from positronic.sim import World


class Driver(Protocol):
    """What starts and stops iterations (see ``positronic.evaluation.drivers``)."""

    show_gui: bool

    def run(self, start_episode: StartEpisode, idle: Any) -> Any: ...


def describe(result: IterationResult) -> str:
    """One line about a finished iteration."""
    outcome = 'success' if result.success else 'failure'
    line = f'iteration {result.iteration} (seed {result.seed}): {outcome}, max score {result.max_score:.2f}'
    if result.time_to_success_s is not None:
        line += f', stacked at {result.time_to_success_s:.2f} s'
    line += f', {result.policy_calls} policy calls'
    return line + (f' [{result.failure}]' if result.failure else '')


def actions_per_query(policy_meta: Mapping[str, Any]) -> int | None:
    """How many actions the policy answers per query, when its meta says (:data:`ACTIONS_PER_QUERY`, or the
    server's for a remote policy); else None."""
    for key in (ACTIONS_PER_QUERY, SERVER_META_PREFIX + ACTIONS_PER_QUERY):
        value = policy_meta.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def run_evaluation(
    policy: Policy,
    driver: Driver,
    settings: LoopSettings,
    seed: int = 0,
    camera_size: tuple[int, int] = (320, 240),
    output_dir: Path | str | None = None,
) -> RunSummary:
    """Run ``driver``'s iterations of ``policy`` in a fresh world; iteration ``i`` uses seed ``seed + i``.

    Prints a line per iteration, then the summary table. With ``output_dir``, each kept iteration is a raw
    episode of the dataset there, and ``summary.json`` / ``summary.png`` describe the run. Ctrl+C ends the run
    at the next control tick (a second press at once): the running iteration is discarded, the finished ones
    are summarized. Raises PolicyUnavailableError when the policy cannot be reached at the start (after
    ``settings.connect_attempts`` tries).
    """
    policy_meta = call_with_retry(
        lambda: policy.meta, 'connecting to the policy', settings.connect_attempts, settings.retry_delay_s
    )
    settings.check_actions_per_chunk(actions_per_query(policy_meta), f"the policy's {ACTIONS_PER_QUERY}")
    output = Path(output_dir).expanduser() if output_dir is not None else None
    writer = LocalDatasetWriter(output) if output is not None else None
    statics = {
        **settings.recorded_statics(),
        'simulation.camera_size': list(camera_size),
        **{f'inference.policy.{k}': v for k, v in flat_meta(policy_meta).items()},
    }
    with contextlib.ExitStack() as resources:
        resources.callback(policy.close)
        world = resources.enter_context(World(seed=seed, camera_size=tuple(camera_size), show_gui=driver.show_gui))
        window: CameraWindow | None = open_viewer() if driver.show_gui else None
        if window is not None:
            resources.callback(window.close)
        iterations = _Iterations(world, policy, settings, seed, writer, window, statics)
        results, interrupted = iterations.run(driver)

    summary = RunSummary(results, interrupted=interrupted)
    print(summary.table(), flush=True)
    if output is not None:
        run_info = _run_info(policy_meta, driver, settings, seed, camera_size)
        write_json_atomic(summary.to_json(run_info), output / SUMMARY_JSON)
        write_summary_png(summary, output / SUMMARY_PNG, settings.success_threshold)
        print(f'recorded {len(results)} episode(s), {SUMMARY_JSON} and {SUMMARY_PNG} in {output}')
    return summary


@dataclasses.dataclass
class _Iterations:
    """The driver's iterations in one world: starts each episode (and its recording), defers Ctrl+C to a tick."""

    world: World
    policy: Policy
    settings: LoopSettings
    seed: int
    writer: LocalDatasetWriter | None
    window: CameraWindow | None
    statics: dict[str, Any]
    ctrl_c: DeferredInterrupt = dataclasses.field(default_factory=DeferredInterrupt)
    recorder: EpisodeRecorder | None = None
    """The latest episode's recording: the only one that can still be open."""

    def run(self, driver: Driver) -> tuple[list[IterationResult], bool]:
        """The finished iterations' results, and whether Ctrl+C ended the run (discarding the running one)."""
        results: list[IterationResult] = []
        try:
            with self.ctrl_c:
                for result in driver.run(self.start_episode, self.idle):
                    results.append(result)
                    tqdm.write(describe(result))
        except KeyboardInterrupt:
            if self.recorder is not None:
                self.recorder.abort()
            tqdm.write('interrupted: the running iteration was discarded')
            return results, True
        return results, False

    def start_episode(self, iteration: int) -> EpisodeRun:
        self.ctrl_c.check()
        self.recorder = EpisodeRecorder(self.writer.new_episode()) if self.writer is not None else None
        return EpisodeRun(
            self.world,
            self.policy,
            self.settings,
            iteration,
            self.seed + iteration,
            self.recorder,
            self.window,
            self.statics,
            self.ctrl_c.check,
        )

    def idle(self) -> None:
        self.ctrl_c.check()
        if self.window is not None:
            self.window.refresh()


def _run_info(
    policy_meta: dict[str, Any], driver: Driver, settings: LoopSettings, seed: int, camera_size: tuple[int, int]
) -> dict[str, Any]:
    """What ``summary.json`` says about the run: the command line, when it finished, the policy and the settings."""
    return {
        'command': sys.argv,
        'finished_utc': datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'),
        'policy': json_static(policy_meta),
        'seed': seed,
        'camera_size': list(camera_size),
        'settings': dataclasses.asdict(settings),
        'driver': {
            'type': type(driver).__name__,
            **json_static({k: v for k, v in vars(driver).items() if not k.startswith('_')}),
        },
    }
