#!/usr/bin/env bash
# One command, same generator (perf/dpdk_loadgen), same workload, three
# server paths, each measured closed-loop (peak) and open-loop at half of
# that peak:
#   memif  : ferrited DPDK backend on net_memif  <- dpdk_loadgen on net_memif (shared memory, no kernel)
#   tap    : ferrited DPDK backend on net_tap    <- dpdk_loadgen on net_af_packet on the tap's kernel side
#   kernel : ferrited kernel backend (UDP socket) <- dpdk_loadgen on net_af_packet on a veth pair
#   memcached (the peer, UDP, 1 thread) on the same veth pair, same generator speaking its protocol
#   floor  : perf/dpdk_echo on net_memif: the same generator and cores, a responder with no store;
#            its latency is the transport's and the machine's (vCPU freezes), not ferrited's
#   memif-batch (only when ONLY names it): ferrited memif and the floor, closed loop, with 1 and
#            with BATCH (default 16) native ops per datagram: ops/s and datagrams/s side by side
# Before the rows, perf/cpu_gaps says how much time a polling thread loses on each CPU.
# Everything runs inside a network namespace this script creates and removes
# (trap), as root. The server's worker runs on CPU 1, the generator on CPU 0.
#
#   sudo perf/dpdk_compare.sh [build-dir] [seconds]      (default: build, 5)
#   sudo ONLY=memif-batch BATCH=16 perf/dpdk_compare.sh   (ops per datagram: 1 vs 16, and their floors)
set -u
build="$(cd "${1:-build}" && pwd)"
secs="${2:-5}"
keys="${KEYS:-100000}"
value="${VALUE:-32}"
[ "$(id -u)" = 0 ] || { echo "dpdk_compare: needs root (network namespace, tap, veth)"; exit 77; }
ferrited="$build/server/ferrited"
lg="$build/perf/dpdk_loadgen"
echo_bin="$build/perf/dpdk_echo"
[ -x "$ferrited" ] && [ -x "$lg" ] || { echo "dpdk_compare: build $ferrited and $lg first"; exit 1; }

ns="ferrite-cmp-$$"
sock="/tmp/ferrite-cmp-$$.sock"
pool="/dev/shm/ferrite-cmp-$$.pool"
srv=""
cleanup() {
  [ -n "$srv" ] && kill -KILL "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -f "$sock" "$sock.echo" "$pool"
  for d in /var/run/dpdk/fcmp-*-$$; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
  true
}
trap cleanup EXIT
trap 'exit 1' INT TERM
ip netns add "$ns" || exit 1
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true
export PMEM_IS_PMEM_FORCE=1

start_server() {  # args: extra ferrited arguments; waits for the "serving"/"listening" line
  rm -f "$pool"
  timeout -s KILL $((secs * 4 + 120)) ip netns exec "$ns" "$ferrited" --pool "$pool" --pool-size 1GiB --log-level info "$@" \
    >/tmp/ferrite-cmp-$$.log 2>&1 &
  srv=$!
  for _ in $(seq 1 100); do
    grep -qE "ferrited (serving|listening)" /tmp/ferrite-cmp-$$.log && return 0
    kill -0 "$srv" 2>/dev/null || break
    sleep 0.1
  done
  echo "dpdk_compare: ferrited did not start:"; cat /tmp/ferrite-cmp-$$.log; exit 1
}
stop_server() {
  kill -TERM "$srv"; wait "$srv"; srv=""
  rm -f "$pool" /tmp/ferrite-cmp-$$.log
}
run_lg() {  # label eal ip server_ip mode extra...
  local label="$1" eal="$2" ip="$3" sip="$4"; shift 4
  local out
  out="$(timeout -s KILL $((secs * 2 + 90)) ip netns exec "$ns" "$lg" --eal "$eal" --ip "$ip" --server-ip "$sip" \
    --label "$label" --keys "$keys" --value "$value" --seconds "$secs" "$@" 2>&1)"
  if ! echo "$out" | grep -q RESULT; then
    echo "dpdk_compare: the generator failed for $label:" >&2
    echo "$out" | grep -v "^EAL: \|^TELEMETRY" | tail -5 >&2
  fi
  echo "$out" | grep -E "^(\||RESULT|stalls:)"
}
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | head -1; }

