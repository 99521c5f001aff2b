#!/usr/bin/env bash
# `meson install` into a DESTDIR, then use what was installed (issue 19):
#   (default)  every program, the client library, headers, ferrite-client.pc,
#              man pages, unit, config file and bash completions are in place;
#              a program built against the installed .pc (PKG_CONFIG_PATH and
#              PKG_CONFIG_SYSROOT_DIR into the DESTDIR) sets and gets a key on
#              the installed ferrited (loopback, own port and pool); the
#              installed ferritectl reads it back; the installed
#              ferrite-crashtest --pf finds the installed ferrited-pfsim; the
#              completions complete.
#   unit       systemd-analyze verify on the installed ferrited.service
#              (exit 77, skipped, without systemd-analyze).
# Paths come from meson (tests/meson.build): FERRITE_BUILD_ROOT, MESON, CXX,
# the FERRITE_*DIR install directories, FERRITE_MAN, FERRITE_BENCH and
# FERRITE_SANITIZE (the build's b_sanitize).
set -euo pipefail
mode="${1:-client}"
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/ferrite-install.XXXXXX)
pool="/dev/shm/ferrite-install-$$.pool"
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  rm -f "$pool"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

if [ "$mode" = unit ] && ! command -v systemd-analyze >/dev/null; then
  echo "SKIP: systemd-analyze not installed (Debian package systemd)"
  exit 77
fi

dest="$work/root"
"$MESON" install -C "$FERRITE_BUILD_ROOT" --no-rebuild --destdir "$dest" >"$work/install.log" 2>&1 ||
  { cat "$work/install.log"; fail "meson install --destdir failed"; }
in_dest() { echo "$dest$1"; }  # an installed path, inside the DESTDIR
bindir=$(in_dest "$FERRITE_BINDIR") sbindir=$(in_dest "$FERRITE_SBINDIR") mandir=$(in_dest "$FERRITE_MANDIR")

if [ "$mode" = unit ]; then
  unit=$(in_dest "$FERRITE_UNITDIR")/ferrited.service
  [ -f "$unit" ] || fail "no ferrited.service in $FERRITE_UNITDIR"
  grep -q "^ExecStart=$FERRITE_SBINDIR/ferrited --config $FERRITE_SYSCONFDIR/ferrite/ferrited.toml\$" "$unit" ||
    fail "ExecStart is not the installed ferrited with the installed config: $(grep ExecStart "$unit")"
  [ -f "$(in_dest "$FERRITE_SYSCONFDIR")/ferrite/ferrited.toml" ] || fail "the unit's config file is not installed"
  # The unit as installed, but ExecStart pointing into the DESTDIR (verify
  # checks that the command exists), and man pages from the DESTDIR
  # (Documentation=man:ferrited(8) is checked too).
  mkdir "$work/verify"
  sed "s|^ExecStart=|ExecStart=$dest|" "$unit" >"$work/verify/ferrited.service"
  man_opt=(--man=no)
  [ "$FERRITE_MAN" = 1 ] && man_opt=(--man=yes)
  MANPATH="$mandir" systemd-analyze verify "${man_opt[@]}" "$work/verify/ferrited.service" >"$work/verify.log" 2>&1 ||
    { cat "$work/verify.log"; fail "systemd-analyze verify ferrited.service"; }
  [ ! -s "$work/verify.log" ] || { cat "$work/verify.log"; fail "systemd-analyze verify printed warnings"; }
  echo "ferrited.service: systemd-analyze verify clean (man page check: ${man_opt[*]})"
  exit 0
fi

# What is installed where.
want=("$sbindir/ferrited" "$sbindir/ferrited-pfsim" "$bindir/ferritectl" "$bindir/ferrite-check"
      "$bindir/ferrite-crashtest")
