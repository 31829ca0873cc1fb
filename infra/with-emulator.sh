#!/usr/bin/env bash
# Runs a command with the AWS emulator (moto in server mode, from the project's venv, launched by
# infra/moto_server.py) on free 127.0.0.1 ports, exporting the endpoints and test credentials;
# stops the emulator after.
#
# By default the emulator is two processes, one per core: DynamoDB in one, everything else (SQS,
# EventBridge, whose rules deliver to queues inside that process, Secrets Manager, ...) in the
# other, both with moto_server.py's speed patches. AWS_ENDPOINT_URL names the second and
# AWS_ENDPOINT_URL_DYNAMODB the first; the AWS SDKs route each service by these variables.
#
# STOCKGUARD_EMULATOR=plain: the old set-up, for side-by-side benchmarks: one moto process with
# only the DynamoDB correctness patch (moto_server.py --plain), and only AWS_ENDPOINT_URL exported.
#
# Usage: [STOCKGUARD_EMULATOR=plain] infra/with-emulator.sh COMMAND [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
[ -x "$python" ] || { echo "with-emulator: $python is missing; run 'make setup' first" >&2; exit 2; }
mode="${STOCKGUARD_EMULATOR:-split}"
case "$mode" in
  split | plain) ;;
  *) echo "with-emulator: STOCKGUARD_EMULATOR is 'plain' or unset, not '$mode'" >&2; exit 2 ;;
esac

pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done' EXIT

free_port() {
  "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto PORT [moto_server.py args...]: starts one emulator process in the background.
start_moto() {
  local port=$1
  shift
  "$python" "$root/infra/moto_server.py" "$@" -H 127.0.0.1 -p "$port" \
    >"${TMPDIR:-/tmp}/stockguard-moto-$port.log" 2>&1 &
  pids+=($!)
}

# wait_for PORT PID: until the emulator on PORT answers.
wait_for() {
  for _ in $(seq 1 100); do
    if "$python" - "$1" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "with-emulator: moto did not start; see ${TMPDIR:-/tmp}/stockguard-moto-$1.log" >&2
  exit 2
}

unset AWS_ENDPOINT_URL_DYNAMODB
port=$(free_port)
if [ "$mode" = plain ]; then
  start_moto "$port" --plain
  wait_for "$port" "${pids[0]}"
else
  ddb_port=$(free_port)
  while [ "$ddb_port" = "$port" ]; do ddb_port=$(free_port); done
  start_moto "$port"
  start_moto "$ddb_port"
  wait_for "$port" "${pids[0]}"
  wait_for "$ddb_port" "${pids[1]}"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
fi
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "with-emulator: moto ($mode) on $AWS_ENDPOINT_URL${AWS_ENDPOINT_URL_DYNAMODB:+, DynamoDB on $AWS_ENDPOINT_URL_DYNAMODB}" >&2
"$@"
