#!/usr/bin/env bash
# End-to-end test of the DPDK backend (issue 6), as root:
#   1. creates its own network namespace,
#   2. starts ferrited inside it in DPDK mode with a net_tap port (the tap
#      interface is created inside the namespace; --no-huge --in-memory and a
#      unique --file-prefix: no hugepages, no runtime files left behind),
#   3. gives the kernel side of the tap 10.77.0.2/24,
#   4. runs $FERRITE_DPDK_TEST (tests/e2e/dpdk_test.cc) inside the namespace:
#      every op, ARP, ICMP echo, a 1 MiB value, malformed frames per reason,
#   5. stops ferrited with SIGTERM and expects a clean exit.
# Namespace and process are removed on every exit path (trap). Without root
# or network namespaces it reports SKIP (exit 77) with the reason.
# Argument: the number of workers (default 1); with 2 the tap has two queue
# pairs, and flows are spread by the kernel's tun queue selection.
set -u
workers="${1:-1}"
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (network namespace and tap device)"
command -v ip >/dev/null 2>&1 || skip "ip(8) not installed (iproute2)"
[ -c /dev/net/tun ] || skip "no /dev/net/tun (tap devices unavailable)"
: "${FERRITED:?FERRITED must point at ferrited}" "${FERRITE_DPDK_TEST:?FERRITE_DPDK_TEST must point at dpdk_e2e_test}"

ns="ferrite-dpdk-$$"
iface="fdtap$$"
iface="${iface:0:15}"
pool="/dev/shm/ferrite-dpdk-e2e-$$.pool"
log="$(mktemp /tmp/ferrite-dpdk-e2e.XXXXXX.log)"
server_ip=10.77.0.1
port=11311
mc_port=11211
srv=""

cleanup() {
  if [ -n "$srv" ] && kill -0 "$srv" 2>/dev/null; then
    kill -KILL "$srv" 2>/dev/null
    wait "$srv" 2>/dev/null
  fi
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -f "$pool" "$log"
  rmdir "/var/run/dpdk/ferrite-e2e-$$" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace (ip netns add failed)"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
# No IPv6 on the tap: no router solicitations or MLD reports to count.
in_ns sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1 2>/dev/null || true

# Configuration errors stop ferrited with a message naming the setting (a
# net_null port: no interface, nothing on the wire).
expect_error() {  # substring, extra ferrited arguments...
  local want="$1" out rc=0; shift
  out="$(PMEM_IS_PMEM_FORCE=1 timeout -s KILL 60 ip netns exec "$ns" "$FERRITED" --pool "$pool" --pool-size 64MiB \
    --log-level warn --set server.backend=dpdk "$@" 2>&1)" || rc=$?
  rm -f "$pool"
  if [ "$rc" = 0 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: expected an error containing '$want' (exit $rc):"; echo "$out" | tail -5; exit 1
  fi
  echo "ok: refused with '$want' (exit $rc)"
}
null_eal() { echo "[\"--no-huge\", \"-m\", \"128\", \"--no-shconf\", \"--no-pci\", \"--file-prefix=ferrite-e2e-$$\", \"--vdev=net_null0\"$1]"; }
expect_error "dpdk.port = 3 is not a DPDK port" --set "dpdk.eal_args=$(null_eal "")" --set dpdk.port=3
expect_error "does not fit port 0's MTU" --set "dpdk.eal_args=$(null_eal "")" --set server.max_datagram=9000
expect_error "server.workers = 2 needs 2 worker lcores" --set "dpdk.eal_args=$(null_eal ", \"--lcores=0@0,1@0\"")" \
  --set server.workers=2
expect_error "EAL initialisation failed" --set "dpdk.eal_args=[\"--no-huge\", \"-m\", \"128\", \"--in-memory\", \"--no-pci\", \"--file-prefix=ferrite-e2e-$$\"]"

# --no-huge excludes --in-memory in DPDK 22.11: --no-shconf keeps the runtime
# directory empty (ferrited removes it at exit); --no-pci leaves the host's NICs alone.
eal="[\"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \"--file-prefix=ferrite-e2e-$$\", \"--vdev=net_tap0,iface=$iface\"]"
PMEM_IS_PMEM_FORCE=1 timeout -s KILL 300 ip netns exec "$ns" "$FERRITED" \
  --pool "$pool" --pool-size 256MiB --port "$port" --log-level info \
  --set server.backend=dpdk --set server.workers=$workers --set "server.allow=[\"10.77.0.0/24\"]" \
  --set "dpdk.eal_args=$eal" --set "dpdk.ip=\"$server_ip\"" --set dpdk.mbufs=4096 --set dpdk.idle_sleep_us=100 \
  --set server.memcached_udp_port=$mc_port >"$log" 2>&1 &
srv=$!

# The tap appears inside the namespace once the port is configured.
for _ in $(seq 1 100); do
  in_ns ip link show "$iface" >/dev/null 2>&1 && break
  kill -0 "$srv" 2>/dev/null || { echo "ferrited exited during startup:"; cat "$log"; exit 1; }
  sleep 0.1
done
in_ns ip link show "$iface" >/dev/null 2>&1 || { echo "tap $iface did not appear in $ns"; cat "$log"; exit 1; }
[ -z "$(ip link show "$iface" 2>/dev/null)" ] || { echo "tap $iface leaked into the root namespace"; exit 1; }
in_ns ip addr add 10.77.0.2/24 dev "$iface"
in_ns ip link set "$iface" up

for _ in $(seq 1 100); do
  grep -q "ferrited serving" "$log" && break
  kill -0 "$srv" 2>/dev/null || { echo "ferrited exited during startup:"; cat "$log"; exit 1; }
  sleep 0.1
done

rc=0
timeout -s KILL 240 ip netns exec "$ns" env FERRITE_DPDK_IP="$server_ip" FERRITE_DPDK_PORT="$port" FERRITE_DPDK_MC_PORT="$mc_port" \
  FERRITE_DPDK_IFACE="$iface" "$FERRITE_DPDK_TEST" || rc=$?

kill -TERM "$srv"
for _ in $(seq 1 100); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
srv_rc=0
wait "$srv" || srv_rc=$?
srv=""
echo "---- ferrited log"
cat "$log"
if [ "$srv_rc" != 0 ]; then echo "ferrited exited with $srv_rc after SIGTERM"; rc=1; fi
grep -q "ferrited stopped cleanly" "$log" || { echo "no clean stop in the log"; rc=1; }
if [ -e "/var/run/dpdk/ferrite-e2e-$$" ]; then
  echo "ferrited left its DPDK runtime directory behind:"; ls -la "/var/run/dpdk/ferrite-e2e-$$"; rc=1
fi
exit "$rc"
