#!/usr/bin/env bash
# perf/space_soak.sh: the benchmarks of issue 14 (ferrited refused writes
# with "SERVER_ERROR out of memory" under sustained overwrites while its
# pool was mostly garbage). Owns three measurements, all over loopback UDP,
# driven by ferrite-bench:
#
#  a. overwrite soak: for live data at 10%, 50%, 80% of a $POOL pool,
#     preload, then 90% sets / 10% gets over uniform keys (closed loop,
#     4 flows x 8 deep) for $SECONDS_SOAK s with a per-second timeline.
#     PASS when no set failed and the mean ops/s of the last 5 seconds is at
#     least 0.8x that of the first 5. memcached 1.6 with -m $POOL runs the same
#     soak at $PEER_SHARE% as the peer row (ops/s comparison).
#  b. a plot of ops/s over time, one line per share: perf/plots/space_soak.png
#     ($PLOT to change).
#  c. hit ratio: Zipf 0.99 over keys whose records total 1.5x a memory budget
#     M, cache-aside (--fill-on-miss), 90% gets: ferrited with
#     pool.when_full=evict and a pool of M beside memcached -m M, same
#     generator and seed.
#  d. markdown tables of all of it, with each server's own counters and the
#     exact command lines; raw files (timelines, CSV rows, stats) stay in
#     $RESULTS_DIR.
#
#   perf/space_soak.sh                                   # ~7 minutes
#   SECONDS_SOAK=10 SECONDS_HIT=10 WARMUP_HIT=2 perf/space_soak.sh   # quick look
#   FERRITED_ARGS="--set pool.reserve=0.1 --set cleaner.low_watermark=0.2" perf/space_soak.sh
#
# Environment: POOL (256MiB), SHARES ("10 50 80"; empty: no soak),
# SECONDS_SOAK (60), PEER_SHARE (80; empty: no memcached soak), HIT (1; 0:
# no hit-ratio part), M (64MiB), SECONDS_HIT (60),
# WARMUP_HIT (10), PROTOCOL (native | memcached: what the soak speaks to
# ferrited; native by default, it gave the higher rate on this mix: ~125-180 k
# against ~110 k ops/s), HIT_PROTOCOL (memcached: what the hit-ratio run
# speaks to ferrited, so both servers get the same requests; memcached is
# always driven with its own protocol),
# FERRITED_ARGS (extra ferrited arguments, split on blanks: the issue's new
# keys are passed this way so the script runs against servers with and
# without them), EVICT_ARGS ("--set pool.when_full=evict"), FERRITED,
# FERRITECTL, BENCH (binaries; default under $BUILD_DIR, build/), RESULTS_DIR.
#
# Exit status: 0 when every soak share passed, 1 when one failed, 2 on a
# setup problem. Loopback only; every process started here runs under
# timeout and is stopped by PID on exit (trap); every wait loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD="${BUILD_DIR:-build}"
FERRITED="${FERRITED:-$BUILD/server/ferrited}"
FERRITECTL="${FERRITECTL:-$BUILD/client/ferritectl}"
BENCH="${BENCH:-$BUILD/perf/ferrite-bench}"
POOL="${POOL:-256MiB}"
SHARES="${SHARES-10 50 80}"
SECONDS_SOAK="${SECONDS_SOAK:-60}"
PEER_SHARE="${PEER_SHARE-80}"
M="${M:-64MiB}"
HIT="${HIT:-1}"
SECONDS_HIT="${SECONDS_HIT:-60}"
WARMUP_HIT="${WARMUP_HIT:-10}"
PROTOCOL="${PROTOCOL:-native}"
HIT_PROTOCOL="${HIT_PROTOCOL:-memcached}"
FERRITED_ARGS="${FERRITED_ARGS:-}"
EVICT_ARGS="${EVICT_ARGS:---set pool.when_full=evict}"
PLOT="${PLOT:-perf/plots/space_soak.png}"
RESULTS_DIR="${RESULTS_DIR:-/tmp/ferrite-space-soak-$(date -u +%Y%m%dT%H%M%SZ)}"
KEY_SIZE=16
VALUE_SIZE=1000
RECORD=$(( (24 + KEY_SIZE + VALUE_SIZE + 7) / 8 * 8 ))  # ferrited's log record: header + key + value, 8-aligned
FLOWS=4
DEPTH=8

