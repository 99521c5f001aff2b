#!/usr/bin/env bash
# Keeping serving when a server dies (issue 19): two ferrited instances (each
# its own pool, memcached protocol over TCP on loopback) behind twemproxy
# (Debian's nutcracker) with auto_eject_hosts. The test:
#   1. writes keys through the proxy and learns, by asking each server
#      directly, which server holds each key;
#   2. kill -9 one ferrited; within a bounded ejection window every op through
#      the proxy succeeds again (a client retries an op that failed, at most
#      a few times): keys that lived on the dead server miss (a cache's
#      contract), keys on the live one still hit, new writes are stored and
#      read back;
#   3. restarts the dead ferrited on the same pool and port: after
#      server_retry_timeout twemproxy sends its keys to it again, and every key
#      it acknowledged before the kill reads back (Ferrite's durability),
#      including the ones overwritten during the outage, which read their OLD
#      value (the write went to the other server): the stale-read caveat
#      docs/operations.md ("Keeping serving when a server dies") states.
# Skipped (77) when nutcracker is not installed. Every process it starts is
# killed by PID on exit (mc_lib.sh's trap); each wait is bounded.
set -euo pipefail
: "${FERRITED:?set FERRITED to the ferrited binary}"
NUTCRACKER="${NUTCRACKER:-$(command -v nutcracker || echo /usr/sbin/nutcracker)}"
if [ ! -x "$NUTCRACKER" ]; then
  echo "failover_test: SKIP: nutcracker (twemproxy) is not installed (apt-get install nutcracker)"
  exit 77
fi
source "$(dirname "$0")/mc_lib.sh"

p0=$(free_port)
p1=$(free_port)
start_ferrited s0 "$p0"
start_ferrited s1 "$p1"
s1_pid=${pids[-1]}
proxy=$(free_port)
stats=$(free_port)
retry_ms=3000
# The configuration docs/operations.md shows, with this test's ports.
cat >"$tmp/nutcracker.yml" <<YML
ferrite:
  listen: 127.0.0.1:$proxy
  hash: md5
  distribution: ketama
  timeout: 1000
  auto_eject_hosts: true
  server_failure_limit: 2
  server_retry_timeout: $retry_ms
  servers:
   - 127.0.0.1:$p0:1
   - 127.0.0.1:$p1:1
YML
timeout 600 "$NUTCRACKER" -c "$tmp/nutcracker.yml" -o "$tmp/nutcracker.log" -s "$stats" -a 127.0.0.1 \
  -p "$tmp/nutcracker.pid" &
pids+=($!)

# Phases run by one Python process, driven by its stdin/stdout: it prints
# "ready-to-kill" / "ready-to-restart" and waits for a line on stdin.
cat >"$tmp/client.py" <<'PYEOF'
import socket, sys, time
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheError

proxy, p0, p1, retry_ms = (int(a) for a in sys.argv[1:5])
stdin = open(0)
def log(*a): print(*a, flush=True)
def wait_for_go(what):
    log(what)
    assert stdin.readline().strip() == "go", "driver went away"

def proxy_client():
    return Client(("127.0.0.1", proxy), connect_timeout=2, timeout=2)
px = proxy_client()
errors = 0
def through_proxy(op, *args, attempts=4):
    """One op through twemproxy; an op twemproxy answers with an error (the
    dead server not yet ejected) is retried after 100 ms, as a client would."""
    global px, errors
    for i in range(attempts):
        try:
            return getattr(px, op)(*args)
        except (MemcacheError, OSError) as e:
            errors += 1
            if i + 1 == attempts:
                raise AssertionError("%s%r failed %d times, last: %r" % (op, args, attempts, e))
            px.close(); px = proxy_client(); time.sleep(0.1)

# Twemproxy answering (bounded).
deadline = time.time() + 20
while True:
    try:
        px.get("probe"); break
    except (MemcacheError, OSError):
        assert time.time() < deadline, "twemproxy did not answer within 20 s"
        px.close(); px = proxy_client(); time.sleep(0.1)

# 1. Keys written through the proxy; who holds each.
N = 600
keys = ["k:%d" % i for i in range(N)]
for i, k in enumerate(keys):
    assert through_proxy("set", k, b"v1-%d" % i, 0, False), k
direct = {0: Client(("127.0.0.1", p0), timeout=2), 1: Client(("127.0.0.1", p1), timeout=2)}
owner = {}
for s, c in direct.items():
    for j in range(0, N, 100):
        for k in c.get_many(keys[j:j + 100]):
            owner[k] = s
assert len(owner) == N, "%d of %d keys found on the servers" % (len(owner), N)
on1 = [k for k in keys if owner[k] == 1]
on0 = [k for k in keys if owner[k] == 0]
assert len(on1) > N // 5 and len(on0) > N // 5, "keys not spread: %d on s0, %d on s1" % (len(on0), len(on1))
val = {k: b"v1-%d" % i for i, k in enumerate(keys)}
log("placed: %d keys on s0, %d on s1" % (len(on0), len(on1)))
errors = 0
direct[1].close()

# 2. s1 killed (-9) by the driver. Ops through the proxy until one for an
#    s1 key succeeds: that is the ejection window as a client sees it.
wait_for_go("ready-to-kill")
t_kill = time.time()
seen = []
while True:
    try:
        r = px.get(on1[0])
        break
    except (MemcacheError, OSError) as e:
        seen.append(repr(e))
        px.close(); px = proxy_client(); time.sleep(0.05)
        assert time.time() - t_kill < 10, "s1 keys still fail 10 s after the kill: %r" % e
