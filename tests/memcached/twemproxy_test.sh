#!/usr/bin/env bash
# Scale-out with an existing proxy (issue 7): three ferrited instances behind
# twemproxy (Debian's nutcracker) with ketama distribution and md5 hashing,
# all on loopback. Checks that keys written through the proxy spread over the
# three servers, that every key reads back through the proxy, that each key
# lives on exactly one server, and that the server twemproxy chose is the one
# Ferrite's client ketama ring (client/ketama.h, libmemcached's ketama)
# chooses for every key.
set -euo pipefail
: "${FERRITED:?set FERRITED to the ferrited binary}"
: "${KETAMA_PLACE:?set KETAMA_PLACE to the ketama_place binary}"
source "$(dirname "$0")/mc_lib.sh"

ports=()
for name in s0 s1 s2; do
  p=$(free_port)
  start_ferrited "$name" "$p"
  ports+=("$p")
done
proxy=$(free_port)
stats=$(free_port)
cat >"$tmp/nutcracker.yml" <<YML
ferrite:
  listen: 127.0.0.1:$proxy
  hash: md5
  distribution: ketama
  timeout: 2000
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:${ports[0]}:1
   - 127.0.0.1:${ports[1]}:1
   - 127.0.0.1:${ports[2]}:1
YML
timeout 600 nutcracker -c "$tmp/nutcracker.yml" -o "$tmp/nutcracker.log" -s "$stats" -a 127.0.0.1 \
  -p "$tmp/nutcracker.pid" &
pids+=($!)
wait_mc_proxy() {
  "$PY" - "$proxy" <<'PYEOF'
import socket, sys, time
port = int(sys.argv[1]); deadline = time.time() + 20
while time.time() < deadline:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"get probe\r\n")
        if s.recv(100).startswith(b"END"): sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("twemproxy did not answer within 20 s")
PYEOF
}
wait_mc_proxy || { cat "$tmp/nutcracker.log"; exit 1; }

# Write N keys through the proxy, read them back through it, then ask each
# server directly which keys it holds.
"$PY" - "$proxy" "${ports[@]}" >"$tmp/placement.txt" <<'PYEOF'
import sys
from pymemcache.client.base import Client
proxy, servers = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
N = 3000
keys = ["user:%d:profile" % i for i in range(N)]
px = Client(("127.0.0.1", proxy), connect_timeout=5, timeout=5)
for i, k in enumerate(keys):
    assert px.set(k, ("value-%d" % i).encode(), noreply=False), k
for i, k in enumerate(keys):
    assert px.get(k) == ("value-%d" % i).encode(), k
direct = [Client(("127.0.0.1", p), connect_timeout=5, timeout=5) for p in servers]
owner = {}
for si, c in enumerate(direct):
    for j in range(0, N, 100):
        for k in c.get_many(keys[j:j + 100]):
            assert k not in owner, "key %s on two servers" % k
            owner[k] = si
assert len(owner) == N, "%d keys found on the servers, %d written" % (len(owner), N)
counts = [sum(1 for v in owner.values() if v == s) for s in range(len(servers))]
print("# keys per server:", counts, file=sys.stderr)
for s, n in enumerate(counts):
    assert n > N * 0.15, "server %d holds only %d of %d keys" % (s, n, N)
for k in keys:
    print(k, owner[k])
PYEOF

# Ferrite's ketama ring must place every key where twemproxy did.
cut -d' ' -f1 "$tmp/placement.txt" >"$tmp/keys.txt"
"$KETAMA_PLACE" "127.0.0.1:${ports[0]}" "127.0.0.1:${ports[1]}" "127.0.0.1:${ports[2]}" <"$tmp/keys.txt" >"$tmp/ring.txt"
paste -d' ' "$tmp/keys.txt" "$tmp/ring.txt" >"$tmp/expected.txt"
if ! diff -q "$tmp/placement.txt" "$tmp/expected.txt" >/dev/null; then
  echo "placement differs from client/ketama for $(diff "$tmp/placement.txt" "$tmp/expected.txt" | grep -c '^<') keys" >&2
  diff "$tmp/placement.txt" "$tmp/expected.txt" | head >&2
  exit 1
fi
echo "twemproxy placement of $(wc -l <"$tmp/keys.txt") keys equals client/ketama"
echo "twemproxy_test: PASS"
