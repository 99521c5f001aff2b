# Shared by perf/memcached_udp_bench.sh and perf/memcached_tcp_bench.sh
# (source it after `cd` to the repository root): a scratch directory in
# /dev/shm with memcaslap's workload file (64-byte keys, 32-byte values,
# 90% get / 10% set), every process added to `pids` killed on exit, free
# loopback ports, memcaslap runs parsed, medians.
FERRITED=${FERRITED:-build/server/ferrited}
tmp=$(mktemp -d /dev/shm/ferrite-mcbench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  rm -rf "$tmp"
}
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
printf 'key\n64 64 1\nvalue\n32 32 1\ncmd\n0 0.1\n1 0.9\n' >"$tmp/cfg"
# memcaslap_run PORT SECS ARGS... -> "ops/s verify_failed" (10% of gets verified)
memcaslap_run() {
  local p=$1 s=$2 out tps failed
  shift 2
  out=$(timeout $((s + 30)) memcaslap -s "127.0.0.1:$p" -t "${s}s" "$@" -v 0.1 -F "$tmp/cfg" 2>&1)
  tps=$(sed -n 's/.*TPS: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
  failed=$(awk '/^verify_failed:/ {print $2}' <<<"$out")
  echo "${tps:-0} ${failed:-?}"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
