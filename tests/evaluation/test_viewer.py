import os
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from positronic import keys
from positronic.evaluation.viewer import open_viewer

XVFB = shutil.which('Xvfb')


@pytest.fixture
def display(monkeypatch):
    """A private Xvfb display (skipped where Xvfb is not installed)."""
    if XVFB is None:
        pytest.skip('Xvfb is not installed')
    number = 100 + os.getpid() % 500
    server = subprocess.Popen([XVFB, f':{number}', '-screen', '0', '800x600x24'], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f'/tmp/.X11-unix/X{number}').exists():
            if time.monotonic() > deadline or server.poll() is not None:
                pytest.skip('Xvfb did not start')
            time.sleep(0.05)
        monkeypatch.setenv('DISPLAY', f':{number}')
        yield f':{number}'
    finally:
        server.terminate()
        server.wait(5)


def test_the_window_shows_each_camera_frame(display):
    window = open_viewer()
    assert window is not None
    wrist = np.zeros((48, 64, 3), np.uint8)
    wrist[:, :, 0] = 200
    exterior = np.full((48, 64, 3), (10, 220, 30), np.uint8)
    window({keys.IMAGE_WRIST: wrist, keys.IMAGE_EXTERIOR: exterior, keys.GRIP: 0.5}, 'iteration 0')
    panels = window.panels
    assert list(panels) == [keys.IMAGE_WRIST, keys.IMAGE_EXTERIOR]
    assert panels[keys.IMAGE_WRIST].get(5, 5) == (200, 0, 0)
    assert panels[keys.IMAGE_EXTERIOR].get(63, 47) == (10, 220, 30)
    assert (panels[keys.IMAGE_EXTERIOR].width(), panels[keys.IMAGE_EXTERIOR].height()) == (64, 48)
    window.close()
    assert window.closed
    window({keys.IMAGE_WRIST: wrist}, 'ignored once closed')


def test_without_a_display_the_run_goes_on_headless(monkeypatch, capsys):
    monkeypatch.delenv('DISPLAY', raising=False)
    assert open_viewer() is None
    assert 'continuing headless' in capsys.readouterr().out
