from positronic.evaluation.success import NS_PER_S, SuccessTracker

TICK_NS = NS_PER_S // 10


def feed(tracker: SuccessTracker, scores: list[float]) -> SuccessTracker:
    for i, score in enumerate(scores):
        tracker.update(tracker.start_ns + i * TICK_NS, score)
    return tracker


def test_success_needs_the_score_held_for_hold_s():
    tracker = feed(SuccessTracker(threshold=1.0, hold_s=0.5, start_ns=7 * NS_PER_S), [0.2] + [1.0] * 6)
    assert tracker.succeeded
    assert tracker.time_to_success_s == 0.1


def test_a_streak_shorter_than_hold_s_is_not_a_success():
    tracker = feed(SuccessTracker(threshold=1.0, hold_s=0.5), [1.0, 1.0, 1.0, 0.9, 1.0, 1.0, 1.0])
    assert not tracker.succeeded and tracker.time_to_success_s is None
    assert tracker.max_score == 1.0


def test_the_threshold_is_configurable_and_success_is_final():
    tracker = feed(SuccessTracker(threshold=0.8, hold_s=0.2), [0.5, 0.85, 0.9, 0.95, 0.1, 0.0])
    assert tracker.succeeded and tracker.time_to_success_s == 0.1
    assert tracker.max_score == 0.95


def test_zero_hold_succeeds_on_the_first_tick_over_the_threshold():
    assert feed(SuccessTracker(threshold=1.0, hold_s=0.0), [0.0, 0.0, 1.0]).time_to_success_s == 0.2
