#!/usr/bin/env bash
# Build the side environment for the `lerobot` compatibility tests and the LeRobot columns of the benchmarks:
# lerobot==0.4.4 with the torch/torchvision/torchcodec versions it works with (a CUDA build of torch, ~8 GB; it runs on
# the CPU). Never a dependency of the project.
# Usage: bash tests/setup_lerobot044.sh [VENV_DIR]   (default /tmp/venv-lerobot)
# Then:  LEROBOT_PYTHON=VENV_DIR/bin/python bash scripts/test.sh -m lerobot
set -euo pipefail
venv="${1:-/tmp/venv-lerobot}"
python="${PYTHON:-python3}"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
"$venv/bin/pip" install --quiet "lerobot==0.4.4" "torch==2.9.1" "torchvision==0.24.1"
if ! command -v ffmpeg >/dev/null 2>&1; then  # torchcodec loads FFmpeg's shared libraries
    if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq ffmpeg; else sudo apt-get install -y ffmpeg; fi
fi
"$venv/bin/pip" install --quiet "torchcodec==0.9.*"  # 0.10 is built for torch 2.10 and fails to load
"$venv/bin/python" -c 'from lerobot.datasets.lerobot_dataset import LeRobotDataset; from lerobot.policies.act.modeling_act import ACTPolicy'
echo "LeRobot 0.4.4 side environment ready: LEROBOT_PYTHON=$venv/bin/python"
