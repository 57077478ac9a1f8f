#!/usr/bin/env bash
# Create (or re-use) the project's virtual environment in .venv and install the package into it.
#   POSITRONIC_VENV   where to put the environment (default: <repo>/.venv)
#   POSITRONIC_TORCH  "cpu" forces the CPU constraints, "any" lets pip resolve torch freely;
#                     default: cpu when no NVIDIA GPU (nvidia-smi) is found.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${POSITRONIC_VENV:-$repo/.venv}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "[setup] creating virtual environment in $venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi

torch_mode="${POSITRONIC_TORCH:-}"
if [ -z "$torch_mode" ]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then torch_mode=any; else torch_mode=cpu; fi
fi
constraint_args=()
if [ "$torch_mode" = cpu ]; then constraint_args=(--constraint "$repo/constraints/cpu.txt"); fi

stamp="$venv/.positronic-installed"
if [ ! -f "$stamp" ] || [ "$repo/pyproject.toml" -nt "$stamp" ]; then
    echo "[setup] installing positronic-act (torch: $torch_mode)"
    "$venv/bin/python" -m pip install --quiet "${constraint_args[@]}" -e "$repo[dev]"
    touch "$stamp"
fi
echo "[setup] ready: $venv"
