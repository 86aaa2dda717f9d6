#!/usr/bin/env bash
# Transpile the policy components with jco and call them from Node.
#   tests/jco/run.sh [TRANSLATOR.wasm SAFETY.wasm CLASSIFIER.wasm]
# Without arguments: the components the build embeds (any `cargo build -p aperture`
# builds them); with files, e.g. what `aperture policy export` writes. Needs npm.
set -euo pipefail
cd "$(dirname "$0")"
guests=../../target/guests/wasm32-wasip2/release
if [ $# -eq 0 ]; then
  set -- "$guests/request_translator.wasm" "$guests/safety_policy.wasm" "$guests/error_classifier.wasm"
elif [ $# -ne 3 ]; then
  echo "usage: $0 [TRANSLATOR.wasm SAFETY.wasm CLASSIFIER.wasm]" >&2
  exit 2
fi
files=("$(realpath "$1")" "$(realpath "$2")" "$(realpath "$3")")
npm install --no-audit --no-fund --silent
rm -rf out && mkdir -p out && echo '{"type":"module"}' > out/package.json
names=(request_translator safety_policy error_classifier)
for i in 0 1 2; do
  c="${names[$i]}"
  npx jco transpile "${files[$i]}" -o "out/$c" --name "$c" \
    --map 'aperture:policy/types@0.2.0=../../types-shim.js' >/dev/null
done
node check.mjs
