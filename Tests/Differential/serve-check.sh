#!/usr/bin/env bash
# Runs serve-check.py: `flipt-offline serve` checked with the official Flipt engine (PyPI flipt-client 1.4.5).
#   Tests/Differential/serve-check.sh [--flipt-offline PATH] [--tls-and-tokens] [--max-fixtures N] [--verbose]
# Without --flipt-offline, builds the debug binary (scratch path $SCRATCH, default .build) and uses it.
# The Python is $FLIPT_PYTHON, else /tmp/fvenv/bin/python, else .venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/../.."
unset RUST_BACKTRACE
python="${FLIPT_PYTHON:-}"
if [ -z "$python" ]; then
    for candidate in /tmp/fvenv/bin/python .venv/bin/python; do
        if [ -x "$candidate" ]; then python="$candidate"; break; fi
    done
fi
[ -n "$python" ] || { echo "serve-check.sh: set FLIPT_PYTHON to a Python with flipt-client==1.4.5" >&2; exit 2; }
if [[ " $* " != *" --flipt-offline "* ]]; then
    scratch="${SCRATCH:-.build}"
    swift build --scratch-path "$scratch" --product flipt-offline >&2
    set -- --flipt-offline "$(swift build --scratch-path "$scratch" --show-bin-path)/flipt-offline" "$@"
fi
exec "$python" Tests/Differential/serve-check.py "$@"
