#!/usr/bin/env bash
# Keeping serving when a server dies, the client-side way (issue 19):
# libmemcached's replicas (MEMCACHED_BEHAVIOR_NUMBER_OF_REPLICAS, through
# pylibmc, binary protocol) over two ferrited on loopback. Checks that every
# key written with one replica lands on both servers (ferrited's binary
# protocol carries libmemcached's replica writes), and that after kill -9 of
# one ferrited every key still reads back and new writes work. Also prints how
# many replica writes were still in the client's buffer right after the sets
# (docs/operations.md, "Keeping serving when a server dies": the caveats).
# Skipped (77) without pylibmc. Every process is killed by PID on exit.
set -euo pipefail
: "${FERRITED:?set FERRITED to the ferrited binary}"
source "$(dirname "$0")/mc_lib.sh"
if ! "$PY" -c "import pylibmc" 2>/dev/null; then
  echo "replicas_test: SKIP: pylibmc (python3-pylibmc) is not installed"
  exit 77
fi

p0=$(free_port)
p1=$(free_port)
start_ferrited s0 "$p0"
start_ferrited s1 "$p1"
s1_pid=${pids[-1]}

cat >"$tmp/client.py" <<'PYEOF'
import sys, time
import pylibmc
from pymemcache.client.base import Client

p0, p1 = int(sys.argv[1]), int(sys.argv[2])
def log(*a): print(*a, flush=True)
def client():
    return pylibmc.Client(["127.0.0.1:%d" % p0, "127.0.0.1:%d" % p1], binary=True,
                          behaviors={"num_replicas": 1, "ketama": True, "remove_failed": 1,
                                     "retry_timeout": 2, "connect_timeout": 1000})
def held():
    return [len(Client(("127.0.0.1", p), timeout=2).get_many(keys)) for p in (p0, p1)]

N = 500
keys = ["r:%d" % i for i in range(N)]
c = client()
for k in keys:
    c.set(k, b"v-" + k.encode())
log("right after the sets the servers hold %s of %d keys (replica writes still buffered in the client)" % (held(), N))
c.disconnect_all()  # sends what the client still buffered
h = held()
assert h == [N, N], "with one replica both servers hold every key, found %s of %d" % (h, N)
log("after the client flushed: %s" % h)
sys.stdout.write("ready-to-kill\n"); sys.stdout.flush()
assert sys.stdin.readline().strip() == "go"

c = client()
t0 = time.time()
misses = [k for k in keys if c.get(k) != b"v-" + k.encode()]
assert not misses, "%d keys did not read back after one server died, e.g. %s" % (len(misses), misses[:3])
c.set("after-kill", b"yes")
assert c.get("after-kill") == b"yes"
log("one server killed: all %d keys read back from the replicas in %.2f s, new writes work" % (N, time.time() - t0))
log("PY-PASS")
PYEOF
mkfifo "$tmp/to_py"
exec 3<>"$tmp/to_py"
"$PY" "$tmp/client.py" "$p0" "$p1" <&3 >"$tmp/py.out" 2>&1 &
py=$!
pids+=($py)
for _ in $(seq 300); do
  grep -q ready-to-kill "$tmp/py.out" && break
  kill -0 "$py" 2>/dev/null || break
  sleep 0.1
done
grep -q ready-to-kill "$tmp/py.out" || { cat "$tmp/py.out"; exit 1; }
kill -9 "$(pgrep -P "$s1_pid" -x ferrited)"  # s1_pid is the timeout(1) around ferrited
wait "$s1_pid" 2>/dev/null || true
echo go >&3
rc=0
wait "$py" || rc=$?
cat "$tmp/py.out"
[ "$rc" = 0 ] && grep -q PY-PASS "$tmp/py.out" || exit 1
echo "replicas_test: PASS"
