#!/usr/bin/env bash
# The bytes the gateway runs are the bytes other hosts run: start a demo gateway,
# `aperture policy export` its three active components, check each is the version the
# gateway reports, `aperture policy verify` each offline, then run the exported files in
# the two foreign hosts (jco in Node, Python's wasmtime).
#   tests/policy-export/run.sh [path/to/aperture]      (default target/debug/aperture)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${1:-$ROOT/target/debug/aperture}"
WORK="$(mktemp -d)"
GATEWAY_PID=
cleanup() {
  if [ -n "$GATEWAY_PID" ]; then kill "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

env -u APERTURE_API_KEY -u APERTURE_ADMIN_KEY -u APERTURE_LISTEN -u APERTURE_DATA_DIR -u APERTURE_UPSTREAM_URL \
  "$BIN" serve --demo --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/stdout" 2>"$WORK/stderr" &
GATEWAY_PID=$!
for _ in $(seq 1 600); do
  grep -q "Proxy server started on" "$WORK/stdout" && break
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then cat "$WORK/stderr" >&2; echo "the demo gateway exited" >&2; exit 1; fi
  sleep 0.1
done
ADDR="$(sed -n 's/^Proxy server started on \(http:[^ ]*\).*/\1/p' "$WORK/stdout")"
export APERTURE_ADMIN_KEY="$(sed -n 's/^Demo admin key (APERTURE_ADMIN_KEY): //p' "$WORK/stdout")"
if [ -z "$ADDR" ] || [ -z "$APERTURE_ADMIN_KEY" ]; then
  cat "$WORK/stdout" "$WORK/stderr" >&2
  echo "the demo gateway did not announce its address and admin key" >&2
  exit 1
fi

for slot in translator safety classifier; do
  "$BIN" policy export "$slot" --server "$ADDR" >"$WORK/$slot.wasm"
  got="$(sha256sum "$WORK/$slot.wasm" | cut -d' ' -f1)"
  want="$(SLOT="$slot" ADDR="$ADDR" python3 -c '
import json, os, urllib.request
req = urllib.request.Request(os.environ["ADDR"] + "/admin/components",
                             headers={"Authorization": "Bearer " + os.environ["APERTURE_ADMIN_KEY"]})
components = json.load(urllib.request.urlopen(req))["components"]
print(next(c["sha256"] for c in components if c["slot"] == os.environ["SLOT"]))')"
  if [ "$got" != "$want" ]; then
    echo "the exported $slot ($got) is not the active version ($want)" >&2
    exit 1
  fi
  "$BIN" policy verify "$WORK/$slot.wasm" --slot "$slot"
  echo "exported $slot: ${got:0:8}, verified offline"
done

"$ROOT/tests/jco/run.sh" "$WORK/translator.wasm" "$WORK/safety.wasm" "$WORK/classifier.wasm"
"$ROOT/tests/python-host/run.sh" "$WORK/translator.wasm" "$WORK/safety.wasm" "$WORK/classifier.wasm"
