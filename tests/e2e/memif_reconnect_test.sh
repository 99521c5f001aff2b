#!/usr/bin/env bash
# A memif peer that comes and goes must not take ferrited down. DPDK 22.11's
# net_memif unmaps its shared rings on the interrupt thread when the peer
# leaves, while a worker lcore may be inside rte_eth_rx_burst() on them
# (seen: SIGSEGV in eth_memif_rx, about once in 40 disconnects of a busy
# generator); net/dpdk_guard.h makes that munmap wait for the worker.
#   1. ferrited, DPDK backend, memif server role (no network interface, no kernel stack);
#   2. ROUNDS short closed-loop dpdk_loadgen runs (memif client role), each
#      connecting, loading the server flat out and disconnecting;
#   3. after every round ferrited is still running; every round's GETs hit;
#      then a clean SIGTERM stop.
# As root (DPDK with --no-huge), else SKIP (77). Bounded by timeout; trap cleans up.
set -u
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (DPDK)"
: "${FERRITED:?FERRITED must point at ferrited}" "${DPDK_LOADGEN:?DPDK_LOADGEN must point at dpdk_loadgen}"
rounds="${ROUNDS:-20}"

sock="/tmp/ferrite-memif-rc-$$.sock"
pool="/dev/shm/ferrite-memif-rc-$$.pool"
log="$(mktemp /tmp/ferrite-memif-rc.XXXXXX.log)"
srv=""
cleanup() {
  if [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; then kill -KILL "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; fi
  rm -f "$sock" "$pool" "$log"
  rmdir "/var/run/dpdk/fmr-srv-$$" "/var/run/dpdk/fmr-gen-$$" 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

eal="[\"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \"--file-prefix=fmr-srv-$$\", \"--vdev=net_memif0,role=server,id=0,socket=$sock\"]"
PMEM_IS_PMEM_FORCE=1 timeout -s KILL 300 "$FERRITED" --pool "$pool" --pool-size 256MiB --port 11311 --log-level info \
  --set server.backend=dpdk --set "server.allow=[\"10.78.0.0/24\"]" --set "dpdk.eal_args=$eal" \
  --set 'dpdk.ip="10.78.0.1"' --set dpdk.mbufs=4096 >"$log" 2>&1 &
srv=$!
for _ in $(seq 1 200); do
  grep -q "ferrited serving" "$log" && break
  kill -0 "$srv" 2>/dev/null || { echo "ferrited exited during startup:"; cat "$log"; exit 1; }
  sleep 0.1
done
grep -q "ferrited serving" "$log" || { echo "ferrited did not start:"; cat "$log"; exit 1; }

rc=0
for r in $(seq 1 "$rounds"); do
  out="$(timeout -s KILL 60 "$DPDK_LOADGEN" \
    --eal "--no-huge -m 256 --no-shconf --no-pci --file-prefix=fmr-gen-$$ --vdev=net_memif0,role=client,id=0,socket=$sock" \
    --ip 10.78.0.2 --server-ip 10.78.0.1 --keys 20000 --value 32 --mode closed --window 32 --seconds 0.5 2>&1)"
  res="$(echo "$out" | grep '^RESULT')"
  if [ -z "$res" ]; then
    echo "FAIL: round $r: the generator gave no result:"; echo "$out" | grep -v "^EAL:" | tail -5; rc=1
  elif ! echo "$res" | grep -q ' misses=0'; then
    echo "FAIL: round $r: $res"; rc=1
  fi
  if ! kill -0 "$srv" 2>/dev/null; then
    wait "$srv"; echo "FAIL: ferrited died (exit $?) after the memif peer left in round $r:"; tail -5 "$log"; srv=""; exit 1
  fi
done

kill -TERM "$srv"
srv_rc=0
wait "$srv" || srv_rc=$?
srv=""
if [ "$srv_rc" != 0 ]; then echo "ferrited exited with $srv_rc after SIGTERM:"; cat "$log"; rc=1; fi
[ "$rc" = 0 ] && echo "ok: ferrited served $rounds memif peers in turn and stopped cleanly"
exit "$rc"
