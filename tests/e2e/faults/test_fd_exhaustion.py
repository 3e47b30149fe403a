"""Descriptor exhaustion (fault table: "fd exhaustion (EMFILE)").

Input: mailsink's RLIMIT_NOFILE lowered to 64 (prlimit --pid on the running process) and
200 connections opened at once. Expected: no busy accept loop (the process's CPU time
over 2 s of exhaustion stays under a third of one core), a session opened before the
exhaustion still completes its transaction (250, stored), and once the 200 connections
close a new connection is greeted with 220; descriptors and RSS back afterwards."""

import socket
import subprocess
import time

from faultlib import SANITIZED, Proc, message, open_data, serves, settle
from mslib import Db, accepted_id, wait_until

NOFILE = 64
CONNECTIONS = 200
CPU_SAMPLE = 2.0
CPU_MAX = 0.66  # seconds of CPU in CPU_SAMPLE: a spinning accept loop burns ~2


def connect_many(ms, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect((ms.addr, ms.port))
        except OSError:  # backlog full: the kernel drops the SYN; that is fine
            s.close()
            continue
        socks.append(s)
    return socks


def test_fd_exhaustion_no_busy_loop_and_recovery(start):
    ms = start()
    serves(ms, "baseline")
    p = Proc(ms.proc.pid)
    before = p.snapshot()
    assert before["fds"] < NOFILE - 8, before
    subprocess.run(["prlimit", "--pid", str(ms.proc.pid), "--nofile=%d:" % NOFILE],
                   check=True, timeout=20)
    early = open_data(ms)  # a session that exists before the descriptors run out
    socks = connect_many(ms, CONNECTIONS)
    try:
        assert len(socks) >= NOFILE, "only %d connections" % len(socks)
        # let the server hit EMFILE, then sample its CPU time
        assert wait_until(lambda: p.fds() >= NOFILE - 2, timeout=5), \
            "mailsink never ran out of descriptors: %d open" % p.fds()
        time.sleep(0.5)
        c0, t0 = p.cpu(), time.monotonic()
        time.sleep(CPU_SAMPLE)
        used = p.cpu() - c0
        elapsed = time.monotonic() - t0
        assert used < CPU_MAX * elapsed / CPU_SAMPLE, (
            "mailsink used %.2f s CPU in %.2f s while out of descriptors (busy accept "
            "loop?); fds %d" % (used, elapsed, p.fds()))
        # the session from before goes on
        content = message("during exhaustion")
        early.sock.settimeout(20)
        early.send(content + b".\r\n")
        code, text = early.reply()
        assert code == 250, text
        rid = accepted_id(text[0])
        with Db(ms.db) as db:
            assert db.body(rid) == content
        assert ms.proc.poll() is None
    finally:
        for s in socks:
            s.close()
        early.close()

    # descriptors free again: new connections are served
    def greets():
        try:
            with socket.create_connection((ms.addr, ms.port), timeout=3) as s:
                return s.recv(64).startswith(b"220 ")
        except OSError:
            return False

    assert wait_until(greets, timeout=30 if SANITIZED else 15, interval=0.2), \
        "no 220 after the descriptors came back; fds %d" % p.fds()
    serves(ms, "after exhaustion")
    subprocess.run(["prlimit", "--pid", str(ms.proc.pid), "--nofile=1024:"], check=True,
                   timeout=20)
    settle(ms, before, timeout=20)
