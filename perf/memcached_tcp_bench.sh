#!/usr/bin/env bash
# memcached protocol over TCP (issue 18): ferrited with server.tcp_workers =
# 1 and 2 against memcached 1.6 -t 1 and -t 2 (as its users run it: -m 1024
# -c 4096) in the same run, load from memcaslap (libmemcached-tools) with the
# mix of perf/memcached_udp_bench.sh: 64-byte keys, 32-byte values, 90% get /
# 10% set, 10% of gets verified. At N server threads memcaslap runs N
# threads and `conc` connections (default 32: every thread count divides
# it), so on a small host the load generator is not starved by more threads
# than cores. Prints a markdown table: median ops/s of `runs` runs, the ratio
# of the medians to memcached at the same thread count, the median of the
# per-round ratios (each ferrited run over the memcached run just before it:
# on a small VM throughput moves in phases of tens of seconds, which a round
# shares), and the memcaslap command. Loopback
# only; every run is bounded by -t and by timeout, every process it starts is
# killed by PID on exit.
#
#   perf/memcached_tcp_bench.sh [seconds=10] [runs=3] [conc=32]
#
# Needs build/server/ferrited (scripts/build), memcached and memcaslap
# (scripts/install-deps bench).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
runs=${2:-3}
conc=${3:-32}
source perf/memcaslap_lib.sh
wait_port() {  # port -> waits until it accepts (10 s at most)
  for _ in $(seq 100); do
    /usr/bin/python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
limit=$((secs * runs * 2 + 60))  # each server's lifetime: its runs and the peer's

cmd_of() {  # threads port -> the memcaslap command
  echo "memcaslap -s 127.0.0.1:$2 -t ${secs}s -T $1 -c $conc -v 0.1 -F cfg"
}
run() { memcaslap_run "$2" "$secs" -T "$1" -c "$conc"; }  # threads port -> "ops/s verify_failed"

rows=()
for t in 1 2; do
  mport=$(port)
  fport=$(port)
  nport=$(port)
  timeout "$limit" memcached -U 0 -p "$mport" -l 127.0.0.1 -t "$t" -m 1024 -c 4096 -u root &
  mpid=$!
  pids+=("$mpid")
  PMEM_IS_PMEM_FORCE=1 timeout "$limit" "$FERRITED" --port "$nport" --pool "$tmp/pool$t" --pool-size 1GiB \
    --set server.memcached_tcp_port="$fport" --set server.tcp_workers="$t" --set server.pin_cores=false \
    --log-level warn &
  fpid=$!
  pids+=("$fpid")
  wait_port "$mport"
  wait_port "$fport"
  m=()
  f=()
  r=()
  for _ in $(seq "$runs"); do  # alternated, so both see the same background load
    read -r x me < <(run "$t" "$mport"); m+=("$x")
    read -r y fe < <(run "$t" "$fport"); f+=("$y")
    r+=("$(awk -v f="$y" -v m="$x" 'BEGIN { printf "%.3f", (m > 0 ? f / m : 0) }')")
  done
  mm=$(median "${m[@]}")
  fm=$(median "${f[@]}")
  rm_=$(median "${r[@]}")
  rows+=("| memcached 1.6 -t $t -m 1024 -c 4096 (peer) | $t | $mm | ${m[*]} | $me | 1.00 | 1.00 | \`$(cmd_of "$t" PORT)\` |")
  rows+=("$(awk -v f="$fm" -v m="$mm" -v t="$t" -v runs="${f[*]}" -v e="$fe" -v rr="$rm_ (${r[*]})" -v c="$(cmd_of "$t" PORT)" 'BEGIN {
    printf "| ferrited server.tcp_workers=%s | %s | %d | %s | %s | %.2f | %s | `%s` |", t, t, f, runs, e, (m > 0 ? f / m : 0), rr, c }')")
  kill "$mpid" "$fpid" 2>/dev/null || true
  wait "$mpid" "$fpid" 2>/dev/null || true
  rm -f "$tmp/pool$t"
done

echo
echo "memcached TCP: memcaslap ${secs}s, -c $conc connections, key 64 B, value 32 B, 90% get, 10% of gets verified;"
echo "median of $runs runs (all runs listed), servers and peer alternated in the same run"
echo
echo "| server | threads | ops/s (median) | runs | verify_failed (last run) | ratio of medians | median of per-round ratios (each round's) | command |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
