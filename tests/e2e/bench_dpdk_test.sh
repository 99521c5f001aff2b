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
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (DPDK)"
: "${FERRITED:?FERRITED must point at ferrited}" "${FERRITE_BENCH:?FERRITE_BENCH must point at ferrite-bench}"

sock="/tmp/ferrite-bench-memif-$$.sock"
pool="/dev/shm/ferrite-bench-dpdk-$$.pool"
log="$(mktemp /tmp/ferrite-bench-dpdk.XXXXXX.log)"
srv=""
cleanup() {
  if [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; then kill -KILL "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; fi
  rm -f "$sock" "$pool" "$log"
  rmdir "/var/run/dpdk/fbd-srv-$$" "/var/run/dpdk/fbd-gen-$$" 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

eal="[\"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \"--file-prefix=fbd-srv-$$\", \"--vdev=net_memif0,role=server,id=0,socket=$sock\"]"
PMEM_IS_PMEM_FORCE=1 timeout -s KILL 200 "$FERRITED" --pool "$pool" --pool-size 256MiB --port 11311 --log-level info \
  --set server.backend=dpdk --set "server.allow=[\"10.78.0.0/24\"]" --set "dpdk.eal_args=$eal" \
  --set 'dpdk.ip="10.78.0.1"' --set dpdk.mbufs=4096 --set dpdk.idle_sleep_us=100 \
  --set server.memcached_udp_port=11211 >"$log" 2>&1 &
srv=$!
for _ in $(seq 1 200); do
  grep -q "ferrited serving" "$log" && break
  kill -0 "$srv" 2>/dev/null || { echo "ferrited exited during startup:"; cat "$log"; exit 1; }
  sleep 0.1
done
grep -q "ferrited serving" "$log" || { echo "ferrited did not start:"; cat "$log"; exit 1; }

rc=0
run() {  # protocol port
  local out
  out="$(timeout -s KILL 120 "$FERRITE_BENCH" --transport dpdk \
    --eal "--no-huge -m 256 --no-shconf --no-pci --file-prefix=fbd-gen-$$ --vdev=net_memif0,role=client,id=0,socket=$sock" \
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
  if [ -e "/var/run/dpdk/fbd-gen-$$" ]; then echo "FAIL: ferrite-bench left its DPDK runtime directory"; rc=1; fi
}
run native 11311
run memcached 11211

kill -TERM "$srv"
srv_rc=0
wait "$srv" || srv_rc=$?
srv=""
if [ "$srv_rc" != 0 ]; then echo "ferrited exited with $srv_rc after SIGTERM:"; cat "$log"; rc=1; fi
[ "$rc" = 0 ] && echo "ok: ferrite-bench over net_memif, native and memcached protocols"
exit "$rc"
