#!/usr/bin/env bash
# The dependency floors are true: a second virtualenv with the lowest transformers pyproject.toml allows
# runs the core tests. torch stays at the CPU wheel 2.13.0: older torch wheels here are multi-GB CUDA
# builds; the torch floor's gaps (get_total_norm, torch 2.6) are covered by tests/test_version_floors.py,
# which takes the newer attribute away.
#   .ci/lowest.sh [VENV]   (default: .venv-lowest)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-lowest}"
floor="$(sed -n 's/^ *"transformers>=\([0-9.]*\)".*/\1/p' pyproject.toml | head -1)"
[ -n "$floor" ] || { echo "lowest.sh: no transformers floor in pyproject.toml" >&2; exit 2; }
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q torch==2.13.0 "transformers==$floor.*" -e '.[dev]'
"$venv/bin/python" -c "import transformers; print('lowest transformers:', transformers.__version__)"
# the core's tests (no TUI, no subprocess trainings), not the slow ones
"$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/core/test_version_floors.py tests/core/test_calibration.py tests/core/test_threshold.py tests/core/test_recorded.py \
  tests/core/test_data.py tests/core/test_training.py tests/core/test_speed.py tests/core/test_recipe.py
