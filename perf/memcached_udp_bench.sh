#!/usr/bin/env bash
# memcached protocol over UDP: ferrited (memcached UDP port) against
# memcached 1.6 in the same run, load from memcaslap (libmemcached-tools),
# the mix of /work/shared/PEERS.md: 64-byte keys, 32-byte values, 90% get /
# 10% set, 1 generator thread, 16 concurrent requests, with 10% of gets
# verified. Prints a table with the ratio to memcached. Loopback only;
# every run is bounded by -t and by timeout.
#
#   perf/memcached_udp_bench.sh [seconds=10] [runs=3]
#
# Needs build/server/ferrited (scripts/build), memcached and memcaslap
# (scripts/install-deps bench).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
FERRITED=${FERRITED:-build/server/ferrited}
tmp=$(mktemp -d /dev/shm/ferrite-mcbench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$tmp"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
mport=$(port)
fport=$(port)
nport=$(port)
printf 'key\n64 64 1\nvalue\n32 32 1\ncmd\n0 0.1\n1 0.9\n' >"$tmp/cfg"
timeout $((secs * runs * 3 + 120)) memcached -U "$mport" -p "$mport" -l 127.0.0.1 -t 1 -m 1024 -u root &
pids+=($!)
PMEM_IS_PMEM_FORCE=1 timeout $((secs * runs * 3 + 120)) "$FERRITED" --port "$nport" --pool "$tmp/pool" \
  --pool-size 1GiB --set server.memcached_udp_port="$fport" --set server.memcached_tcp_port="$fport" \
  --set server.pin_cores=false --log-level warn &
pids+=($!)
sleep 1.5
run() {  # port -> "ops/s verify_failed"
  local out
  out=$(timeout $((secs + 30)) memcaslap -s "127.0.0.1:$1" -U -t "${secs}s" -T 1 -c 16 -v 0.1 -F "$tmp/cfg" 2>&1)
  local tps failed
  tps=$(sed -n 's/.*TPS: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
  failed=$(awk '/^verify_failed:/ {print $2}' <<<"$out")
  echo "${tps:-0} ${failed:-?}"
}
m=()
f=()
for i in $(seq "$runs"); do
  read -r t e < <(run "$mport"); m+=("$t"); me=$e
  read -r t e < <(run "$fport"); f+=("$t"); fe=$e
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mm=$(median "${m[@]}")
fm=$(median "${f[@]}")
echo
echo "memcaslap -U -t ${secs}s -T 1 -c 16 -v 0.1, key 64 B, value 32 B, 90% get; median of $runs runs (all runs)"
echo
echo "| server | ops/s (median) | runs | verify_failed (last run) | ratio to memcached |"
echo "| --- | --- | --- | --- | --- |"
echo "| memcached 1.6 UDP (peer) | $mm | ${m[*]} | $me | 1.00 |"
awk -v f="$fm" -v m="$mm" -v runs="${f[*]}" -v e="$fe" 'BEGIN { printf "| ferrited memcached UDP | %d | %s | %s | %.2f |\n", f, runs, e, (m > 0 ? f / m : 0) }'
