# Shared helpers for the memcached client tests (sourced): free ports,
# ferrited start with the memcached ports, waiting, cleanup on any exit.
tmp=$(mktemp -d /dev/shm/ferrite-mc-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

PY=/usr/bin/python3  # Debian's python3, where python3-pymemcache lives

# A port free for both TCP and UDP on 127.0.0.1.
free_port() {
  "$PY" - <<'PYEOF'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        u.close(); t.close()
PYEOF
}

# Waits (bounded) until a memcached TCP port answers "version".
wait_mc() {
  "$PY" - "$1" <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1]); deadline = time.time() + 20
while time.time() < deadline:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"version\r\n")
        if s.recv(100).startswith(b"VERSION "): sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("memcached port %d did not answer within 20 s" % port)
PYEOF
}

# start_ferrited NAME MCPORT: native port picked freely, memcached UDP and
# TCP both on MCPORT (memaslap wants them equal).
start_ferrited() {
  local name=$1 mcport=$2 nport
  nport=$(free_port)
  PMEM_IS_PMEM_FORCE=1 timeout 600 "$FERRITED" --port "$nport" --pool "$tmp/$name.pool" --pool-size 128MiB \
    --set server.memcached_udp_port="$mcport" --set server.memcached_tcp_port="$mcport" \
    --set server.pin_cores=false >"$tmp/$name.log" 2>&1 &
  pids+=($!)
  wait_mc "$mcport" || { cat "$tmp/$name.log"; return 1; }
}
