#!/usr/bin/env bash
# Build the side environment for the `positronic041` compatibility tests: positronic==0.4.1 without its
# full dependency tree (robot drivers, simulators, GUIs), plus only what its InferenceClient imports.
# Usage: bash tests/offboard/setup_positronic041.sh [VENV_DIR]   (default /tmp/venv-positronic041)
# Then:  POSITRONIC041_PYTHON=VENV_DIR/bin/python .venv/bin/pytest -m positronic041
set -euo pipefail
venv="${1:-/tmp/venv-positronic041}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --no-deps \
    positronic==0.4.1 positronic-wire==0.12.0 positronic-model-server==0.3.1 positronic-eval-vocabulary==0.6.0
"$venv/bin/pip" install --quiet numpy msgpack websockets==15.0.1 pillow 'opentelemetry-api>=1.42' pyyaml pos3 coloredlogs
"$venv/bin/python" -c 'from positronic.offboard.client import InferenceClient; from positronic_wire.websocket import WebsocketClientWire'
echo "positronic 0.4.1 side environment ready: POSITRONIC041_PYTHON=$venv/bin/python"
