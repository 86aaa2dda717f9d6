#!/usr/bin/env bash
# Transpile the built components with jco and call them from Node.
# Needs the guests built (any `cargo build -p aperture` does it) and npm.
set -euo pipefail
cd "$(dirname "$0")"
guests=../../target/guests/wasm32-wasip2/release
npm install --no-audit --no-fund --silent
rm -rf out && mkdir -p out && echo '{"type":"module"}' > out/package.json
for c in request_translator safety_policy error_classifier; do
  npx jco transpile "$guests/$c.wasm" -o "out/$c" --name "$c" \
    --map 'aperture:policy/types@0.2.0=../../types-shim.js' >/dev/null
done
node check.mjs
