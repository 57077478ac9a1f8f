import json

import pytest

from positronic.evaluation.results import IterationResult, RunSummary, wilson_interval, write_json_atomic


def result(iteration: int, success: bool, **kw) -> IterationResult:
    defaults = dict(
        seed=100 + iteration,
        max_score=1.0 if success else 0.4,
        time_to_success_s=6.5 if success else None,
        policy_calls=30,
        latencies_s=[0.010] * 98 + [0.020, 0.500],
    )
    return IterationResult(iteration=iteration, success=success, **(defaults | kw))


@pytest.mark.parametrize(
    ('successes', 'trials', 'low', 'high'),
    [(0, 10, 0.0, 0.27753), (10, 10, 0.72247, 1.0), (5, 10, 0.23659, 0.76341), (19, 20, 0.76387, 0.99112)],
)
def test_wilson_interval_matches_the_textbook_values(successes, trials, low, high):
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-5)


def test_wilson_interval_without_trials_is_uninformative_and_rejects_impossible_counts():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match='successes must be in'):
        wilson_interval(3, 2)


def test_latency_percentiles_are_in_milliseconds():
    r = result(0, True)
    assert r.latency_ms(50) == pytest.approx(10.0)
    assert 20.0 < r.latency_ms(99) < 500.0
    assert result(1, False, latencies_s=[]).latency_ms(50) is None


def test_summary_counts_successes_and_prints_one_row_per_iteration():
    summary = RunSummary([result(0, True), result(1, False, failure='rejected action: non-finite pose')])
    assert summary.successes == 1 and summary.success_rate == 0.5
    lines = summary.table().splitlines()
    assert lines[0].split()[:3] == ['iter', 'seed', 'success']
    assert lines[1].split()[:5] == ['0', '100', 'yes', '1.000', '6.50']
    assert lines[2].split()[:5] == ['1', '101', 'no', '0.400', '-']
    assert lines[2].endswith('rejected action: non-finite pose')
    assert lines[3] == 'success rate: 1/2 = 50.0% (95% Wilson CI 9.5%-90.5%)'


def test_an_interrupted_run_says_so_and_an_empty_one_has_no_rate():
    assert RunSummary([], interrupted=True).rate_line() == 'success rate: no finished iterations [interrupted]'
    assert RunSummary([]).success_rate is None


def test_summary_json_round_trips_with_run_info(tmp_path):
    summary = RunSummary([result(0, True), result(1, False)])
    path = tmp_path / 'summary.json'
    write_json_atomic(summary.to_json({'policy': {'type': 'expert'}}), path)
    data = json.loads(path.read_text())
    assert data['run'] == {'policy': {'type': 'expert'}}
    assert data['successes'] == 1 and data['total'] == 2 and data['success_rate'] == 0.5
    assert data['success_rate_ci95'] == pytest.approx(list(wilson_interval(1, 2)))
    assert data['iterations'][0]['latency_p50_ms'] == pytest.approx(10.0)
    assert data['iterations'][1]['time_to_success_s'] is None
    assert [p.name for p in tmp_path.iterdir()] == ['summary.json']
