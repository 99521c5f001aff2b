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
source perf/memcaslap_lib.sh
mport=$(port)
fport=$(port)
nport=$(port)
timeout $((secs * runs * 3 + 120)) memcached -U "$mport" -p "$mport" -l 127.0.0.1 -t 1 -m 1024 -u root &
pids+=($!)
PMEM_IS_PMEM_FORCE=1 timeout $((secs * runs * 3 + 120)) "$FERRITED" --port "$nport" --pool "$tmp/pool" \
  --pool-size 1GiB --set server.memcached_udp_port="$fport" --set server.memcached_tcp_port="$fport" \
  --set server.pin_cores=false --log-level warn &
pids+=($!)
sleep 1.5
run() { memcaslap_run "$1" "$secs" -U -T 1 -c 16; }  # port -> "ops/s verify_failed"
m=()
f=()
for i in $(seq "$runs"); do
  read -r t e < <(run "$mport"); m+=("$t"); me=$e
  read -r t e < <(run "$fport"); f+=("$t"); fe=$e
done
mm=$(median "${m[@]}")
fm=$(median "${f[@]}")
echo
echo "memcaslap -U -t ${secs}s -T 1 -c 16 -v 0.1, key 64 B, value 32 B, 90% get; median of $runs runs (all runs)"
echo
echo "| server | ops/s (median) | runs | verify_failed (last run) | ratio to memcached |"
echo "| --- | --- | --- | --- | --- |"
echo "| memcached 1.6 UDP (peer) | $mm | ${m[*]} | $me | 1.00 |"
awk -v f="$fm" -v m="$mm" -v runs="${f[*]}" -v e="$fe" 'BEGIN { printf "| ferrited memcached UDP | %d | %s | %s | %.2f |\n", f, runs, e, (m > 0 ? f / m : 0) }'
