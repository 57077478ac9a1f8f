"""One evaluation iteration: the control loop between the simulated world and a policy.

Each tick (``1 / policy_fps`` s of sim time): observe (robot state, camera frames, task); when the action
queue is empty, query the policy and queue its chunk (at most ``actions_per_chunk`` actions of it); execute
the oldest queued action (wire form -> pose + grip -> ``World.command``); step the world. With
``temporal_ensemble_coeff`` the policy is queried every tick and the executed action is the ensemble's
(:mod:`positronic.evaluation.ensemble`). The stacking
score is read every tick. A policy failure or a rejected action ends the iteration as a failure with its
reason; the robot keeps its last accepted command.
"""

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from positronic import keys
from positronic.evaluation.ensemble import TemporalEnsemble
from positronic.evaluation.recorder import EpisodeRecorder
from positronic.evaluation.results import IterationResult
from positronic.evaluation.retry import call_with_retry
from positronic.evaluation.settings import LoopSettings
from positronic.evaluation.success import NS_PER_S, SuccessTracker
from positronic.policy.action import CartesianAction, parse_action
from positronic.policy.base import Policy
from positronic.sim import World


@runtime_checkable
class WorldAwarePolicy(Protocol):
    """A policy that reads the simulator's ground truth (e.g. the scripted expert sees the cube poses).

    The loop calls ``attach_world`` after every world reset and before ``Policy.reset``.
    """

    def attach_world(self, world: World, seed: int) -> None: ...


Viewer = Callable[[Mapping[str, Any], str], None]
"""``viewer(observation, status_line)``: shows the camera frames of one tick."""


class EpisodeRun:
    """One iteration in progress: ``tick()`` until it returns False or the driver stops, then ``finish()``.

    Construction resets the world with ``seed`` and starts the policy's episode (retrying while its server
    is unreachable; a policy that still cannot start makes the iteration a failure with zero ticks).
    ``before_tick`` is called first thing in every tick (the runner raises a deferred Ctrl+C there).
    """

    def __init__(
        self,
        world: World,
        policy: Policy,
        settings: LoopSettings,
        iteration: int,
        seed: int,
        recorder: EpisodeRecorder | None = None,
        viewer: Viewer | None = None,
        statics: Mapping[str, Any] | None = None,
        before_tick: Callable[[], None] | None = None,
    ):
        self.world = world
        self.policy = policy
        self.settings = settings
        self.iteration = iteration
        self.seed = seed
        self.recorder = recorder
        self.viewer = viewer
        self.statics = dict(statics or {})
        self._before_tick = before_tick
        self.failure: str | None = None
        self.latencies_s: list[float] = []
        self.score_times_s: list[float] = []
        self.scores: list[float] = []
        self._queue: deque[Mapping[str, Any]] = deque()
        coeff = settings.temporal_ensemble_coeff
        self._ensemble = TemporalEnsemble(coeff) if coeff is not None else None
        self._dt_s = 1.0 / settings.policy_fps

        world.reset(seed)
        if isinstance(policy, WorldAwarePolicy):
            policy.attach_world(world, seed)
        self.start_ns = world.time_ns
        self.tracker = SuccessTracker(settings.success_threshold, settings.success_hold_s, self.start_ns)
        context = {keys.TASK: settings.task}
        try:
            call_with_retry(
                lambda: policy.reset(context), 'starting the policy', settings.connect_attempts, settings.retry_delay_s
            )
        except Exception as error:
            self.failure = f'policy reset failed: {_describe(error)}'
        self._wall_start = time.monotonic()

    @property
    def elapsed_s(self) -> float:
        """Sim seconds since the iteration started."""
        return (self.world.time_ns - self.start_ns) / NS_PER_S

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def tick(self) -> bool:
        """Run one control period; False once the iteration has ended by a fault (nothing more to run)."""
        if self._before_tick is not None:
            self._before_tick()
        if self.failed:
            return False
        world = self.world
        now_ns = world.time_ns
        score = world.stacking_success()
        self.tracker.update(now_ns, score)
        self.score_times_s.append((now_ns - self.start_ns) / NS_PER_S)
        self.scores.append(score)

        needs_frames = (
            not self._queue or self._ensemble is not None or self.recorder is not None or self.viewer is not None
        )
        observation = world.observation() if needs_frames else world.robot_state()
        if self.recorder is not None:
            self.recorder.record_tick(now_ns, observation, score, world.box_distance())
        if self.viewer is not None:
            self.viewer(
                observation,
                f'iteration {self.iteration}  seed {self.seed}  t {self.elapsed_s:5.2f} s  score {score:.2f}',
            )
        if (not self._queue or self._ensemble is not None) and not self._query(
            {**observation, keys.TASK: self.settings.task}
        ):
            return False

        try:
            target = self._next_target()
            world.command(target.pose, target.grip)
        except ValueError as error:  # InvalidActionError, UnreachablePoseError, a non-finite grip
            self.failure = f'rejected action: {error}'
            return False
        if self.recorder is not None:
            self.recorder.record_command(world.time_ns, target.pose, target.grip)
        world.step(self._dt_s)
        if self.settings.realtime:
            delay = self._wall_start + self.elapsed_s - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        return True

    def _next_target(self) -> CartesianAction:
        """The action to execute this tick (InvalidActionError for a malformed one)."""
        if self._ensemble is None:
            return parse_action(self._queue.popleft())
        self._ensemble.add([parse_action(action) for action in self._queue])
        self._queue.clear()
        return self._ensemble.pop()

    def _query(self, observation: Mapping[str, Any]) -> bool:
        """Queue the policy's next chunk; on failure record why and return False."""
        started = time.perf_counter()
        try:
            chunk = self.policy.select_action(observation)
        except Exception as error:
            self.failure = f'policy error: {_describe(error)}'
            return False
        finally:
            latency_s = time.perf_counter() - started
            self.latencies_s.append(latency_s)
        if not isinstance(chunk, list | tuple) or not chunk:
            self.failure = f'policy error: expected a non-empty list of actions, got {chunk!r:.100}'
            return False
        limit = self.settings.actions_per_chunk
        self._queue.extend(chunk if limit is None else chunk[:limit])
        if self.settings.simulate_latency:
            self.world.step(latency_s)
        return True

    def finish(self, keep: bool = True) -> IterationResult | None:
        """End the iteration. ``keep``: finalize its recording (with ``statics``, the task and the outcome)
        and return its result; otherwise delete the recording and return None."""
        tracker = self.tracker
        result = IterationResult(
            iteration=self.iteration,
            seed=self.seed,
            success=tracker.succeeded and not self.failed,
            max_score=tracker.max_score,
            time_to_success_s=tracker.time_to_success_s if not self.failed else None,
            policy_calls=len(self.latencies_s),
            latencies_s=self.latencies_s,
            duration_s=self.elapsed_s,
            failure=self.failure,
            score_times_s=self.score_times_s,
            scores=self.scores,
            episode_path=self.recorder.path if self.recorder is not None else None,
        )
        if self.recorder is not None:
            if not keep or not self.scores:  # discarded, or never ran a tick: nothing worth a recording
                self.recorder.abort()
                result.episode_path = None
                return result if keep else None
            outcome = result.to_json()
            del outcome['episode_path']
            outcome['simulation.iteration'] = outcome.pop('iteration')
            self.recorder.finalize({**self.statics, keys.TASK: self.settings.task, **outcome})
        return result if keep else None


def _describe(error: Exception) -> str:
    return f'{type(error).__name__}: {error}' if str(error) else type(error).__name__
