#!/usr/bin/env bash
# The memcached client libraries' own test suites against ferrited (issue
# 17), and against memcached 1.6.18 in the same run for comparison:
#   pymemcache 3.5.2: pymemcache/test/test_integration.py (its TLS tests
#     need a TLS server and are deselected)
#   pylibmc 1.6.3: tests/ (test_no_autoconf asks localhost:11211, the
#     library's default, and is deselected)
# The suites are not packaged in Debian and this machine reaches no PyPI, so
# they are read from source checkouts at those tags (the versions of
# Debian's python3-pymemcache and python3-pylibmc, which are what runs):
#   PYMEMCACHE_SRC=<pymemcache checkout> PYLIBMC_SRC=<pylibmc checkout>
# Without them the test is skipped (exit 77). Loopback only; every process
# started here is stopped on exit (mc_lib.sh).
# Exit 0 only if each suite passes against ferrited exactly what it passes
# against memcached, and everything it runs passes against memcached.
set -euo pipefail
: "${FERRITED:?set FERRITED to the ferrited binary}"
if [ -z "${PYMEMCACHE_SRC:-}" ] || [ -z "${PYLIBMC_SRC:-}" ]; then
  echo "client_suites: PYMEMCACHE_SRC and PYLIBMC_SRC not set: skipped"
  exit 77
fi
source "$(dirname "$0")/mc_lib.sh"
for m in pytest pymemcache pylibmc; do
  "$PY" -c "import $m" 2>/dev/null || { echo "client_suites: $PY lacks $m: skipped"; exit 77; }
done

fport=$(free_port)
start_ferrited suites "$fport"
mport=$(free_port)
memcached -u nobody -U 0 -l 127.0.0.1 -p "$mport" -m 256 >"$tmp/memcached.log" 2>&1 &
pids+=($!)
wait_mc "$mport"

# pylibmc's tests read the port from a class attribute set to 11211; this
# plugin points it at MEMCACHED_PORT.
cat >"$tmp/ferrite_port_shim.py" <<'PYEOF'
import os
def pytest_configure(config):
    import tests
    tests.PylibmcTestCase.memcached_port = os.environ["MEMCACHED_PORT"]
PYEOF

# run_suite NAME PORT: prints pytest's summary, leaves the junit file.
run_suite() {
  local name=$1 port=$2 out=$tmp/$1-$2
  if [ "$name" = pymemcache ]; then
    (cd "$PYMEMCACHE_SRC" && timeout 300 "$PY" -m pytest -q -p no:cacheprovider -o addopts= \
      --junitxml="$out.xml" pymemcache/test/test_integration.py --port "$port" -k "not tls") >"$out.txt" 2>&1 || true
  else
    (cd "$PYLIBMC_SRC" && MEMCACHED_PORT=$port PYTHONPATH="$tmp" timeout 300 "$PY" -m pytest -q -p no:cacheprovider \
      -p ferrite_port_shim --junitxml="$out.xml" tests --deselect tests/test_autoconf.py::AutoConfTests::test_no_autoconf) \
      >"$out.txt" 2>&1 || true
  fi
  tail -1 "$out.txt"
}
# summary FILE: "passed failed" from a junit file.
summary() {
  "$PY" - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
s = ET.parse(sys.argv[1]).getroot()
s = s if s.tag == "testsuite" else s.find("testsuite")
n, f, e, sk = (int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
print(n - f - e - sk, f + e)
PYEOF
}

rc=0
for suite in pymemcache pylibmc; do
  echo "== $suite vs memcached 1.6.18: $(run_suite $suite "$mport")"
  echo "== $suite vs ferrited:         $(run_suite $suite "$fport")"
  read -r mp mf < <(summary "$tmp/$suite-$mport.xml")
  read -r fp ff < <(summary "$tmp/$suite-$fport.xml")
  echo "$suite: memcached $mp passed / $mf failed; ferrited $fp passed / $ff failed"
  if [ "$mf" != 0 ] || [ "$ff" != 0 ] || [ "$fp" != "$mp" ] || [ "$fp" = 0 ]; then
    grep -E "^(FAILED|ERROR)" "$tmp/$suite-$fport.txt" "$tmp/$suite-$mport.txt" || true
    rc=1
  fi
done
[ $rc = 0 ] && echo "client_suites: PASS"
exit $rc
