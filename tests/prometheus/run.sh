#!/usr/bin/env bash
# A real Prometheus (Debian's package) scrapes a real gateway in demo mode while a
# scripted load runs; then every Grafana panel query (deploy/grafana) must return
# data and every alert rule (deploy/prometheus) must evaluate cleanly over series
# that exist. Needs: a built `aperture` (debug), `prometheus`, `promtool`, python3.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${APERTURE_BIN:-${CARGO_TARGET_DIR:-target}/debug/aperture}"
[ -x "$BIN" ] || cargo build --locked -p aperture --bin aperture
promtool check rules deploy/prometheus/aperture-alerts.yml
promtool test rules deploy/prometheus/tests/*.yml
exec python3 tests/prometheus/check.py "$BIN"
