#!/usr/bin/env python3
"""sd_notify (issue 19): ferrited under a service manager's NOTIFY_SOCKET.

Plays systemd's part: binds a unix datagram socket, starts ferrited ($FERRITED)
with NOTIFY_SOCKET pointing at it and with the memcached TCP and UDP ports on,
and asserts that
  - READY=1 arrives, and at that moment every port serves: the memcached TCP
    port answers "version", the native and memcached UDP ports are bound;
  - nothing but READY=1 (with STATUS=) comes before it;
  - on SIGTERM, STOPPING=1 arrives and ferrited exits 0.
Exit 77 (skipped) when ferrited was built without libsystemd
(FERRITE_HAVE_SYSTEMD=0). Own ports and pool; ferrited is stopped by PID.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    while True:
        t = socket.socket()
        t.bind(("127.0.0.1", 0))
        p = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
            return p
        except OSError:
            pass
        finally:
            u.close()
            t.close()


def udp_bound(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def mc_version(port):
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(b"version\r\n")
        return s.recv(100)


def recv(sock, deadline):
    sock.settimeout(max(0.01, deadline - time.time()))
    return sock.recv(4096).decode()


def main():
    if os.environ.get("FERRITE_HAVE_SYSTEMD") != "1":
        print("SKIP: ferrited built without libsystemd (-Dsystemd)")
        return 77
    work = tempfile.mkdtemp(prefix="ferrite-notify.")
    pool = "/dev/shm/ferrite-notify-%d.pool" % os.getpid()
    addr = os.path.join(work, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(addr)
    native, mc = free_port(), free_port()
    while mc == native:
        mc = free_port()
    env = dict(os.environ, NOTIFY_SOCKET=addr, PMEM_IS_PMEM_FORCE="1")
    log = open(os.path.join(work, "ferrited.log"), "w+")
    proc = subprocess.Popen(
        [os.environ["FERRITED"], "--port", str(native), "--pool", pool, "--pool-size", "64MiB",
         "--set", "server.memcached_tcp_port=%d" % mc, "--set", "server.memcached_udp_port=%d" % mc,
         "--set", "server.pin_cores=false"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        msg = recv(sock, time.time() + 60)
        # Checked before anything else can happen: the ports serve now.
        ver = mc_version(mc)
        bound = udp_bound(native), udp_bound(mc)
        lines = msg.split("\n")
        assert lines[0] == "READY=1", "first notification %r, expected READY=1" % msg
        assert all(l.startswith("STATUS=") for l in lines[1:]), msg
        assert ver.startswith(b"VERSION "), "memcached TCP port at READY=1 answered %r" % ver
        assert bound == (True, True), "UDP ports bound at READY=1 (native, memcached): %r" % (bound,)
        print("READY=1 received with every port serving: %r" % msg)
        proc.send_signal(signal.SIGTERM)
        msg = recv(sock, time.time() + 30)
        assert msg == "STOPPING=1", "after SIGTERM: %r, expected STOPPING=1" % msg
        rc = proc.wait(timeout=60)
        assert rc == 0, "ferrited exited %d after SIGTERM" % rc
        print("STOPPING=1 received; ferrited exited 0")
        return 0
    except (AssertionError, OSError, subprocess.TimeoutExpired) as e:
        log.seek(0)
        print("FAIL: %s\nferrited log:\n%s" % (e, log.read()))
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
        for f in (addr, pool):
            if os.path.exists(f):
                os.remove(f)
        log.close()
        os.remove(os.path.join(work, "ferrited.log"))
        os.rmdir(work)


if __name__ == "__main__":
    sys.exit(main())
