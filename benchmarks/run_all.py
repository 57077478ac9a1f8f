"""Runs every stage's benchmark and prints one table of their headline numbers against the issues' targets.

    python benchmarks/run_all.py [--full] [--only dataset sim ...] [--lerobot-python /tmp/venv-lerobot/bin/python]
        [--logs DIR] [--timeout-s 3600]

Every ``bench_*.py`` runs in its own process, in pipeline order, with small sizes (minutes in all on 2 cores) or,
with ``--full``, at its own defaults (the sizes its issue names). Its own output is streamed as it runs (and saved
to ``DIR/<stage>.log`` with ``--logs``); its headline numbers come back through ``harness.record``. At the end: the
machine, then one table (stage, metric, value, target, ok). A benchmark that fails or runs past ``--timeout-s`` gets
a FAILED row and the others still run; the exit status is 1 when any failed. ``--lerobot-python`` (default:
$LEROBOT_PYTHON) is passed to the benchmarks that compare with LeRobot 0.4.4; without it they look for
/tmp/venv-lerobot themselves (``harness.lerobot_python``) and leave LeRobot out when it is not there.
"""

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness import RESULTS_ENV, format_value, load_average, machine_lines, read_results, table_lines, verdict

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    stage: str
    script: str
    quick: tuple[str, ...]
    """Arguments of the quick run; the full run uses the script's defaults."""
    compares_with_lerobot: bool = False


BENCHMARKS = (
    Benchmark('dataset', 'bench_dataset.py', ('--vector-samples', '20000')),
    Benchmark('sim', 'bench_sim.py', ('--seeds', '20', '--episodes', '1')),
    Benchmark('lerobot_dataset', 'bench_lerobot_dataset.py', ('--episodes', '1', '--frames', '60'), True),
    Benchmark('to_lerobot', 'bench_to_lerobot.py', ('--episodes', '1', '--frames', '150'), True),
    Benchmark('train', 'bench_train.py', ('--sizes', '96', '--steps', '3', '--frames', '30', '--no-bf16'), True),
    Benchmark('act', 'bench_act.py', ('--sizes', '96', '--repeats', '1'), True),
    Benchmark('offboard', 'bench_offboard.py', ('--requests', '300', '--load-requests', '50')),
    Benchmark('server', 'bench_server.py', ('--requests', '100', '--load-requests', '50')),
    Benchmark('inference', 'bench_inference.py', ('--iterations', '1', '--seconds', '15', '--expert-seeds', '10')),
)
"""In pipeline order, with the quick sizes of each."""


def discover(directory: Path) -> list[Benchmark]:
    """Every ``bench_*.py`` in ``directory``: the known ones in ``BENCHMARKS`` order, then any other at its defaults."""
    present = {path.name for path in directory.glob('bench_*.py')}
    known = [b for b in BENCHMARKS if b.script in present]
    others = sorted(present - {b.script for b in known})
    return known + [Benchmark(name.removeprefix('bench_').removesuffix('.py'), name, ()) for name in others]


@dataclass
class Outcome:
    benchmark: Benchmark
    returncode: int | None
    """None when it ran past the time limit and was stopped."""
    wall_s: float
    results: list[dict]


def run_benchmark(
    benchmark: Benchmark, full: bool, lerobot_python: str | None, timeout_s: float, log: Path | None
) -> Outcome:
    """Runs one benchmark script in its own process group, streaming its output line by line."""
    command = [sys.executable, str(HERE / benchmark.script), *(() if full else benchmark.quick)]
    if lerobot_python and benchmark.compares_with_lerobot:
        command += ['--lerobot-python', lerobot_python]
    print(f'\n=== {benchmark.stage}: {" ".join(command)}', flush=True)
    with tempfile.TemporaryDirectory(prefix=f'bench_{benchmark.stage}_') as tmp:
        results_file = Path(tmp) / 'results.jsonl'
        env = {**os.environ, RESULTS_ENV: str(results_file), 'PYTHONUNBUFFERED': '1'}
        env.setdefault('MUJOCO_GL', 'egl')
        began = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
        timed_out = threading.Event()

        def stop() -> None:
            timed_out.set()
            _kill_group(process.pid)

        timer = threading.Timer(timeout_s, stop)
        timer.start()
        try:
            with open(log, 'w') if log else open(os.devnull, 'w') as saved:
                for line in process.stdout:
                    sys.stdout.write(line)
                    saved.write(line)
            process.wait()
        finally:
            timer.cancel()
            _kill_group(process.pid)  # also what it left running (a server it started)
            process.wait()
        wall_s = time.perf_counter() - began
        results = read_results(results_file)
    returncode = None if timed_out.is_set() else process.returncode
    print(f'=== {benchmark.stage}: {_status(returncode, timeout_s)} in {wall_s:.0f} s', flush=True)
    return Outcome(benchmark, returncode, wall_s, results)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _status(returncode: int | None, timeout_s: float) -> str:
    if returncode is None:
        return f'FAILED (stopped after {timeout_s:.0f} s)'
    return 'done' if returncode == 0 else f'FAILED (exit status {returncode})'


def table(outcomes: list[Outcome], timeout_s: float) -> list[str]:
    """Markdown rows: one per recorded result, one per failed benchmark."""
    rows = []
    for outcome in outcomes:
        for r in outcome.results:
            rows.append(
                (r['stage'], r['metric'], format_value(r['value'], r['unit']), r['target'] or '', verdict(r['ok']))
            )
        if outcome.returncode != 0:
            status = _status(outcome.returncode, timeout_s)
            rows.append((outcome.benchmark.stage, Path(outcome.benchmark.script).name, status, '', 'NO'))
    return table_lines(('stage', 'metric', 'value', 'target', 'ok'), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--full', action='store_true', help="each benchmark at its own default (the issue's) sizes")
    available = discover(HERE)
    stages = [b.stage for b in available]
    parser.add_argument('--only', nargs='+', choices=stages, metavar='STAGE', help=f'a subset of {stages}')
    parser.add_argument('--lerobot-python', default=os.environ.get('LEROBOT_PYTHON'), help='LeRobot 0.4.4 python')
    parser.add_argument('--logs', type=Path, help="directory to save each benchmark's output in (<stage>.log)")
    parser.add_argument('--timeout-s', type=float, default=3600, help='wall-clock limit per benchmark')
    args = parser.parse_args()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)

    machine = machine_lines('torch')
    began = time.perf_counter()
    outcomes = [
        run_benchmark(
            b, args.full, args.lerobot_python, args.timeout_s, args.logs / f'{b.stage}.log' if args.logs else None
        )
        for b in available
        if not args.only or b.stage in args.only
    ]
    failed = [o.benchmark.stage for o in outcomes if o.returncode != 0]
    print(f'\n## Benchmarks ({"full" if args.full else "quick"} sizes)\n')
    print('\n'.join(machine))
    print('load average (1/5/15 min) at end: ' + load_average())
    print(f'LeRobot: {args.lerobot_python or "not given"}\n')
    print('\n'.join(table(outcomes, args.timeout_s)))
    times = ', '.join(f'{o.benchmark.stage} {o.wall_s:.0f} s' for o in outcomes)
    print(f'\n{len(outcomes)} benchmarks in {time.perf_counter() - began:.0f} s ({times})')
    if failed:
        print(f'failed: {", ".join(failed)}')
        sys.exit(1)


if __name__ == '__main__':
    main()
