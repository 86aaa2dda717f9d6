#!/usr/bin/env bash
# The gateway side by side with nginx serving the identical response bytes (issue 8's table), in one command:
#
#   benches/compare.sh                 # installs nginx and wrk when missing, builds release, prints the table
#   BENCH_SECONDS=5 benches/compare.sh # shorter wrk runs (default 10 s); BENCH_REPS=3 repetitions by default
#   BENCH_BASELINE=/path/to/an/older/aperture benches/compare.sh
#                                      # also that build's miss rows, in the same run and on the same emulator
#                                      # (before/after: build the older commit in a worktree of its own)
#   BENCH_PARTS=wrk (or rss)           # only that part; BENCH_SKIP_COMPONENT=1 skips the component bench
#
# Every row is a ratio or a delta measured in the same run, over BENCH_REPS repetitions (median, and the
# spread min..max); the peak RSS rows are read from /proc (VmHWM after clearing it, VmRSS afterwards). The
# per-call component time comes from `cargo bench -p aperture --bench gateway` (BENCH_ONLY=component).
# Nothing here is a test: it measures, it never fails on a number.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]} (apt-get)" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >&2
fi
command -v python3 >/dev/null 2>&1 || { echo "python3 is needed to drive the benchmark" >&2; exit 1; }

target="${CARGO_TARGET_DIR:-target}"
echo "building release (target dir: $target)" >&2
cargo build --release --locked -p aperture --bin aperture >&2
component=""
if [ -z "${BENCH_SKIP_COMPONENT:-}" ]; then
    component=$(BENCH_ONLY=component cargo bench --locked -p aperture --bench gateway 2>/dev/null | grep '^component call' || true)
fi

NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
exec python3 benches/compare.py --aperture "$target/release/aperture" --nginx "$NGINX" \
    --guests "target/guests/wasm32-wasip2/release" --component "$component" --baseline "${BENCH_BASELINE:-}"
