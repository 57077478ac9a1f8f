"""When an iteration succeeds: the stacking score reaches a threshold and stays there long enough."""

from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass
class SuccessTracker:
    """Follows the score of one iteration, sampled once per control tick.

    The iteration succeeds once the score has stayed at or above ``threshold`` for ``hold_s`` seconds of
    sim time (measured between ticks, so a streak that starts at the last tick never counts when
    ``hold_s > 0``). Success is final: a later drop does not undo it.
    """

    threshold: float = 1.0
    hold_s: float = 1.0
    start_ns: int = 0
    max_score: float = 0.0
    succeeded: bool = False
    success_ns: int | None = None
    """Sim time when the streak that succeeded began (its first tick at or above the threshold)."""
    _streak_start_ns: int | None = None

    def update(self, time_ns: int, score: float) -> None:
        """Take the score at sim time ``time_ns`` (ticks in increasing time)."""
        self.max_score = max(self.max_score, float(score))
        if self.succeeded:
            return
        if score < self.threshold:
            self._streak_start_ns = None
            return
        if self._streak_start_ns is None:
            self._streak_start_ns = time_ns
        if time_ns - self._streak_start_ns >= self.hold_s * NS_PER_S:
            self.succeeded = True
            self.success_ns = self._streak_start_ns

    @property
    def time_to_success_s(self) -> float | None:
        """Sim seconds from ``start_ns`` to the start of the successful streak; None without success."""
        return None if self.success_ns is None else (self.success_ns - self.start_ns) / NS_PER_S
