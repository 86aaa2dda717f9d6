#!/usr/bin/env bash
# schemathesis against a demo gateway: every operation of docs/openapi.yaml, a bounded
# number of examples, checking that responses conform to the spec, that no 5xx
# appears except a documented 503 with Retry-After, and that every error has the
# documented shape (hooks.py).
#   tests/schemathesis/run.sh [path/to/aperture]      (default target/debug/aperture)
# ST_MAX_EXAMPLES (default 40) bounds the examples per operation and phase.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${1:-$ROOT/target/debug/aperture}"
VERSION=4.32.5
# hypothesis 6.131+ describes filter lambdas by re-parsing their source, which trips a
# CPython 3.11.7 bug ("AST constructor recursion depth mismatch") in schemathesis's
# coverage phase; 6.130.12 is the oldest schemathesis 4.32.5 accepts and has no such step.
HYPOTHESIS=6.130.12

if ! python3 -c "import schemathesis, hypothesis, sys; sys.exit(schemathesis.__version__ != '$VERSION' or hypothesis.__version__ != '$HYPOTHESIS')" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION" "hypothesis==$HYPOTHESIS"
fi

WORK="$(mktemp -d)"
GATEWAY_PID=
cleanup() {
  if [ -n "$GATEWAY_PID" ]; then kill "$GATEWAY_PID" 2>/dev/null || true; wait "$GATEWAY_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A clean environment: the demo mode prints its own client and admin keys. The failed-auth
# throttle is off: schemathesis sends many unauthenticated requests on purpose, and a throttled
# address would answer 429 to everything after (the throttle has its own black-box test).
env -u APERTURE_API_KEY -u APERTURE_ADMIN_KEY -u APERTURE_LISTEN -u APERTURE_DATA_DIR \
  -u APERTURE_UPSTREAM_URL -u CACHE_BACKEND -u CACHE_MAX_SIZE_MB -u CACHE_TTL_SECONDS \
  -u GEMINI_IMAGE_SAFETY_THRESHOLD -u APERTURE_DENY_LIST \
  APERTURE_AUTH_FAILURES_PER_MINUTE=0 "$BIN" serve --demo --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/stdout" 2>"$WORK/stderr" &
GATEWAY_PID=$!
for _ in $(seq 1 600); do
  grep -q "Proxy server started on" "$WORK/stdout" && break
  if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then cat "$WORK/stderr" >&2; echo "the demo gateway exited" >&2; exit 1; fi
  sleep 0.1
done
ADDR="$(sed -n 's/^Proxy server started on \(http:[^ ]*\).*/\1/p' "$WORK/stdout")"
export APERTURE_ST_CLIENT_KEY="$(sed -n 's/^Demo client key (APERTURE_API_KEY): //p' "$WORK/stdout")"
export APERTURE_ST_ADMIN_KEY="$(sed -n 's/^Demo admin key (APERTURE_ADMIN_KEY): //p' "$WORK/stdout")"
if [ -z "$ADDR" ] || [ -z "$APERTURE_ST_CLIENT_KEY" ] || [ -z "$APERTURE_ST_ADMIN_KEY" ]; then
  cat "$WORK/stdout" "$WORK/stderr" >&2
  echo "the demo gateway did not announce its address and keys" >&2
  exit 1
fi
echo "demo gateway on $ADDR"

cat >"$WORK/schemathesis.toml" <<'TOML'
[auth.openapi.ClientKey]
bearer = "${APERTURE_ST_CLIENT_KEY}"
[auth.openapi.ClientKeyHeader]
api_key = "${APERTURE_ST_CLIENT_KEY}"
[auth.openapi.AdminKey]
bearer = "${APERTURE_ST_ADMIN_KEY}"
TOML

cd "$WORK"
# Two passes: the client API first, then the admin API, whose fuzzing adds, disables
# and removes accounts (with arbitrary secrets) that would otherwise fail image requests.
run_st() {
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$ROOT/tests/schemathesis" \
    st --config-file "$WORK/schemathesis.toml" run "$ROOT/docs/openapi.yaml" \
    --url "$ADDR" \
    --checks all \
    --exclude-checks not_a_server_error,positive_data_acceptance,negative_data_rejection \
    --max-examples "${ST_MAX_EXAMPLES:-40}" \
    --phases examples,coverage,fuzzing \
    --workers 2 \
    --request-timeout 60 \
    --seed "${ST_SEED:-20240601}" \
    --generation-database none \
    --suppress-health-check too_slow,data_too_large \
    --no-color "$@"
}
status=0
echo "== client API"
run_st --exclude-tag-regex '^(admin|dashboard)$' || status=$?
echo "== admin API"
run_st --include-tag admin || status=$?

# What the image requests came to, from the gateway's request lines.
echo "POST /v1/images/generations answers by status:"
grep -o 'status=[0-9]*' "$WORK/data/logs/aperture.log" | sort | uniq -c || true
if [ "$status" -ne 0 ]; then
  echo "gateway log lines of server errors and failed upstream calls:"
  grep -E 'status=5|upstream call failed' "$WORK/data/logs/aperture.log" | cut -c1-600 || true
fi
exit "$status"
