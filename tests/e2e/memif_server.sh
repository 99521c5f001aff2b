# Sourced by the memif end-to-end tests: ferrited with the DPDK backend on a
# net_memif port (server role; shared memory through a unix socket, no network
# interface, no kernel stack), and the cleanup every exit runs (trap).
#   memif_start_ferrited TAG [ferrited --set ...]   sets srv, sock, pool, log, gen_prefix
# Needs FERRITED; root is checked by the caller (SKIP, exit 77, without).
skip() { echo "SKIP: $*"; exit 77; }
memif_cleanup() {
  if [ -n "${srv:-}" ] && kill -0 "$srv" 2>/dev/null; then kill -KILL "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; fi
  rm -f "$sock" "$pool" "$log"
  rmdir "/var/run/dpdk/$tag-srv-$$" "/var/run/dpdk/$tag-gen-$$" 2>/dev/null
  true
}
memif_start_ferrited() {
  tag="$1"; shift
  sock="/tmp/ferrite-$tag-$$.sock"
  pool="/dev/shm/ferrite-$tag-$$.pool"
  log="$(mktemp "/tmp/ferrite-$tag.XXXXXX.log")"
  gen_prefix="$tag-gen-$$"
  srv=""
  trap memif_cleanup EXIT
  trap 'exit 1' INT TERM
  local eal="[\"--no-huge\", \"-m\", \"256\", \"--no-shconf\", \"--no-pci\", \"--file-prefix=$tag-srv-$$\", \"--vdev=net_memif0,role=server,id=0,socket=$sock\"]"
  PMEM_IS_PMEM_FORCE=1 timeout -s KILL 300 "$FERRITED" --pool "$pool" --pool-size 256MiB --port 11311 --log-level info \
    --set server.backend=dpdk --set "server.allow=[\"10.78.0.0/24\"]" --set "dpdk.eal_args=$eal" \
    --set 'dpdk.ip="10.78.0.1"' --set dpdk.mbufs=4096 "$@" >"$log" 2>&1 &
  srv=$!
  for _ in $(seq 1 200); do
    grep -q "ferrited serving" "$log" && return 0
    kill -0 "$srv" 2>/dev/null || { echo "ferrited exited during startup:"; cat "$log"; exit 1; }
    sleep 0.1
  done
  echo "ferrited did not start:"; cat "$log"; exit 1
}
# The generator's EAL arguments: the memif client role on the same socket.
memif_gen_eal() { echo "--no-huge -m 256 --no-shconf --no-pci --file-prefix=$gen_prefix --vdev=net_memif0,role=client,id=0,socket=$sock"; }
# SIGTERM, then ferrited must exit 0; sets rc=1 otherwise.
memif_stop_ferrited() {
  kill -TERM "$srv"
  local srv_rc=0
  wait "$srv" || srv_rc=$?
  srv=""
  if [ "$srv_rc" != 0 ]; then echo "ferrited exited with $srv_rc after SIGTERM:"; cat "$log"; rc=1; fi
}
