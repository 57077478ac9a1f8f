import importlib.metadata
import os
import platform
import subprocess
import sys

from positronic.host import cpu_model, host_facts, process_is_alive


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
