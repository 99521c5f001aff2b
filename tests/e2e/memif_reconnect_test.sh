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
# Every other round sends 16 GETs per datagram (dpdk_loadgen --ops-per-datagram,
# perf/dpdk_compare.sh's memif-batch rows): each reply must carry 16 hits, so
# ops/s is 16 x datagrams/s with no misses or errors.
# As root (DPDK with --no-huge), else SKIP (77). Bounded by timeout; trap cleans up.
set -u
. "$(dirname "$0")/memif_server.sh"
[ "$(id -u)" = 0 ] || skip "needs root (DPDK)"
: "${FERRITED:?FERRITED must point at ferrited}" "${DPDK_LOADGEN:?DPDK_LOADGEN must point at dpdk_loadgen}"
rounds="${ROUNDS:-20}"
memif_start_ferrited fmr

rc=0
batch_answered=0   # 16-op rounds with replies (a round on a starved machine may see none)
for r in $(seq 1 "$rounds"); do
  opd=$(( r % 2 ? 1 : 16 ))
  out="$(timeout -s KILL 60 "$DPDK_LOADGEN" \
    --eal "$(memif_gen_eal)" --ops-per-datagram "$opd" \
    --ip 10.78.0.2 --server-ip 10.78.0.1 --keys 20000 --value 32 --mode closed --window 32 --seconds 0.5 2>&1)"
  res="$(echo "$out" | grep '^RESULT')"
  if [ -z "$res" ]; then
    echo "FAIL: round $r: the generator gave no result:"; echo "$out" | grep -v "^EAL:" | tail -5; rc=1
  elif ! echo "$res" | grep -q ' misses=0 errors=0'; then
    echo "FAIL: round $r: $res"; rc=1
  elif ! echo "$res" | awk -v n="$opd" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
         END { exit !(v["ops_per_s"] >= n * v["dgrams_per_s"] - n) }'; then
    echo "FAIL: round $r: $opd ops per datagram, but $res"; rc=1
  elif [ "$opd" = 16 ] && ! echo "$res" | grep -q ' dgrams_per_s=0 '; then
    batch_answered=$((batch_answered + 1))
  fi
  if ! kill -0 "$srv" 2>/dev/null; then
    wait "$srv"; echo "FAIL: ferrited died (exit $?) after the memif peer left in round $r:"; tail -5 "$log"; srv=""; exit 1
  fi
done

memif_stop_ferrited
if [ "$rounds" -ge 2 ] && [ "$batch_answered" = 0 ]; then
  echo "FAIL: no round with 16 ops per datagram got a reply"; rc=1
fi
[ "$rc" = 0 ] && echo "ok: ferrited served $rounds memif peers in turn and stopped cleanly"
exit "$rc"