window = time.time() - t_kill
assert len(seen) <= 4, "%d failed ops before the dead server was ejected: %s" % (len(seen), seen)
log("ejection window: %.2f s, %d failed ops before the first answer for an s1 key %s" % (window, len(seen), seen))
assert r is None, "key of the dead server answered %r" % r
# Within the outage: old keys, new keys, overwrites of dead-server keys.
t_outage = time.time()
miss1 = sum(through_proxy("get", k) is None for k in on1)
assert miss1 == len(on1), "%d of %d keys of the dead server answered" % (len(on1) - miss1, len(on1))
for k in on0:
    assert through_proxy("get", k) == val[k], k
new = ["n:%d" % i for i in range(300)]
for k in new:
    assert through_proxy("set", k, b"new-" + k.encode(), 0, False), k
for k in new:
    assert through_proxy("get", k) == b"new-" + k.encode(), k
overwritten = on1[:20]
for k in overwritten:
    assert through_proxy("set", k, b"v2-" + k.encode(), 0, False), k
    assert through_proxy("get", k) == b"v2-" + k.encode(), k
log("outage: %d s1 keys missed, %d s0 keys hit, %d new keys written and read, %d s1 keys overwritten; "
    "%d ops retried in %.1f s" % (len(on1), len(on0), len(new), len(overwritten), errors, time.time() - t_outage))

# Still down past server_retry_timeout: twemproxy tries s1 again, the op
# that meets it fails and is retried; every op still gets its answer.
errors = 0
t_end = time.time() + 1.5 * retry_ms / 1000
ops = 0
while time.time() < t_end:
    k = on1[ops % len(on1)]
    assert through_proxy("get", k) in (None, b"v2-" + k.encode()), k
    ops += 1
    time.sleep(0.002)
log("%.1f s more of outage: %d gets answered, %d of them after a retry (twemproxy re-trying s1)"
    % (1.5 * retry_ms / 1000, ops, errors))

# 3. s1 restarted on the same pool and port by the driver; twemproxy re-adds
#    it at its next retry (retry_ms after the last failure), bounded here.
wait_for_go("ready-to-restart")
t_restart = time.time()
probe = on1[-1]
while True:
    r = through_proxy("get", probe)
    if r == val[probe]:
        break
    assert time.time() - t_restart < 3 * retry_ms / 1000 + 10, "s1 not re-added %.0f s after restart" % (time.time() - t_restart)
    time.sleep(0.1)
log("re-added %.2f s after the restart (server_retry_timeout %d ms)" % (time.time() - t_restart, retry_ms))
for k in on1:
    want = val[k]  # overwritten ones too: the overwrite went to s0, s1 serves its own (stale) value
    got = through_proxy("get", k)
    assert got == want, "key %s: %r through the proxy, acknowledged %r before the kill" % (k, got, want)
for k in on0:
    assert through_proxy("get", k) == val[k], k
d1 = Client(("127.0.0.1", p1), timeout=2)
for j in range(0, len(on1), 100):
    got = d1.get_many(on1[j:j + 100])
    assert all(got.get(k) == val[k] for k in on1[j:j + 100]), "s1's pool lost acknowledged keys"
log("after restart: all %d keys acknowledged by s1 before the kill read back (%d overwritten during the outage "
    "read their pre-kill value)" % (len(on1), len(overwritten)))
# Keys written during the outage all live on s0; those the ring now gives
# back to s1 miss through the proxy (orphaned on s0 until evicted).
back = [k for k in new if through_proxy("get", k) is None]
d0 = Client(("127.0.0.1", p0), timeout=2)
assert all(d0.get(k) == b"new-" + k.encode() for k in new), "outage writes not all on s0"
assert 0 < len(back) < len(new), "%d of %d outage keys miss after the re-add" % (len(back), len(new))
log("%d of %d keys written during the outage now hash to s1 again and miss through the proxy" % (len(back), len(new)))
log("PY-PASS")
PYEOF
mkfifo "$tmp/to_py"
exec 3<>"$tmp/to_py"
"$PY" "$tmp/client.py" "$proxy" "$p0" "$p1" "$retry_ms" <&3 >"$tmp/py.out" 2>&1 &
py=$!
pids+=($py)

wait_line() {  # wait_line TEXT: bounded wait for the Python side to print TEXT
  for _ in $(seq 600); do
    grep -q "$1" "$tmp/py.out" && return 0
    kill -0 "$py" 2>/dev/null || break
    sleep 0.1
  done
  echo "failover_test: no '$1' from the client:"; cat "$tmp/py.out"; cat "$tmp/nutcracker.log"; exit 1
}
wait_line ready-to-kill
# s1_pid is the timeout(1) wrapping ferrited: the SIGKILL goes to ferrited itself.
s1_ferrited=$(pgrep -P "$s1_pid" -x ferrited)
kill -9 "$s1_ferrited"
wait "$s1_pid" 2>/dev/null || true
echo go >&3
wait_line ready-to-restart
PMEM_IS_PMEM_FORCE=1 timeout 600 "$FERRITED" --port "$(free_port)" --pool "$tmp/s1.pool" --pool-size 128MiB \
  --set server.memcached_udp_port="$p1" --set server.memcached_tcp_port="$p1" \
  --set server.pin_cores=false >"$tmp/s1-restart.log" 2>&1 &
pids+=($!)
wait_mc "$p1" || { cat "$tmp/s1-restart.log"; exit 1; }
echo go >&3
rc=0
wait "$py" || rc=$?
cat "$tmp/py.out"
if [ "$rc" != 0 ] || ! grep -q PY-PASS "$tmp/py.out"; then
  echo "--- nutcracker log"; tail -20 "$tmp/nutcracker.log"
  exit 1
fi
echo "failover_test: PASS"
