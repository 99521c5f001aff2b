#!/usr/bin/env bash
# The README's first command, for real: scripts/start starts ferrited;
# ferritectl set k v && ferritectl get k prints v; after SIGTERM and a second
# scripts/start, get k still prints v. (Own port and pool, so it can run
# beside anything else.)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ctl="$root/build/client/ferritectl"
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pool="/dev/shm/ferrite-readme-test-$$.pool"
pid=""
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -f "$pool"; }
trap cleanup EXIT

start() {
  "$root/scripts/start" --pool "$pool" --pool-size 64MiB --port "$port" --log-level warn &
  pid=$!
  for _ in $(seq 1 600); do   # up to 60 s: the first start may build
    if [ -x "$ctl" ] && "$ctl" -s "127.0.0.1:$port" --timeout-ms 50 stats >/dev/null 2>&1; then return 0; fi
    kill -0 "$pid" 2>/dev/null || { echo "scripts/start exited early"; exit 1; }
    sleep 0.1
  done
  echo "ferrited did not answer on port $port"; exit 1
}

start
"$ctl" -s "127.0.0.1:$port" set k v
out=$("$ctl" -s "127.0.0.1:$port" get k)
[ "$out" = "v" ] || { echo "get k printed '$out', expected 'v'"; exit 1; }
kill -TERM "$pid"; wait "$pid"; pid=""
start
out=$("$ctl" -s "127.0.0.1:$port" get k)
[ "$out" = "v" ] || { echo "after restart get k printed '$out', expected 'v'"; exit 1; }
echo "readme start test: ok"
