#!/usr/bin/env bash
# A/B of tritonserver's scheduling policy behind the front, in one server so the machine's drift cancels out:
# the server (launcher, front, tritonserver, stubs) on CPU 1, the overload generator on CPU 0, then for each round
# tritonserver and every stub (all their threads) under SCHED_BATCH (the default, process.py) and under SCHED_OTHER
# (chrt), each measured by `python -m tritonkit.loadtest.overload`. The figures are in bench/results/TUNING.md.
#
# usage: scripts/sched-ab.sh [ENDPOINT] [ROUNDS]   (default: diabetes_regressor 2; needs `make export` first)
set -euo pipefail
cd "$(dirname "$0")/.."
endpoint=${1:-diabetes_regressor}
rounds=${2:-2}
python=.venv/bin/python
[ "$(nproc)" -ge 2 ] || { echo "error: needs 2 CPUs (server on CPU 1, generator on CPU 0)" >&2; exit 2; }
log=$(mktemp -t sched-ab-XXXX.log)
taskset -c 1 "$python" -m tritonkit.server >"$log" 2>&1 &
launcher=$!
trap 'kill -TERM $launcher 2>/dev/null; wait $launcher 2>/dev/null || true' EXIT
"$python" -c 'from tritonkit.client.health import wait_until_ready; wait_until_ready("http://127.0.0.1:8000", 180)' \
  || { echo "error: the server did not become ready; see $log" >&2; exit 1; }
policy() {  # $1: chrt's policy flag (-b SCHED_BATCH, -o SCHED_OTHER), applied to every thread
  for pid in $(pgrep -f "bin/tritonserver") $(pgrep -f triton_python_backend_stub); do chrt -a "$1" -p 0 "$pid"; done
}
for round in $(seq "$rounds"); do
  for flag in -b -o; do
    policy "$flag"
    echo "round $round, tritonserver $( [ "$flag" = -b ] && echo SCHED_BATCH || echo SCHED_OTHER ):" >&2
    taskset -c 0 "$python" -m tritonkit.loadtest.overload --endpoint "$endpoint" --seconds 12 --capacity-seconds 5 \
      | "$python" -c 'import json, sys
r = json.load(sys.stdin)
acc, ref = r["accepted"], r["refused"]
print("  capacity", r["capacity_per_s"], "req/s; accepted p50/p99", acc.get("p50_ms"), "/", acc.get("p99_ms"),
      "ms; refused p50/p99", ref.get("p50_ms"), "/", ref.get("p99_ms"), "ms; other:", r["other"] or "none")'
  done
done
