#!/usr/bin/env bash
# Run the conformance vectors of the three policy components in a second foreign
# host, Python's `wasmtime` package (pinned in requirements.txt, installed with pip
# when missing). Usage:
#   tests/python-host/run.sh [TRANSLATOR.wasm SAFETY.wasm CLASSIFIER.wasm]
# Without arguments it checks the components the build embeds (any
# `cargo build -p aperture` builds them); pass files to check others, e.g. what
# `aperture policy export` writes. It also checks that a component that breaks one
# vector (tests/guests/safety-fails-vector) is caught, so a pass means something.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
guests="$here/../../target/guests/wasm32-wasip2/release"
pin="$(grep -E '^wasmtime==' "$here/requirements.txt")"
if [ "$(python3 -c 'from importlib.metadata import version; print("wasmtime==" + version("wasmtime"))' 2>/dev/null)" != "$pin" ]; then
  python3 -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
fi
if [ $# -eq 0 ]; then
  set -- "$guests/request_translator.wasm" "$guests/safety_policy.wasm" "$guests/error_classifier.wasm"
elif [ $# -ne 3 ]; then
  echo "usage: $0 [TRANSLATOR.wasm SAFETY.wasm CLASSIFIER.wasm]" >&2
  exit 2
fi
python3 "$here/run_vectors.py" --translator "$1" --safety "$2" --classifier "$3"

# The runner must fail a component that breaks a vector, naming that vector.
broken="$guests/safety_fails_vector.wasm"
if [ -f "$broken" ]; then
  if out="$(python3 "$here/run_vectors.py" --safety "$broken" 2>&1)"; then
    echo "the Python host passed $broken, which breaks a vector on purpose" >&2
    exit 1
  fi
  if ! grep -q -- '- finish SPII blocks' <<<"$out"; then
    echo "the Python host failed $broken without naming the broken vector:" >&2
    echo "$out" >&2
    exit 1
  fi
  echo "python host: a component that breaks a vector is caught (finish SPII blocks)"
fi