only="${ONLY:-floor memif tap kernel memcached}"   # e.g. ONLY="floor memif" for the memif rows
echo "# command: sudo ${ONLY:+ONLY=\"$ONLY\" }${BATCH:+BATCH=$BATCH }perf/dpdk_compare.sh $* (keys=$keys value=$value bytes, GET only, ${secs}s per row; $(nproc) CPUs)"
main_rows=0   # the peak/half-peak rows (floor memif tap kernel memcached) asked for
for r in floor memif tap kernel memcached; do [[ " $only " == *" $r "* ]] && main_rows=1; done
[ "$main_rows" = 1 ] && echo "# server worker on CPU 1, generator on CPU 0; open loop at half the closed-loop peak (the floor row: at ferrited memif's half peak)"
echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (busy-poll numbers need idle cores)"
[ -x "$build/perf/cpu_gaps" ] && "$build/perf/cpu_gaps" --cpus 0,1 --seconds 2 | sed 's/^/# /'
echo
declare -A peak p99half p50half
if [ "$main_rows" = 1 ]; then
  echo "| path | offered | ops/s | p50 us | p99 us | p99.9 us | lost | misses+errors |"
  echo "|---|---|---|---|---|---|---|---|"
fi
stall_notes=""
measure() {  # name eal ip sip
  local name="$1" eal="$2" ip="$3" sip="$4" out rate
  shift 4  # the rest: extra generator options (e.g. --protocol memcached)
  out="$(run_lg "$name" "$eal" "$ip" "$sip" --mode closed --window 32 "$@")"
  echo "$out" | grep '^|'
  peak[$name]="$(echo "$out" | grep RESULT | field ops_per_s)"
  rate="$(awk -v p="${peak[$name]:-0}" 'BEGIN { printf "%d", p / 2 }')"
  [ "${FLOOR_RATE:-0}" -gt 0 ] && rate="$FLOOR_RATE"
  if [ "${rate:-0}" -gt 0 ]; then
    out="$(run_lg "$name" "$eal" "$ip" "$sip" --mode open --rate "$rate" --no-preload --stall-us 20 "$@")"
    echo "$out" | grep '^|'
    p99half[$name]="$(echo "$out" | grep RESULT | field p99_us)"
    p50half[$name]="$(echo "$out" | grep RESULT | field p50_us)"
    stall_notes+="# $name, open loop at $rate/s: $(echo "$out" | grep '^stalls:' | sed 's/^stalls: //')"$'\n'
  fi
}

lg_eal() { echo "--no-huge -m 256 --no-shconf --no-pci --file-prefix=fcmp-lg-$$ --lcores=0@0 $1"; }
srv_eal() { echo "[\"--no-huge\", \"-m\", \"512\", \"--no-shconf\", \"--no-pci\", \"--file-prefix=fcmp-srv-$$\", \"--lcores=0@0,1@1\", \"$1\"]"; }

