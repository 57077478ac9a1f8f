import importlib.metadata
import os
import platform
import subprocess
import sys

from positronic.host import cpu_model, host_facts, interrupted_writes, process_is_alive


def test_the_host_names_its_cpu_and_the_versions_a_run_depends_on():
    facts = host_facts()
    assert facts['cpu'] == cpu_model() and facts['cpu'].strip() == facts['cpu'] != ''
    assert facts['cpu_count'] == os.cpu_count() and facts['python'] == platform.python_version()
    assert facts['torch'] == importlib.metadata.version('torch')


def test_a_process_is_alive_until_it_has_exited():
    child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        assert process_is_alive(child.pid) and process_is_alive(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert not process_is_alive(child.pid)


def test_interrupted_writes_are_those_of_gone_processes_or_this_one_under_the_prefix(tmp_path):
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    live = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        names = {
            'gone': f'.tmp-000010-{gone.pid}',
            'mine': f'.tmp-last-{os.getpid()}',
            'live': f'.tmp-000020-{live.pid}',
            'other prefix': f'.part-000030-{gone.pid}',
            'no pid': '.tmp-000040-abc',
        }
        for name in names.values():
            (tmp_path / name).mkdir()
        found = [p.name for p in interrupted_writes(tmp_path, '.tmp-')]
        assert found == sorted([names['gone'], names['mine']])
        assert interrupted_writes(tmp_path / 'missing', '.tmp-') == []
    finally:
        live.kill()
        live.wait()