die() { echo "space_soak: $*" >&2; exit 2; }
for b in "$FERRITED" "$FERRITECTL" "$BENCH"; do [ -x "$b" ] || die "$b missing (scripts/build)"; done
command -v memcached >/dev/null || die "memcached missing (scripts/install-deps bench)"
command -v python3 >/dev/null || die "python3 missing"
for p in "$PROTOCOL" "$HIT_PROTOCOL"; do
  case "$p" in memcached | native) ;; *) die "PROTOCOL and HIT_PROTOCOL: memcached or native" ;; esac
done
fproto="$PROTOCOL"  # what the generator speaks to ferrited in the phase running now
[[ "$SECONDS_SOAK" =~ ^[0-9]+$ && "$SECONDS_SOAK" -ge 1 && "$SECONDS_SOAK" -le 3600 ]] || die "SECONDS_SOAK: 1..3600"
[[ "$SECONDS_HIT" =~ ^[0-9]+$ && "$SECONDS_HIT" -ge 1 && "$SECONDS_HIT" -le 3600 ]] || die "SECONDS_HIT: 1..3600"
[[ "$WARMUP_HIT" =~ ^[0-9]+$ && "$WARMUP_HIT" -le 600 ]] || die "WARMUP_HIT: 0..600"
read -r -a FARGS <<<"$FERRITED_ARGS"
read -r -a EARGS <<<"$EVICT_ARGS"

bytes() {  # 256MiB | 1GiB | 512KiB | 268435456 -> bytes
  local v="$1"
  case "$v" in
    *KiB) echo $(( ${v%KiB} * 1024 )) ;;
    *MiB) echo $(( ${v%MiB} * 1024 * 1024 )) ;;
    *GiB) echo $(( ${v%GiB} * 1024 * 1024 * 1024 )) ;;
    *[!0-9]* | "") die "size \"$v\": a number of bytes or N KiB/MiB/GiB" ;;
    *) echo "$v" ;;
  esac
}
POOL_BYTES=$(bytes "$POOL")
M_BYTES=$(bytes "$M")
POOL_MB=$(( POOL_BYTES / 1048576 ))
M_MB=$(( M_BYTES / 1048576 ))
if [ "$POOL_MB" -lt 1 ] || [ "$M_MB" -lt 1 ]; then die "POOL and M must be at least 1 MiB (memcached -m is in MiB)"; fi

mkdir -p "$RESULTS_DIR" "$(dirname "$PLOT")"
tmp="$(mktemp -d /dev/shm/ferrite-soak-XXXXXX)"  # pools (tmpfs, as PMEM_IS_PMEM_FORCE expects)
pids=()

stop_pid() {  # stop a process started here (a timeout wrapper) and its child, bounded
  local p="$1" c
  kill -TERM "$p" 2>/dev/null || true  # timeout passes TERM on to its child
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    for c in $(pgrep -P "$p" 2>/dev/null || true); do kill -KILL "$c" 2>/dev/null || true; done
    kill -KILL "$p" 2>/dev/null || true
  fi
  wait "$p" 2>/dev/null || true
  local keep=()
  for c in "${pids[@]}"; do [ "$c" = "$p" ] || keep+=("$c"); done
  pids=("${keep[@]+"${keep[@]}"}")
}
# Runs a bounded client in the background and waits for it, so a signal
# to this script is handled at once (bash runs traps only between
# foreground commands) and the trap can stop the client by its PID.
run_bounded() {
  "$@" &
  local p=$! rc=0
  pids+=("$p")
  wait "$p" || rc=$?
  local keep=() c
  for c in "${pids[@]}"; do [ "$c" = "$p" ] || keep+=("$c"); done
  pids=("${keep[@]+"${keep[@]}"}")
  return "$rc"
}
cleanup() {
  for p in "${pids[@]+"${pids[@]}"}"; do stop_pid "$p"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {  # a UDP port free on 127.0.0.1 whose TCP twin is free too (memcached uses both)
  timeout 10 python3 -c '
import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()'
}

mc_stats() {  # PORT -> memcached "stats" over TCP as "name value" lines
  timeout 10 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"stats\r\n")
buf = b""
while not buf.endswith(b"END\r\n"):
    d = s.recv(65536)
    if not d: break
    buf += d
for line in buf.decode().splitlines():
    f = line.split()
    if len(f) == 3 and f[0] == "STAT": print(f[1], f[2])' "$1"
}

stat_of() {  # FILE NAME -> the value, or "-" when the server has no such counter
  local v
  v=$(awk -v k="$2" '$1 == k { print $2; exit }' "$1" 2>/dev/null || true)
  echo "${v:--}"
}

