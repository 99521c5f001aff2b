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
# shares), the server's CPU time per op (user + system of all its threads,
# /proc/PID/stat, over the run) and how much of the machine was idle (all
# vCPUs, /proc/stat): with none idle, the generator shares the cores and
# its own cost per op bounds both servers alike; and the memcaslap command. Loopback
# only; every run is bounded by -t and by timeout, every process it starts is
# killed by PID on exit.
#
#   perf/memcached_tcp_bench.sh [seconds=10 (>= 3)] [runs=3] [conc=32]
#
# Needs build/server/ferrited (scripts/build), memcached and memcaslap
# (scripts/install-deps bench).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
[ "$secs" -ge 3 ] || { echo "seconds must be >= 3" >&2; exit 2; }
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
hz=$(getconf CLK_TCK)
ncpu=$(nproc)
srv_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # utime + stime, every thread
idle_ticks() { awk '/^cpu / {print $5 + $6}' /proc/stat; }  # idle + iowait, every vCPU
# threads port server_pid -> "ops/s verify_failed server_cpu_us_per_op idle_pct"
# CPU and idle are sampled over the run's middle (from 1 s in to 1 s before
# its end: memcaslap's start and end are not load), at the run's mean rate.
run() {
  local s0 i0 t0 s1 i1 t1 bg
  memcaslap_run "$2" "$secs" -T "$1" -c "$conc" >"$tmp/run.out" &
  bg=$!
  sleep 1
  s0=$(srv_ticks "$3"); i0=$(idle_ticks); t0=$(date +%s.%N)
  sleep $((secs - 2))
  s1=$(srv_ticks "$3"); i1=$(idle_ticks); t1=$(date +%s.%N)
  wait "$bg"
  awk -v o="$(cat "$tmp/run.out")" -v ds=$((s1 - s0)) -v di=$((i1 - i0)) -v t0="$t0" -v t1="$t1" -v hz="$hz" -v n="$ncpu" 'BEGIN {
    split(o, f, " "); ops = f[1] * (t1 - t0)
    printf "%s %s %.2f %.0f\n", f[1], f[2], (ops > 0 ? ds / hz * 1e6 / ops : 0), 100 * di / hz / (n * (t1 - t0)) }'
}

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
  msrv=$(pgrep -P "$mpid" -x memcached)  # the servers, not their timeout wrappers
  fsrv=$(pgrep -P "$fpid" -x ferrited)
  m=()
  f=()
  r=()
  mc=()
  fc=()
  mi=()
  fi_=()
  for _ in $(seq "$runs"); do  # alternated, so both see the same background load
    read -r x me xc xi < <(run "$t" "$mport" "$msrv"); m+=("$x"); mc+=("$xc"); mi+=("$xi")
    read -r y fe yc yi < <(run "$t" "$fport" "$fsrv"); f+=("$y"); fc+=("$yc"); fi_+=("$yi")
    r+=("$(awk -v f="$y" -v m="$x" 'BEGIN { printf "%.3f", (m > 0 ? f / m : 0) }')")
  done
  mm=$(median "${m[@]}")
  fm=$(median "${f[@]}")
  rm_=$(median "${r[@]}")
  rows+=("| memcached 1.6 -t $t -m 1024 -c 4096 (peer) | $t | $mm | ${m[*]} | $me | 1.00 | 1.00 | $(median "${mc[@]}") | $(median "${mi[@]}") | \`$(cmd_of "$t" PORT)\` |")
  rows+=("$(awk -v f="$fm" -v m="$mm" -v t="$t" -v runs="${f[*]}" -v e="$fe" -v rr="$rm_ (${r[*]})" -v c="$(cmd_of "$t" PORT)" \
    -v cpu="$(median "${fc[@]}")" -v idle="$(median "${fi_[@]}")" 'BEGIN {
    printf "| ferrited server.tcp_workers=%s | %s | %d | %s | %s | %.2f | %s | %s | %s | `%s` |", t, t, f, runs, e, (m > 0 ? f / m : 0), rr, cpu, idle, c }')")
  kill "$mpid" "$fpid" 2>/dev/null || true
  wait "$mpid" "$fpid" 2>/dev/null || true
  rm -f "$tmp/pool$t"
done

echo
echo "memcached TCP: memcaslap ${secs}s, -c $conc connections, key 64 B, value 32 B, 90% get, 10% of gets verified;"
echo "median of $runs runs (all runs listed), servers and peer alternated in the same run"
echo
echo "| server | threads | ops/s (median) | runs | verify_failed (last run) | ratio of medians | median of per-round ratios (each round's) | server CPU µs/op (median) | idle % of all vCPUs (median) | command |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
