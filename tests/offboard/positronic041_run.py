"""Run positronic 0.4.1's InferenceClient (``positronic041_client.py``) against a server on loopback."""

import json
import subprocess
from pathlib import Path
from typing import Any

CLIENT_SCRIPT = Path(__file__).with_name('positronic041_client.py')


def run_positronic041_client(python: Path, port: int) -> dict[str, Any]:
    """The client script's JSON report, run with the side environment's ``python``; fails on a non-zero exit."""
    run = subprocess.run(
        [str(python), str(CLIENT_SCRIPT), str(port)], capture_output=True, text=True, timeout=120, cwd='/'
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])
