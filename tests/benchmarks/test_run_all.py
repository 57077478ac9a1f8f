import textwrap
from pathlib import Path

import pytest

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / 'benchmarks'


@pytest.fixture
def run_all(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS_DIR))
    import run_all

    return run_all


def write_script(path: Path, body: str) -> Path:
    path.write_text(f'import sys\nsys.path.insert(0, {str(BENCHMARKS_DIR)!r})\n' + textwrap.dedent(body))
    return path


def test_a_failing_benchmark_is_a_failed_row_and_keeps_what_it_recorded(run_all, tmp_path):
    passing = write_script(
        tmp_path / 'passing.py',
        """
        from harness import record
        print('own table of passing')
        record('sim', 'expert success', 100, '>= 95%', True, unit='%')
        record('sim', 'recording', 1.5, '>= 2x', False, unit='x real time')
        """,
    )
    failing = write_script(
        tmp_path / 'failing.py',
        """
        from harness import record
        record('server', 'overhead p50', 0.42, '< 3 ms', True, unit='ms')
        sys.exit(3)
        """,
    )
    log = tmp_path / 'passing.log'
    outcomes = [
        run_all.run_benchmark(run_all.Benchmark('sim', str(passing), ()), False, None, 60, log),
        run_all.run_benchmark(run_all.Benchmark('server', str(failing), ()), False, None, 60, None),
    ]
    assert [o.returncode for o in outcomes] == [0, 3]
    assert log.read_text() == 'own table of passing\n'
    rows = run_all.table(outcomes, 60)
    cells = [[cell.strip() for cell in row.split('|')[1:-1]] for row in rows]
    assert cells[0] == ['stage', 'metric', 'value', 'target', 'ok']
    assert set(rows[1]) == {'|', '-'}
    assert cells[2:] == [
        ['sim', 'expert success', '100%', '>= 95%', 'yes'],
        ['sim', 'recording', '1.50x real time', '>= 2x', 'NO'],
        ['server', 'overhead p50', '0.42 ms', '< 3 ms', 'yes'],
        ['server', 'failing.py', 'FAILED (exit status 3)', '', 'NO'],
    ]


def test_a_benchmark_past_its_time_limit_is_stopped_with_its_children(run_all, tmp_path):
    child_pid = tmp_path / 'child.pid'
    hanging = write_script(
        tmp_path / 'hanging.py',
        f"""
        import subprocess, time
        child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
        open({str(child_pid)!r}, 'w').write(str(child.pid))
        time.sleep(120)
        """,
    )
    outcome = run_all.run_benchmark(run_all.Benchmark('train', str(hanging), ()), False, None, 6, None)
    assert outcome.returncode is None
    assert outcome.wall_s < 30
    assert run_all.table([outcome], 6)[2].split('|')[3].strip() == 'FAILED (stopped after 6 s)'
    pid = int(child_pid.read_text())
    assert not Path(f'/proc/{pid}').exists() or 'Z' in Path(f'/proc/{pid}/stat').read_text().split()[2]


def test_lerobot_python_goes_only_to_the_benchmarks_that_compare_with_lerobot(run_all, tmp_path):
    echo = write_script(tmp_path / 'echo.py', 'print(sys.argv[1:])\n')
    logs = {name: tmp_path / f'{name}.log' for name in ('compares', 'alone')}
    run_all.run_benchmark(
        run_all.Benchmark('a', str(echo), ('--n', '1'), True), False, '/x/python', 60, logs['compares']
    )
    run_all.run_benchmark(run_all.Benchmark('b', str(echo), ('--n', '1')), True, '/x/python', 60, logs['alone'])
    assert logs['compares'].read_text() == "['--n', '1', '--lerobot-python', '/x/python']\n"
    assert logs['alone'].read_text() == '[]\n'


def test_every_bench_script_is_run_known_ones_in_pipeline_order_with_quick_sizes(run_all, tmp_path):
    for name in ('bench_zeta.py', 'bench_train.py', 'bench_dataset.py', 'results.py', 'run_all.py'):
        (tmp_path / name).write_text('')
    found = run_all.discover(tmp_path)
    assert [(b.stage, b.script) for b in found] == [
        ('dataset', 'bench_dataset.py'),
        ('train', 'bench_train.py'),
        ('zeta', 'bench_zeta.py'),
    ]
    assert found[1].quick and found[2].quick == ()
    assert [b.script for b in run_all.discover(BENCHMARKS_DIR)][: len(run_all.BENCHMARKS)] == [
        b.script for b in run_all.BENCHMARKS
    ]
