#!/usr/bin/env bash
# The live differential check (CI): random documents answered by the official engine and by flipt-offline.
#
#   FLIPT_PYTHON=.venv/bin/python Tests/Differential/run-live.sh --flipt-offline PATH [--seeds 30] [--requests 2000]
#   Tests/Differential/run-live.sh --python PY --flipt-offline PATH --seed 1234 --seed 99   # reproduce seeds
#
# PY (--python, else $FLIPT_PYTHON, else /tmp/fvenv/bin/python) must have PyPI flipt-client==1.4.5.
# All other options go to live.py (see `live.py --help`). Ends with `differential: N passed, M failed`.
set -euo pipefail
unset RUST_BACKTRACE
here="$(cd "$(dirname "$0")" && pwd)"
python="${FLIPT_PYTHON:-/tmp/fvenv/bin/python}"
if [ "${1:-}" = "--python" ]; then
    python="$2"
    shift 2
fi
exec timeout 900 "$python" "$here/live.py" "$@"
