"""Every benchmark the README and the guides name exists, and every command line they show has the flags it shows.

A command line is inline or fenced code that starts ``python benchmarks/<script>.py``; flags in ``[--flag ...]``
count like the others. Each named script's ``--help`` must run (it imports everything the script needs).
"""

import re
import subprocess
import sys

import pytest

from tests.benchmarks.test_run_all import BENCHMARKS_DIR

REPO = BENCHMARKS_DIR.parent
DOCS = [REPO / 'README.md', *sorted((REPO / 'docs').glob('*.md'))]
SCRIPT = re.compile(r'benchmarks/(\w+\.py)')
COMMAND = re.compile(r'python benchmarks/(\w+\.py)([^`\n]*)')
FLAG = re.compile(r'(?<![\w-])(--[a-z][\w-]*)')


def documented() -> tuple[set[str], dict[str, set[str]]]:
    """(every script the docs name, the flags each command line shows per script)."""
    scripts, flags = set(), {}
    for doc in DOCS:
        text = doc.read_text()
        scripts |= set(SCRIPT.findall(text))
        for script, rest in COMMAND.findall(text):
            flags.setdefault(script, set()).update(FLAG.findall(rest))
    return scripts, flags


SCRIPTS, FLAGS = documented()


def test_the_docs_show_the_gpu_throughput_command():
    assert '--throughput' in FLAGS['bench_train.py']


def missing_flags(script: str, flags: set[str]) -> set[str]:
    """The ``flags`` that ``benchmarks/<script> --help`` does not list (after checking that it runs)."""
    path = BENCHMARKS_DIR / script
    assert path.is_file(), f'the docs name benchmarks/{script}, which does not exist'
    result = subprocess.run([sys.executable, str(path), '--help'], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f'benchmarks/{script} --help: {result.stderr[-2000:]}'
    return {flag for flag in flags if not re.search(rf'{flag}(?![\w-])', result.stdout)}


@pytest.mark.parametrize('script', sorted(SCRIPTS))
def test_a_documented_benchmark_runs_and_has_the_flags_the_docs_show(script):
    missing = missing_flags(script, FLAGS.get(script, set()))
    assert not missing, f'benchmarks/{script} has no {sorted(missing)}, which the docs show'


def test_a_flag_the_script_lacks_is_caught():
    shown = set(FLAG.findall('python benchmarks/bench_train.py --throughput [--quick] --processes 2'))
    assert shown == {'--throughput', '--quick', '--processes'}
    assert missing_flags('bench_train.py', shown) == {'--processes'}