cmds=()
quote() { printf '%q ' "$@" | sed 's/ $//'; }
log_cmd() { cmds+=("$*"); }

# Server state for the phase running now.
srv=""   # PID (the timeout wrapper)
sport="" # the port the generator uses
nport="" # ferrited's native port (ferritectl stats)
kind=""  # ferrited | memcached

start_ferrited() {  # NAME POOL_SIZE [extra ferrited args...]; 0 when it answers
  local name="$1" size="$2"
  shift 2
  nport=$(free_port)
  local mport
  mport=$(free_port)
  rm -f "$tmp/pool"
  local args=(--pool "$tmp/pool" --pool-size "$size" --port "$nport" --set server.pin_cores=false
    --set server.memcached_udp_port="$mport" --log-level warn "$@")
  log_cmd "PMEM_IS_PMEM_FORCE=1 $(quote "$FERRITED" "${args[@]}")"
  PMEM_IS_PMEM_FORCE=1 timeout -k 5 "$life" "$FERRITED" "${args[@]}" >"$RESULTS_DIR/$name.ferrited.log" 2>&1 &
  srv=$!
  pids+=("$srv")
  kind=ferrited
  sport=$([ "$fproto" = native ] && echo "$nport" || echo "$mport")
  for _ in $(seq 1 100); do
    if ! kill -0 "$srv" 2>/dev/null; then
      echo "space_soak: ferrited ($name) exited:" >&2
      cat "$RESULTS_DIR/$name.ferrited.log" >&2
      stop_pid "$srv"
      return 1
    fi
    timeout 5 "$FERRITECTL" --server "127.0.0.1:$nport" stats >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "space_soak: ferrited ($name) did not answer in 10 s" >&2
  stop_pid "$srv"
  return 1
}

start_memcached() {  # NAME MEMORY_MB
  local name="$1" mb="$2"
  sport=$(free_port)
  nport=""
  local args=(-U "$sport" -p "$sport" -l 127.0.0.1 -t 1 -m "$mb")
  if [ "$(id -u)" -eq 0 ]; then args+=(-u root); fi
  log_cmd "$(quote memcached "${args[@]}")"
  timeout -k 5 "$life" memcached "${args[@]}" >"$RESULTS_DIR/$name.memcached.log" 2>&1 &
  srv=$!
  pids+=("$srv")
  kind=memcached
  local st
  for _ in $(seq 1 100); do
    kill -0 "$srv" 2>/dev/null || { cat "$RESULTS_DIR/$name.memcached.log" >&2; stop_pid "$srv"; return 1; }
    st=$(mc_stats "$sport" 2>/dev/null || true)
    if grep -q '^pid ' <<<"$st"; then return 0; fi
    sleep 0.1
  done
  stop_pid "$srv"
  return 1
}

server_stats() {  # -> FILE: the running server's counters as "name value"
  if [ "$kind" = ferrited ]; then
    timeout 10 "$FERRITECTL" --server "127.0.0.1:$nport" stats >"$1" 2>&1 || true
  else
    mc_stats "$sport" >"$1" 2>&1 || true
  fi
}

proto_of() { if [ "$kind" = ferrited ]; then echo "$fproto"; else echo memcached; fi; }

bench() {  # LABEL BOUND_SECONDS [ferrite-bench args...]: one run, its CSV row appended to $RESULTS_DIR/runs.csv
  local label="$1" bound="$2"
  shift 2
  local args=(--port "$sport" --protocol "$(proto_of)" --key-size "$KEY_SIZE" --value-size "$VALUE_SIZE"
    --flows "$FLOWS" --depth "$DEPTH" --mode closed --label "$label" --format csv --quiet
    --out "$RESULTS_DIR/runs.csv" "$@")
  log_cmd "$(quote "$BENCH" "${args[@]}")"
  run_bounded timeout -k 5 "$bound" "$BENCH" "${args[@]}" >/dev/null 2>"$RESULTS_DIR/$label.bench.err" || {
    echo "space_soak: ferrite-bench ($label) failed:" >&2
    tail -5 "$RESULTS_DIR/$label.bench.err" >&2
    return 1
  }
}

