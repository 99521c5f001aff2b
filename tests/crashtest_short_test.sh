#!/bin/sh
# CI's short crash campaign (issue 5), run by meson test crashtest_short:
#   in-process, SIGKILL only (pf off)          >= 100 cycles
#   server (ferrited, kill -9), pf off          20 cycles
#   space (issue 14), pf off: in-process --space error and --space evict,
#     server --space evict                     8, 8, 5 cycles
# and, with the argument "pf" (suite crash-pf, see below):
#   in-process, power failure (random subset)  >= 100 cycles
#   server (ferrited-pfsim), pf random          20 cycles
#   space, pf random: in-process --space error and --space evict, 8 + 8 cycles
# The space campaigns use the recommended overwrite-heavy small pool (see
# ferrite-crashtest --help): 64 MiB of 2 MiB segments, ~1 KB values, every
# key written once first, live data ~50% of the pool (error) or 150%
# (evict: keys absent after recovery are evicted, not lost; an evict
# campaign that never saw a key evicted exits 4). Their cycles are few
# (each costs ~1-3 s: the pool is checked and every key verified); the long
# campaigns are run by hand.
# Each campaign is bounded by --seconds (about 4 minutes in all); --min-cycles
# turns "the time bound cut it short" into a failure (exit 3) instead of a
# silent pass, so a machine too loaded to run the campaign fails it loudly.
# With the argument "negative" it instead proves the tool can fail: a
# campaign that damages one acknowledged value on media after each kill
# (--corrupt-acked, test-only) must exit 1 and report the damage.
set -u
ct="${FERRITE_CRASHTEST:?set FERRITE_CRASHTEST to the ferrite-crashtest binary}"
seed="${FERRITE_CRASHTEST_SEED:-$(date +%s)}"
small="--keys 2000 --value-max 200 --pool-size 48MiB --kill-after-ms-min 5 --kill-after-ms-max 50"
space="--value-min 900 --value-max 1100 --pool-size 64MiB --segment-size 2MiB --kill-after-ms-min 50 --kill-after-ms-max 400"
space_error="--space error --keys 32000 $space"
space_evict="--space evict --keys 96000 $space"

run() {
  echo "== ferrite-crashtest $*"
  "$ct" --quiet "$@"
  rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "crashtest_short: FAILED (exit $rc): ferrite-crashtest $*"
    exit 1
  fi
}

if [ "${1:-}" = "negative" ]; then
  for mode in inprocess server; do
    out=$("$ct" --quiet --mode "$mode" --pf off --cycles 5 --keys 2000 --early-kill-pct 0 --corrupt-acked \
          --pool-size 64MiB --seed "$seed" 2>&1)
    rc=$?
    echo "$out"
    if [ "$rc" -ne 1 ]; then
      echo "crashtest_negative: FAILED: $mode: damaged media went unnoticed (exit $rc, expected 1)"
      exit 1
    fi
    if ! echo "$out" | grep -Eq "FAIL: durability violation"; then
      echo "crashtest_negative: FAILED: $mode: no durability violation reported"
      exit 1
    fi
    # The violation found must be the damage done, not something else.
    key=$(echo "$out" | sed -n 's/.*test-only damage to \(ck-[0-9]*\).*/\1/p' | head -1)
    if [ -z "$key" ] || ! echo "$out" | grep -Eq "^    $key: |\"$key\""; then
      echo "crashtest_negative: FAILED: $mode: the damaged key ($key) is not among the findings"
      exit 1
    fi
  done
  echo "crashtest_negative: OK (seed $seed)"
  exit 0
fi

# With the argument "pf": the power-failure campaigns (meson test crashtest_pf).
# A power-failure cycle costs more than a kill cycle (the shadow image is
# completed and checked), hence the wider time bounds.
if [ "${1:-}" = "pf" ]; then
  run --mode inprocess --pf random --cycles 100 --min-cycles 100 --seconds 200 --seed "$seed" $small
  run --mode server --pf random --cycles 20 --min-cycles 20 --seconds 80 --seed "$seed" $small
  run --mode inprocess --pf random --cycles 8 --min-cycles 8 --seconds 40 --seed "$seed" $space_error
  run --mode inprocess --pf random --cycles 8 --min-cycles 8 --seconds 40 --seed "$seed" $space_evict
  echo "crashtest_pf: OK (seed $seed)"
  exit 0
fi

run --mode inprocess --pf off --cycles 100 --min-cycles 100 --seconds 80 --seed "$seed" $small
run --mode server --pf off --cycles 20 --min-cycles 20 --seconds 30 --seed "$seed" $small
run --mode inprocess --pf off --cycles 8 --min-cycles 8 --seconds 40 --seed "$seed" $space_error
run --mode inprocess --pf off --cycles 8 --min-cycles 8 --seconds 40 --seed "$seed" $space_evict
run --mode server --pf off --cycles 5 --min-cycles 5 --seconds 50 --seed "$seed" $space_evict
echo "crashtest_short: OK (seed $seed)"
