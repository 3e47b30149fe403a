"""Helpers for the fault tests: what the mailsink process looks like from /proc (open
descriptors, RSS, CPU time, threads, zombie children), SMTP transactions over raw sockets
that stop where a fault wants them stopped, and the sizing of heavy cases.

Sizing: a sanitizer build (ASan+UBSan, `make test-asan`) is several times slower and
uses more memory, so heavy cases run smaller there. SANITIZED is MAILSINK_SANITIZED if
set ("1"/"0"), else whether the binary carries the ASan runtime (the symbol __asan_init
in the file), which holds for every sanitizer build whatever its directory is called.
FAULTS_KILL_ROUNDS sets the number of kill -9 rounds (default 100, as the fault table asks;
10 under a sanitizer, where a round is several times slower)."""

import os
import re
import socket
import time

from mslib import (CRLF, TIMEOUT, RawClient, accepted_id, binary_has_asan,  # noqa: F401
                   clean_env, mailsink_bin, wait_until)


def _sanitized():
    v = os.environ.get("MAILSINK_SANITIZED")
    if v is not None:
        return v not in ("", "0", "no", "false")
    return binary_has_asan(mailsink_bin())


SANITIZED = _sanitized()
KILL_ROUNDS = int(os.environ.get("FAULTS_KILL_ROUNDS") or (10 if SANITIZED else 100))
MiB = 1 << 20


def server_env(tmp, extra=None):
    """mslib.clean_env(tmp, extra) and, under a sanitizer, a small ASan quarantine: freed
    memory waits there (256 MiB by default) before reuse, which is the sanitizer's memory,
    not mailsink's, and would drown every RSS comparison."""
    extra = dict(extra or {})
    if SANITIZED:
        opts = extra.get("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", ""))
        extra["ASAN_OPTIONS"] = (opts + ":quarantine_size_mb=16:"
                                 "thread_local_quarantine_size_kb=256").lstrip(":")
    return clean_env(tmp, extra)


# -- the process as /proc shows it ---------------------------------------------------------


class Proc:
    """Counters of one process (mailsink) read from /proc/PID."""

    def __init__(self, pid):
        self.pid = pid

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def status(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise KeyError(key)

    def rss(self):
        """Resident set size in octets."""
        return self.status("VmRSS") * 1024

    def threads(self):
        return self.status("Threads")

    def cpu(self):
        """User + system CPU seconds of all threads so far."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        return ticks / os.sysconf("SC_CLK_TCK")

    def children(self):
        """[(pid, state)] of its child processes ("Z" for a zombie)."""
        out = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.pid:
                out.append((int(name), fields[0]))
        return out

    def snapshot(self):
        return {"fds": self.fds(), "rss": self.rss(), "threads": self.threads()}


# RSS may grow a little after a fault (malloc arenas, SQLite page cache); more than this
# is a leak. A sanitizer build keeps freed memory in quarantine: allow more there.
RSS_SLACK = (96 if SANITIZED else 24) * MiB


def sample_peak_rss(proc, peak, stop):
    """A thread's body: keeps peak[0] at the highest RSS of proc (a Proc), looked at every
    50 ms, until stop (a threading.Event) is set or the process is gone."""
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], proc.rss())
        except OSError:
            return
        time.sleep(0.05)


def settle(ms, before, fd_slack=0, rss_slack=RSS_SLACK, timeout=10):
    """Wait until mailsink's open descriptors are back to the count in before (a
    snapshot()), then check RSS; returns the snapshot after. A session is freed on the
    loop turn after its close, so this polls (bounded)."""
    p = Proc(ms.proc.pid)
    ok = wait_until(lambda: p.fds() <= before["fds"] + fd_slack, timeout=timeout)
    after = p.snapshot()
    assert ok, "descriptors not back: before %r, after %r; %s" % (before, after, fd_list(ms))
    assert after["rss"] <= before["rss"] + rss_slack, (
        "RSS grew %.1f MiB: before %r, after %r" % ((after["rss"] - before["rss"]) / MiB,
                                                     before, after))
    return after


def fd_list(ms):
    """Where mailsink's descriptors point, for assertion messages."""
    d = "/proc/%d/fd" % ms.proc.pid
    out = []
    try:
        for n in sorted(os.listdir(d), key=int):
            try:
                out.append("%s->%s" % (n, os.readlink(os.path.join(d, n))))
            except OSError:
                pass
    except OSError:
        pass
    return " ".join(out)


def no_zombies(ms, timeout=5):
    p = Proc(ms.proc.pid)
    ok = wait_until(lambda: not [c for c in p.children() if c[1] == "Z"], timeout=timeout)
    assert ok, "zombie children of mailsink: %r" % p.children()


# -- SMTP over raw sockets ------------------------------------------------------------------


def message(tag, size=0):
    """A message with a Subject naming tag and about size octets of body (CRLF lines)."""
    head = b"From: f@x.example\r\nTo: t@y.example\r\nSubject: " + tag.encode() + b"\r\n\r\n"
    line = (b"%s " % tag.encode() + b"z" * 70)[:70] + CRLF
    return head + line * max(1, size // len(line))


def open_data(ms, addr=None, port=None, helo="client.test"):
    """A RawClient of ms, greeted, EHLO, MAIL, RCPT done and DATA answered 354."""
    c = RawClient(addr or ms.addr, port or ms.port)
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + helo)[0] == 250
    assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
    code, text = c.cmd("DATA")
    assert code == 354, text
    return c


def transaction(ms, content, addr=None, port=None, timeout=TIMEOUT):
    """One whole transaction (content has no leading dots and ends in CRLF); the reply to
    the final dot as (code, text lines)."""
    c = open_data(ms, addr, port)
    try:
        c.sock.settimeout(timeout)
        c.send(content + b".\r\n")
        reply = c.reply()
        try:
            c.cmd("QUIT")
        except (OSError, ConnectionError):
            pass
        return reply
    finally:
        c.close()


def deliver(ms, content, **kw):
    """A transaction that must be answered 250; the id."""
    code, text = transaction(ms, content, **kw)
    assert code == 250, (code, text)
    return accepted_id(text[0])


def greeted(ms, addr=None, port=None, timeout=5):
    """The greeting code of a new connection (0 if closed without one)."""
    s = socket.create_connection((addr or ms.addr, port or ms.port), timeout=timeout)
    try:
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        m = re.match(rb"^(\d{3})", data)
        return int(m.group(1)) if m else 0
    finally:
        s.close()


def serves(ms, tag="still serving"):
    """A normal client still gets its 250 and the message is stored: the id."""
    from mslib import Db
    content = message(tag)
    rid = deliver(ms, content)
    with Db(ms.db) as db:
        assert db.body(rid) == content
    return rid