start_memif_server() {  # ferrited, DPDK backend, memif server role on $sock
  start_server --set server.backend=dpdk --set "dpdk.eal_args=$(srv_eal "--vdev=net_memif0,role=server,id=0,socket=$sock")" \
    --set 'dpdk.ip="10.78.0.1"' --set 'dpdk.mac="02:fe:00:00:00:01"' --set 'server.allow=["10.78.0.0/24"]'
}
start_echo() {  # the storeless responder (perf/dpdk_echo) on memif, socket $sock.echo, CPU 1
  timeout -s KILL $((secs * 4 + 120)) ip netns exec "$ns" "$echo_bin" --seconds $((secs * 3 + 60)) --ip 10.78.0.1 \
    --value "$value" --eal "--no-huge -m 256 --no-shconf --no-pci --file-prefix=fcmp-echo-$$ --lcores=0@1 --vdev=net_memif0,role=server,id=0,socket=$sock.echo" \
    >/tmp/ferrite-cmp-$$.log 2>&1 &
  srv=$!
  for _ in $(seq 1 100); do grep -q "dpdk_echo serving" /tmp/ferrite-cmp-$$.log && break; sleep 0.1; done
}
stop_echo() {
  kill -TERM "$srv"; wait "$srv" 2>/dev/null; srv=""   # timeout passes TERM on to dpdk_echo
  rm -f "$sock.echo" /tmp/ferrite-cmp-$$.log
}
# 1. memif
[[ " $only " == *" memif "* ]] && {
start_memif_server
measure "ferrited DPDK memif" "$(lg_eal "--vdev=net_memif0,role=client,id=0,socket=$sock")" 10.78.0.2 10.78.0.1
stop_server
}

# 1b. the floor: a storeless responder on memif, the generator's CPU and port as for ferrited;
#     open loop at ferrited memif's half-peak rate (FLOOR_RATE), so both rows see the same offered load
[[ " $only " == *" floor "* ]] && [ -x "$echo_bin" ] && {
  start_echo
  FLOOR_RATE="$(awk -v p="${peak[ferrited DPDK memif]:-0}" 'BEGIN { printf "%d", p / 2 }')" \
  measure "floor: memif echo, no store" "$(lg_eal "--vdev=net_memif0,role=client,id=0,socket=$sock.echo")" 10.78.0.2 10.78.0.1
  stop_echo
}
# 1c. ops per datagram: one ferrited memif and one echo, each measured closed loop (W=32 datagrams)
#     with 1 and with BATCH GETs per datagram; the generator counts ops (response ops) and datagrams.
batch="${BATCH:-16}"
declare -A bops bdg bp50 bp99 bbad
measure_batch() {  # name eal
  local name="$1" eal="$2" n out
  for n in 1 "$batch"; do
    out="$(run_lg "$name" "$eal" 10.78.0.2 10.78.0.1 --mode closed --window 32 --ops-per-datagram "$n")"
    bops[$name/$n]="$(echo "$out" | grep RESULT | field ops_per_s)"
    bdg[$name/$n]="$(echo "$out" | grep RESULT | field dgrams_per_s)"
    bp50[$name/$n]="$(echo "$out" | grep RESULT | field p50_us)"
    bp99[$name/$n]="$(echo "$out" | grep RESULT | field p99_us)"
    bbad[$name/$n]="$(echo "$out" | grep RESULT | field lost) / $(echo "$out" | grep RESULT | field misses)+$(echo "$out" | grep RESULT | field errors)"
  done
}
[[ " $only " == *" memif-batch "* ]] && {
start_memif_server
measure_batch "ferrited DPDK memif" "$(lg_eal "--vdev=net_memif0,role=client,id=0,socket=$sock")"
stop_server
if [ -x "$echo_bin" ]; then
  start_echo
  measure_batch "floor: memif echo, no store" "$(lg_eal "--vdev=net_memif0,role=client,id=0,socket=$sock.echo")"
  stop_echo
fi
echo "| path (closed loop, W=32 datagrams) | GETs per datagram | ops/s | datagrams/s | p50 / p99 us per datagram | ops/s / floor's | lost datagrams / misses+errors |"
echo "|---|---|---|---|---|---|---|"
for name in "ferrited DPDK memif" "floor: memif echo, no store"; do
  for n in 1 "$batch"; do
    awk -v name="$name" -v n="$n" -v o="${bops[$name/$n]:-0}" -v d="${bdg[$name/$n]:-0}" -v l50="${bp50[$name/$n]:-n/a}" \
      -v l99="${bp99[$name/$n]:-n/a}" -v f="${bops[floor: memif echo, no store/$n]:-0}" -v bad="${bbad[$name/$n]:-n/a}" \
      'BEGIN { printf "| %s | %d | %.0f | %.0f | %s / %s | %s | %s |\n", name, n, o, d, l50, l99, (f > 0 ? sprintf("%.2f", o / f) : "n/a"), bad }'
  done
done
echo
}
# 2. tap
[[ " $only " == *" tap "* ]] && {
start_server --set server.backend=dpdk --set "dpdk.eal_args=$(srv_eal "--vdev=net_tap0,iface=fcmptap")" \
  --set 'dpdk.ip="10.77.0.1"' --set 'server.allow=["10.77.0.0/24"]'
in_ns ip link set fcmptap up
measure "ferrited DPDK tap" "$(lg_eal "--vdev=net_af_packet0,iface=fcmptap")" 10.77.0.2 10.77.0.1
stop_server
}

