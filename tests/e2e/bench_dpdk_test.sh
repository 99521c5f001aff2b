#!/usr/bin/env bash
# ferrite-bench --transport dpdk against ferrited's DPDK backend over net_memif
# (shared memory through a unix socket: no network interface is created, no
# traffic reaches any kernel stack). As root (DPDK with --no-huge), else SKIP (77).
#   1. ferrited, DPDK backend, memif server role, native port + memcached UDP port;
#   2. ferrite-bench (memif client role): preload + a closed-loop 90/10 run, native
#      protocol, 4 flows; then the same over the memcached protocol;
#   3. checks from the JSON result: requests answered, every preloaded get a hit,
#      sets stored, no protocol errors; then a clean SIGTERM stop of ferrited.
# Every process is bounded by timeout; the server, socket and pool go on every exit (trap).
set -u
. "$(dirname "$0")/memif_server.sh"
[ "$(id -u)" = 0 ] || skip "needs root (DPDK)"
: "${FERRITED:?FERRITED must point at ferrited}" "${FERRITE_BENCH:?FERRITE_BENCH must point at ferrite-bench}"
memif_start_ferrited fbd --set dpdk.idle_sleep_us=100 --set server.memcached_udp_port=11211

rc=0
run() {  # protocol port
  local out
  out="$(timeout -s KILL 120 "$FERRITE_BENCH" --transport dpdk \
    --eal "$(memif_gen_eal)" \
    --ip 10.78.0.2 --server 10.78.0.1 --port "$2" --protocol "$1" --flows 4 --depth 8 --keys 2000 --key-size 16 \
    --value-size 32 --get-ratio 0.9 --preload --warmup 0.2 --duration 1 --timeout-ms 1000 --quiet --format json 2>&1)" \
    || { echo "FAIL: ferrite-bench --protocol $1 exited with $?:"; echo "$out" | grep -v "^EAL:" | tail -10; rc=1; return; }
  local json
  json="$(echo "$out" | grep '^{')"
  echo "$1: $json"
  python3 - "$1" "$json" <<'PY' || rc=1
import json, sys
proto, r = sys.argv[1], json.loads(sys.argv[2])
bad = []
if r["requests"] < 100: bad.append("fewer than 100 requests answered")
if r["get_hits"] == 0: bad.append("no get hits")
if r["get_misses"] != 0: bad.append(f"{r['get_misses']} misses after the preload")
if r["sets_ok"] == 0: bad.append("no set stored")
if r["errors"] != 0 or r["sets_failed"] != 0: bad.append("protocol errors / failed sets")
if r["lost"] * 100 > r["requests"]: bad.append(f"{r['lost']} lost of {r['requests']}")
for b in bad: print(f"FAIL ({proto}): {b}")
sys.exit(1 if bad else 0)
PY
  if [ -e "/var/run/dpdk/$gen_prefix" ]; then echo "FAIL: ferrite-bench left its DPDK runtime directory"; rc=1; fi
}
run native 11311
run memcached 11211

memif_stop_ferrited
[ "$rc" = 0 ] && echo "ok: ferrite-bench over net_memif, native and memcached protocols"
exit "$rc"
