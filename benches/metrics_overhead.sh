#!/usr/bin/env bash
# The overhead of metrics on a cache hit: the same cached request with wrk against a
# release build in demo mode, with `[metrics] enabled = false`, then `true`.
#   benches/metrics_overhead.sh [path/to/release/aperture] [seconds]
# Prints wrk's latency distribution (p50, p99) for each. Needs wrk.
set -euo pipefail
BIN="${1:-target/release/aperture}"
SECS="${2:-15}"
WORK="$(mktemp -d)"
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
KEY=bench-client-key-0123456789
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"prompt": "a benchmark lighthouse at dusk"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
LUA
for enabled in false true; do
  printf '[metrics]\nenabled = %s\n[limits]\nmax_concurrent = 0\n' "$enabled" >"$WORK/config.toml"
  env -u APERTURE_LISTEN -u APERTURE_DATA_DIR APERTURE_API_KEY=$KEY \
    "$BIN" serve --demo --config "$WORK/config.toml" --listen 127.0.0.1:0 --data-dir "$WORK/data-$enabled" \
    >"$WORK/out" 2>/dev/null &
  PID=$!
  for _ in $(seq 1 600); do grep -q "Proxy server started on" "$WORK/out" && break; sleep 0.1; done
  URL="$(sed -n 's/^Proxy server started on \(http:[^ ]*\).*/\1/p' "$WORK/out")"
  # Prime the cache, then wait for the write to land.
  curl -fsS -o /dev/null -X POST "$URL/v1/images/generations" -H "Authorization: Bearer $KEY" \
    -H "Content-Type: application/json" -d '{"prompt": "a benchmark lighthouse at dusk"}'
  sleep 1
  echo "== [metrics] enabled = $enabled"
  wrk -t2 -c8 -d"${SECS}s" --latency -s "$WORK/post.lua" "$URL/v1/images/generations" | \
    grep -E "Requests/sec|50%|75%|90%|99%|Non-2xx"
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
done
