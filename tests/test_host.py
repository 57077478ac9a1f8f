import importlib.metadata
import os
import platform

from positronic.host import cpu_model, host_facts


def test_the_host_names_its_cpu_and_the_versions_a_run_depends_on():
    facts = host_facts()
    assert facts['cpu'] == cpu_model() and facts['cpu'].strip() == facts['cpu'] != ''
    assert facts['cpu_count'] == os.cpu_count() and facts['python'] == platform.python_version()
    assert facts['torch'] == importlib.metadata.version('torch')