pre=""
preload() {  # NAME KEYS -> $pre: "ok", or the generator's own summary of what failed
  local name="$1" keys="$2" log="$RESULTS_DIR/$1.preload.log"
  local args=(--port "$sport" --protocol "$(proto_of)" --key-size "$KEY_SIZE" --value-size "$VALUE_SIZE"
    --flows "$FLOWS" --depth "$DEPTH" --keys "$keys" --preload-only)
  log_cmd "$(quote "$BENCH" "${args[@]}")"
  if run_bounded timeout -k 5 300 "$BENCH" "${args[@]}" >"$log" 2>&1; then
    pre=ok
  else
    pre=$(sed -n 's/^ferrite-bench: preload: //p' "$log" | head -1)
    pre="${pre:-failed}"
  fi
}

col() {  # LABEL COLUMN -> the column of the label's row in runs.csv (header names)
  if [ ! -s "$RESULTS_DIR/runs.csv" ]; then echo "-"; return 0; fi
  awk -F, -v l="$1" -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
    $1 == l && (c in idx) { v = $(idx[c]) } END { print (v == "" ? "-" : v) }' "$RESULTS_DIR/runs.csv"
}

edges() {  # TIMELINE -> "first5 last5 ok5 rows": mean ops/s over the first and the last 5 rows, sets ok/s over the last 5
  awk -F, 'NR > 1 { n++; r[n] = $3; ok[n] = $4; len[n] = ($3 > 0 ? $2 / $3 : 1) }
    END { k = (n < 5 ? n : 5); f = 0; l = 0; o = 0; t = 0
          for (i = 1; i <= k; i++) f += r[i]
          for (i = n - k + 1; i <= n; i++) { l += r[i]; o += ok[i]; t += len[i] }
          printf "%.0f %.0f %.0f %d\n", (k ? f / k : 0), (k ? l / k : 0), (t > 0 ? o / t : 0), n }' "$1"
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"
echo "space_soak: results in $RESULTS_DIR" >&2

# ---- a. overwrite soak ----
life=$(( SECONDS_SOAK + 420 ))  # a server's life bound: preload + soak + stats, with room
soak_rows=()
soak_fail=0
soak_one() {  # NAME SHARE -> appends a table row; sets soak_fail
  local name="$1" share="$2"
  local keys=$(( POOL_BYTES * share / 100 / RECORD ))
  preload "$name" "$keys"
  echo "space_soak: $name: $keys keys preloaded ($pre); soaking ${SECONDS_SOAK} s" >&2
  local tl="$RESULTS_DIR/$name.timeline.csv"
  bench "$name" $(( SECONDS_SOAK + 60 )) --keys "$keys" --get-ratio 0.1 --duration "$SECONDS_SOAK" --timeline "$tl" ||
    { soak_rows+=("| $name | $(proto_of) | $share% | $keys | $pre | run failed | | | | | | | | | FAIL |"); soak_fail=1; return; }
  server_stats "$RESULTS_DIR/$name.stats.txt"
  local f l ok n
  read -r f l ok n < <(edges "$tl")
  local failed lost errors
  failed=$(col "$name" sets_failed)
  lost=$(col "$name" lost)
  errors=$(col "$name" errors)
  local st="$RESULTS_DIR/$name.stats.txt"
  local verdict ratio
  ratio=$(awk -v f="$f" -v l="$l" 'BEGIN { printf "%.2f", (f > 0 ? l / f : 0) }')
  if [ "$failed" = 0 ] && awk -v f="$f" -v l="$l" 'BEGIN { exit !(f > 0 && l >= 0.8 * f) }'; then
    verdict=PASS
  else
    verdict=FAIL
    if [ "$kind" = ferrited ]; then soak_fail=1; fi
  fi
  echo "space_soak: $name: $n timeline rows; first 5 s $f ops/s, last 5 s $l ops/s ($ratio), sets_failed $failed: $verdict" >&2
  local wa ev refused
  if [ "$kind" = ferrited ]; then
    wa=$(stat_of "$st" write_amplification)
    ev=$(stat_of "$st" evictions)
    refused="$(stat_of "$st" refused_writes_live_full) / $(stat_of "$st" refused_writes_cleaner_behind) / $(stat_of "$st" out_of_memory)"
  else
    wa="-"
    ev=$(stat_of "$st" evictions)
    refused="- / - / -"
  fi
  soak_rows+=("| $name | $(proto_of) | $share% | $keys | $pre | $f | $l | $ratio | $ok | $failed | $lost / $errors | $wa | $ev | $refused | $verdict |")
}

for share in $SHARES; do
  [[ "$share" =~ ^[0-9]+$ && "$share" -ge 1 && "$share" -le 100 ]] || die "share \"$share\": 1..100"
  if start_ferrited "soak$share" "$POOL" "${FARGS[@]+"${FARGS[@]}"}"; then
    soak_one "soak$share" "$share"
    stop_pid "$srv"
  else
    soak_rows+=("| soak$share | $PROTOCOL | $share% | | ferrited did not start | | | | | | | | | | FAIL |")
    soak_fail=1
  fi
done
if [ -n "$PEER_SHARE" ]; then
  if start_memcached "peer$PEER_SHARE" "$POOL_MB"; then
    soak_one "peer$PEER_SHARE" "$PEER_SHARE"
    stop_pid "$srv"
  else
    soak_rows+=("| peer$PEER_SHARE | memcached | $PEER_SHARE% | | memcached did not start | | | | | | | | | | |")
  fi
fi

# ---- b. plot ----
# Top: ops/s (every answered op, refused sets included) per share; bottom:
# the sets the server accepted per second (ops/s x sets_ok / ops of each row).
plot_note="not drawn: gnuplot missing (scripts/install-deps bench installs gnuplot-nox)"
if command -v gnuplot >/dev/null; then
  plot_note="not drawn: no soak timeline"
  top=()
  bottom=()
  for share in $SHARES; do
    tl="$RESULTS_DIR/soak$share.timeline.csv"
    if [ -s "$tl" ]; then
      top+=("'$tl' using 1:3 with linespoints title 'live data $share% of $POOL'")
      bottom+=("'$tl' using 1:(\$2 > 0 ? \$4 * \$3 / \$2 : 0) with linespoints title 'live data $share% of $POOL'")
    fi
  done
  if [ "${#top[@]}" -gt 0 ]; then
    top_plot=$(printf '%s, ' "${top[@]}")
    bottom_plot=$(printf '%s, ' "${bottom[@]}")
    timeout 60 gnuplot <<GP
set terminal pngcairo size 900,800 noenhanced
set output '$PLOT'
set datafile separator ','
set multiplot layout 2,1 title 'ferrited overwrite soak: $POOL pool, 90% sets, uniform keys, ${VALUE_SIZE}-byte values, $PROTOCOL protocol, $FLOWS flows x $DEPTH'
set key autotitle columnhead bottom right
set grid
set yrange [0:*]
set ylabel 'ops/s (refused sets included)'
plot ${top_plot%, }
set xlabel 'second'
set key top right
set ylabel 'sets stored per second'
plot ${bottom_plot%, }
unset multiplot
GP
    plot_note="$PLOT (top: ops/s; bottom: sets stored per second)"
  fi
fi

# ---- c. hit ratio ----
fproto="$HIT_PROTOCOL"
life=$(( SECONDS_HIT + WARMUP_HIT + 300 ))
hit_keys=$(( M_BYTES * 3 / 2 / RECORD ))
hit_rows=()
evict_note=""
hit_one() {  # NAME DESCRIPTION
  local name="$1" desc="$2"
  echo "space_soak: $name: ${SECONDS_HIT} s cache-aside over $hit_keys keys" >&2
  if ! bench "$name" $(( SECONDS_HIT + WARMUP_HIT + 60 )) --keys "$hit_keys" --zipf 0.99 --get-ratio 0.9 \
    --fill-on-miss --warmup "$WARMUP_HIT" --duration "$SECONDS_HIT" --seed 1 \
    --timeline "$RESULTS_DIR/$name.timeline.csv"; then
    hit_rows+=("| $desc | $M | run failed | | | | | | |")
    return
  fi
  server_stats "$RESULTS_DIR/$name.stats.txt"
  hit_rows+=("$name|$desc")
}
if [ "$HIT" = 1 ]; then
  if "$FERRITED" --print-config "${FARGS[@]+"${FARGS[@]}"}" "${EARGS[@]}" >/dev/null 2>"$RESULTS_DIR/evict-check.err"; then
    fdesc="ferrited, $(quote "${EARGS[@]}"), --pool-size $M"
    hit_fargs=("${FARGS[@]+"${FARGS[@]}"}" "${EARGS[@]}")
  else
    evict_note="ferrited rejects $(quote "${EARGS[@]}") ($(tr -d '\n' <"$RESULTS_DIR/evict-check.err")): its row is the server's default mode (before the fix)"
    echo "space_soak: $evict_note" >&2
    fdesc="ferrited, default mode (no eviction: $(quote "${EARGS[@]}") rejected), --pool-size $M"
    hit_fargs=("${FARGS[@]+"${FARGS[@]}"}")
  fi
  if start_ferrited hit_ferrited "$M" "${hit_fargs[@]+"${hit_fargs[@]}"}"; then
    hit_one hit_ferrited "$fdesc"
    stop_pid "$srv"
  else
    hit_rows+=("| $fdesc | $M | ferrited did not start | | | | | | |")
  fi
  if start_memcached hit_memcached "$M_MB"; then
    hit_one hit_memcached "memcached 1.6, -m $M_MB (LRU eviction)"
    stop_pid "$srv"
  else
    hit_rows+=("| memcached -m $M_MB | $M | memcached did not start | | | | | | |")
  fi
fi

# ---- d. report ----
report="$RESULTS_DIR/report.md"
{
  echo "## Space soak (issue 14): overwrites over a full pool, and hit ratio under eviction"
  echo
  echo "$started, source tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes'), $(nproc) cores;"
  echo "load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg); raw files in \`$RESULTS_DIR\`."
  echo "ferrited: \`$FERRITED\` (built $(date -u -r "$FERRITED" '+%Y-%m-%d %H:%M UTC')), extra arguments \`${FERRITED_ARGS:-(none)}\`; generator: ferrite-bench over loopback UDP"
  echo "(memcached protocol to memcached), closed loop, $FLOWS flows x $DEPTH outstanding, $KEY_SIZE-byte keys,"
  echo "$VALUE_SIZE-byte values ($RECORD-byte ferrited records). ops/s counts every answered op, refused sets included."
  echo
  echo "### Overwrite soak: $POOL pool, 90% sets / 10% gets, uniform keys, $SECONDS_SOAK s"
  echo
  echo "Keys = share x pool / $RECORD bytes, preloaded. PASS: sets_failed = 0 and last-5-s ops/s >= 0.8 x first-5-s ops/s."
  echo "refused: the server's refused_writes_live_full / refused_writes_cleaner_behind / out_of_memory counters (- where it has none)."
  echo
  echo "| run | protocol | live share | keys | preload | first 5 s ops/s | last 5 s ops/s | last/first | sets ok/s, last 5 s | sets_failed | lost / errors | write amplification | evictions | refused | result |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${soak_rows[@]}"
  echo
  if [ -n "$PEER_SHARE" ]; then
    echo "The peer row is memcached 1.6 \`-m $POOL_MB\` (its result is shown, not counted in the exit status)."
    echo
  fi
  echo "Throughput over time: $plot_note"
  echo
  if [ "$HIT" != 1 ]; then
    echo "(hit-ratio part not run: HIT=$HIT)"
  else
    echo "### Hit ratio: Zipf 0.99 over $hit_keys keys (1.5 x $M of $RECORD-byte records), cache-aside, 90% gets"
    echo
    echo "${WARMUP_HIT} s warmup (from empty), then $SECONDS_HIT s measured; the same generator, seed and key sequence"
    echo "for both, $HIT_PROTOCOL protocol to ferrited. A get that misses is followed by a set of its key (same flow)."
    if [ -n "$evict_note" ]; then
      echo
      echo "Note: $evict_note."
    fi
    echo
    echo "| server | memory | hit ratio | ops/s | evictions | hit ratio / memcached's | ops/s / memcached's | sets_failed | lost |"
    echo "|---|---|---|---|---|---|---|---|---|"
    mh=$(col hit_memcached hit_ratio)
    mo=$(col hit_memcached ops_per_s)
    for r in "${hit_rows[@]}"; do
      if [[ "$r" == \|* ]]; then echo "$r"; continue; fi
      name="${r%%|*}"
      desc="${r#*|}"
      h=$(col "$name" hit_ratio)
      o=$(col "$name" ops_per_s)
      ev=$(stat_of "$RESULTS_DIR/$name.stats.txt" evictions)
      awk -v d="$desc" -v m="$M" -v h="$h" -v o="$o" -v ev="$ev" -v mh="$mh" -v mo="$mo" \
        -v sf="$(col "$name" sets_failed)" -v lo="$(col "$name" lost)" 'BEGIN {
        rh = (mh + 0 > 0 && h != "-") ? sprintf("%.3f", h / mh) : "-"
        ro = (mo + 0 > 0 && o != "-") ? sprintf("%.2f", o / mo) : "-"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", d, m, h, o, ev, rh, ro, sf, lo }'
    done
  fi
  echo
  echo "### Command lines (in order)"
  echo
  echo '```sh'
  printf '%s\n' "${cmds[@]}"
  echo '```'
} >"$report"
cat "$report"
[ "$soak_fail" = 0 ] || exit 1