# 3. kernel backend over a veth pair (also used by memcached below)
in_ns ip link add vcmp0 type veth peer name vcmp1
in_ns ip addr add 10.79.0.1/24 dev vcmp1
in_ns ip link set vcmp0 up
in_ns ip link set vcmp1 up
[[ " $only " == *" kernel "* ]] && {
start_server --bind 10.79.0.1 --set server.pin_cores=false --set 'server.allow=["10.79.0.0/24"]'
taskset -apc 1 "$(pgrep -P "$srv" ferrited || echo "$srv")" >/dev/null 2>&1 || true
measure "ferrited kernel UDP" "$(lg_eal "--vdev=net_af_packet0,iface=vcmp0")" 10.79.0.2 10.79.0.1
stop_server
}

# 4. memcached (the peer) on the same veth pair, one thread on CPU 1
memcached_bin="${MEMCACHED:-/usr/bin/memcached}"
if [ -x "$memcached_bin" ] && [[ " $only " == *" memcached "* ]]; then
  timeout -s KILL $((secs * 4 + 120)) ip netns exec "$ns" taskset -c 1 "$memcached_bin" -U 11211 -p 0 -l 10.79.0.1 \
    -t 1 -m 1024 -u root >/dev/null 2>&1 &
  srv=$!
  sleep 0.5
  measure "memcached 1.6 UDP (peer)" "$(lg_eal "--vdev=net_af_packet0,iface=vcmp0")" 10.79.0.2 10.79.0.1 \
    --protocol memcached --server-port 11211
  kill -TERM "$srv"; wait "$srv" 2>/dev/null; srv=""
fi

[ "$main_rows" = 1 ] || exit 0   # only the memif-batch rows were asked for
k="${peak[ferrited kernel UDP]:-0}"
m="${peak[memcached 1.6 UDP (peer)]:-0}"
echo
f="${p99half[floor: memif echo, no store]:-0}"
echo "| path | peak GET ops/s | ratio to kernel backend | ratio to memcached | p50 / p99 at half peak (us) | p99 / floor's p99 |"
echo "|---|---|---|---|---|---|"
for name in "floor: memif echo, no store" "ferrited DPDK memif" "ferrited DPDK tap" "ferrited kernel UDP" "memcached 1.6 UDP (peer)"; do
  awk -v n="$name" -v p="${peak[$name]:-0}" -v k="$k" -v m="$m" -v l="${p99half[$name]:-n/a}" -v l50="${p50half[$name]:-n/a}" -v f="$f" \
    'BEGIN { printf "| %s | %.0f | %s | %s | %s / %s | %s |\n", n, p, (k > 0 ? sprintf("%.2f", p / k) : "n/a"),
             (m > 0 ? sprintf("%.2f", p / m) : "n/a"), l50, l, (f > 0 && l + 0 > 0 ? sprintf("%.2f", l / f) : "n/a") }'
done
echo
echo "# replies slower than 20 us at half peak, grouped into stall events (dpdk_loadgen --stall-us 20):"
printf '%s' "$stall_notes"
