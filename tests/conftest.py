import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')
os.environ.setdefault('PYOPENGL_PLATFORM', os.environ['MUJOCO_GL'])


def _side_python(env_var: str) -> Path | None:
    value = os.environ.get(env_var)
    if not value:
        return None
    path = Path(value)
    return path if path.exists() else (Path(found) if (found := shutil.which(value)) else None)


@pytest.fixture(scope='session')
def lerobot_python() -> Path:
    """Interpreter of a side environment with lerobot==0.4.4 (env LEROBOT_PYTHON); the test is skipped without it."""
    path = _side_python('LEROBOT_PYTHON')
    if path is None:
        pytest.skip('set LEROBOT_PYTHON to a python with lerobot==0.4.4 to run LeRobot compatibility checks')
    return path


@pytest.fixture(scope='session')
def positronic041_python() -> Path:
    """Interpreter of a side environment with positronic==0.4.1 (env POSITRONIC041_PYTHON); skipped without it."""
    path = _side_python('POSITRONIC041_PYTHON')
    if path is None:
        pytest.skip(
            'set POSITRONIC041_PYTHON to a python with positronic==0.4.1 to run Positronic compatibility checks'
        )
    return path
