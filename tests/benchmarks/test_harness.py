import argparse
import json
import time
from pathlib import Path

import pytest

from tests.benchmarks.test_run_all import BENCHMARKS_DIR


@pytest.fixture
def harness(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS_DIR))
    import harness

    return harness


def test_time_calls_leaves_out_the_warm_up_and_passes_each_call_its_index(harness):
    calls = []

    def call(i: int) -> None:
        calls.append(i)
        time.sleep(0.05 if i < 2 else 0.001)

    durations = harness.time_calls(call, repeats=3, warmup=2)
    assert calls == [0, 1, 2, 3, 4]
    assert len(durations) == 3
    assert all(0.001 <= d < 0.04 for d in durations), 'the slow warm-up calls are not among the timings'


def test_a_table_pads_its_columns_and_fills_short_rows(harness):
    lines = harness.table_lines(('metric', 'value', 'ok'), [('render', '1.3 ms', 'yes'), ('failed seeds', '[3]')])
    assert lines == [
        '| metric       | value  | ok  |',
        '|--------------|--------|-----|',
        '| render       | 1.3 ms | yes |',
        '| failed seeds | [3]    |     |',
    ]


@pytest.mark.parametrize(
    ('value', 'unit', 'text'),
    [
        (12.34, 'us', '12.3 us'),
        (1234.5, 'fps', '1234 fps'),
        (0.421, 'ms', '0.42 ms'),
        (2.5, 'x', '2.50x'),
        (3e-7, '', '3e-07'),
        (0, '', '0'),
        (95, '%', '95%'),
        (6.36, 'x real time', '6.36x real time'),
    ],
)
def test_values_have_three_significant_digits_at_most_and_no_exponent_above_a_hundredth(harness, value, unit, text):
    assert harness.format_value(value, unit) == text


def test_the_machine_lines_name_the_cpu_the_versions_and_the_load(harness):
    machine, software, load = harness.machine_lines('numpy')
    assert machine.startswith(f'machine: {harness.cpu_model()}, ') and 'logical CPUs' in machine
    assert software.startswith('software: python ') and ', numpy ' in software
    assert load.startswith('load average (1/5/15 min) at start: ')


def test_record_appends_json_lines_only_when_the_environment_names_a_file(harness, tmp_path, monkeypatch):
    target = tmp_path / 'results.jsonl'
    monkeypatch.delenv(harness.RESULTS_ENV, raising=False)
    harness.record('dataset', 'lookup', 3.0, '< 20 us', True, unit='us')
    assert not target.exists()

    monkeypatch.setenv(harness.RESULTS_ENV, str(target))
    harness.record('dataset', 'lookup', 3.0, '< 20 us', True, unit='us')
    harness.record('train', 'samples/s', 12)
    assert [json.loads(line) for line in target.read_text().splitlines()] == harness.read_results(target)
    assert harness.read_results(target) == [
        {'stage': 'dataset', 'metric': 'lookup', 'value': 3.0, 'unit': 'us', 'target': '< 20 us', 'ok': True},
        {'stage': 'train', 'metric': 'samples/s', 'value': 12.0, 'unit': '', 'target': None, 'ok': None},
    ]


def lerobot_python_of(harness, argv: list[str]) -> Path | None:
    parser = argparse.ArgumentParser()
    harness.add_lerobot_python(parser)
    return harness.lerobot_python(parser, parser.parse_args(argv).lerobot_python)


def test_lerobot_python_is_the_flag_then_the_environment_then_the_default_when_it_exists(
    harness, tmp_path, monkeypatch
):
    flag, env = tmp_path / 'flag_python', tmp_path / 'env_python'
    flag.touch()
    env.touch()
    monkeypatch.setattr(harness, 'DEFAULT_LEROBOT_PYTHON', tmp_path / 'absent' / 'python')
    monkeypatch.delenv(harness.LEROBOT_PYTHON_ENV, raising=False)
    assert lerobot_python_of(harness, []) is None
    monkeypatch.setattr(harness, 'DEFAULT_LEROBOT_PYTHON', flag)
    assert lerobot_python_of(harness, []) == flag
    monkeypatch.setenv(harness.LEROBOT_PYTHON_ENV, str(env))
    assert lerobot_python_of(harness, []) == env
    assert lerobot_python_of(harness, ['--lerobot-python', str(flag)]) == flag


@pytest.mark.parametrize('where', ['flag', 'environment'])
def test_a_lerobot_python_that_does_not_exist_is_a_usage_error_naming_where_it_came_from(
    harness, tmp_path, monkeypatch, capsys, where
):
    missing = tmp_path / 'no_venv' / 'python'
    monkeypatch.delenv(harness.LEROBOT_PYTHON_ENV, raising=False)
    if where == 'environment':
        monkeypatch.setenv(harness.LEROBOT_PYTHON_ENV, str(missing))
    with pytest.raises(SystemExit) as exit_info:
        lerobot_python_of(harness, ['--lerobot-python', str(missing)] if where == 'flag' else [])
    source = '--lerobot-python' if where == 'flag' else '$LEROBOT_PYTHON'
    assert exit_info.value.code == 2
    assert f"{source}={missing}: no such file (expected LeRobot 0.4.4's python)" in capsys.readouterr().err