[ "$FERRITE_BENCH" = 1 ] && want+=("$bindir/ferrite-bench")
for f in "${want[@]}"; do [ -x "$f" ] || fail "$f not installed"; done
libdir=$(in_dest "$FERRITE_LIBDIR")
[ -f "$libdir/libferrite-client.a" ] || fail "libferrite-client.a not in $FERRITE_LIBDIR"
[ -f "$libdir/pkgconfig/ferrite-client.pc" ] || fail "ferrite-client.pc not in $FERRITE_LIBDIR/pkgconfig"
[ -f "$(in_dest "$FERRITE_INCLUDEDIR")/ferrite/client/client.h" ] || fail "no include/ferrite/client/client.h"
comp=$(in_dest "$FERRITE_DATADIR")/bash-completion/completions
for f in ferrited ferritectl; do [ -f "$comp/$f" ] || fail "no bash completion for $f"; done
if [ "$FERRITE_MAN" = 1 ]; then
  man=("$mandir/man8/ferrited.8" "$mandir/man8/ferrited-pfsim.8" "$mandir/man1/ferritectl.1"
       "$mandir/man1/ferrite-check.1" "$mandir/man1/ferrite-crashtest.1")
  [ "$FERRITE_BENCH" = 1 ] && man+=("$mandir/man1/ferrite-bench.1")
  for f in "${man[@]}"; do [ -s "$f" ] || fail "man page $f not installed"; done
  # Made from --help: the defaults ferrited's --help shows are in the page.
  grep -q "default: 11311" "$mandir/man8/ferrited.8" || fail "ferrited.8 does not show server.port's default"
fi

# A program outside the tree, built against the installed ferrite-client.pc.
export PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest"
flags=$(pkg-config --cflags --libs ferrite-client) || fail "pkg-config ferrite-client"
echo "pkg-config --cflags --libs ferrite-client: $flags"
san=()  # an ASan/UBSan/TSan build installed an instrumented archive
[ "${FERRITE_SANITIZE:-none}" != none ] && san=("-fsanitize=$FERRITE_SANITIZE")
# shellcheck disable=SC2086  # flags are words
"$CXX" -std=c++20 "${san[@]}" -o "$work/client_program" "$src/pkgconfig_client.cc" $flags ||
  fail "building a program against the installed ferrite-client.pc"

# The installed ferrited, on its own port and pool.
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PMEM_IS_PMEM_FORCE=1 "$sbindir/ferrited" --port "$port" --pool "$pool" --pool-size 64MiB \
  --set server.pin_cores=false >"$work/ferrited.log" 2>&1 &
pid=$!
ctl=("$bindir/ferritectl" -s "127.0.0.1:$port")
for _ in $(seq 200); do
  "${ctl[@]}" --timeout-ms 50 stats >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/ferrited.log"; fail "the installed ferrited exited"; }
  sleep 0.1
done
out=$("$work/client_program" "$port" installed-key "value from outside the tree") ||
  { cat "$work/ferrited.log"; fail "the pkg-config program against the installed ferrited"; }
[ "$out" = "value from outside the tree" ] || fail "the program printed '$out'"
out=$("${ctl[@]}" get installed-key)
[ "$out" = "value from outside the tree" ] || fail "installed ferritectl get printed '$out'"
kill -TERM "$pid"
wait "$pid" || { cat "$work/ferrited.log"; fail "the installed ferrited did not stop cleanly"; }
pid=""
echo "client program built from ferrite-client.pc: set/get on the installed ferrited ok"

# ferrite-crashtest --pf runs the installed ferrited-pfsim (bindir -> sbindir).
"$bindir/ferrite-crashtest" --mode server --pf fenced --cycles 2 --keys 2000 --pool-size 64MiB \
  --segment-size 2MiB -q >"$work/crashtest.log" 2>&1 ||
  { cat "$work/crashtest.log"; fail "installed ferrite-crashtest --mode server --pf fenced"; }
echo "installed ferrite-crashtest --pf found the installed ferrited-pfsim"

# Completions, sourced as bash-completion would.
complete_words() {  # file, words...: prints COMPREPLY for the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); "_${COMP_WORDS[0]}"; echo "${COMPREPLY[*]}"' \
    _ "$@"
}
[ "$(complete_words "$comp/ferritectl" ferritectl se)" = "set" ] || fail "ferritectl se<TAB>"
[ "$(complete_words "$comp/ferritectl" ferritectl -s h:1 st)" = "stats" ] || fail "ferritectl -s h:1 st<TAB>"
[ "$(complete_words "$comp/ferrited" ferrited --log-level w)" = "warn" ] || fail "ferrited --log-level w<TAB>"
got=$(PATH="$sbindir:$PATH" complete_words "$comp/ferrited" ferrited --set pool.si)
[ "$got" = "pool.size=" ] || fail "ferrited --set pool.si<TAB> gave '$got'"
echo "bash completions ok"
echo "install test: ok"
