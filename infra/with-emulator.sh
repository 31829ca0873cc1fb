#!/usr/bin/env bash
# Runs a command with the AWS emulator (moto in server mode, from the project's venv, launched by
# infra/moto_server.py) listening on a
# free 127.0.0.1 port, exporting AWS_ENDPOINT_URL and test credentials; stops the emulator after.
# Usage: infra/with-emulator.sh COMMAND [ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python="$root/.venv/bin/python"
[ -x "$python" ] || { echo "with-emulator: $python is missing; run 'make setup' first" >&2; exit 2; }
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="${TMPDIR:-/tmp}/stockguard-moto-$port.log"
"$python" "$root/infra/moto_server.py" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$python" - "$port" <<'PY' 2>/dev/null; then break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/moto-api/", timeout=1)
PY
  kill -0 "$moto_pid" 2>/dev/null || { echo "with-emulator: moto exited; see $log" >&2; exit 2; }
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
unset AWS_PROFILE AWS_SESSION_TOKEN
echo "with-emulator: moto on $AWS_ENDPOINT_URL (log $log)" >&2
"$@"
