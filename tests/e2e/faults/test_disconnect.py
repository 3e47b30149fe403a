"""Clients that go away (fault table: "client disconnect mid-DATA/BDAT/AUTH",
"disconnect after end of data, before reading 250", "peer reset while writing").

Each case repeats its disconnect ROUNDS times on fresh connections and then checks: what
must (not) be stored, a normal client still gets 250, and mailsink's descriptor count and
RSS are back where they were (no session, buffer or transaction leaked)."""

import signal
import socket
import struct
import time

import pytest

from faultlib import SANITIZED, Proc, message, open_data, serves, settle
from mslib import Db, RawClient, wait_until

ROUNDS = 20 if SANITIZED else 60


def rst_close(sock):
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def ms(start):
    return start("--auth-accept-any", "--allow-insecure-auth")


def baseline(ms):
    """Store one message (so SQLite has opened what it keeps open) and snapshot."""
    serves(ms, "baseline")
    return Proc(ms.proc.pid).snapshot()


def stored_count(ms):
    with Db(ms.db) as db:
        return db.count()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_disconnect_mid_data_stores_nothing(ms, how):
    """Input: DATA, half a message (no final dot), then close or RST. Expected: nothing
    stored, no descriptor kept."""
    before = baseline(ms)
    for i in range(ROUNDS):
        c = open_data(ms)
        c.send(message("mid data %d" % i, 8192)[:5000])
        (rst_close if how == "reset" else socket.socket.close)(c.sock)
    settle(ms, before)
    assert stored_count(ms) == 1
    serves(ms)


@pytest.mark.parametrize("cut", ["inside the chunk", "after the chunk"])
def test_disconnect_mid_bdat_stores_nothing(ms, cut):
    """libsmtpd offers no CHUNKING, so this row becomes: a client that sends BDAT anyway
    (RFC 3030) and closes inside or after its chunk. Input: BDAT 4000 with 1000 or all
    4000 octets of a message, then close. Expected: EHLO does not offer CHUNKING, BDAT
    is an unknown command (500 5.5.1), nothing is stored, no descriptor or memory leak."""
    before = baseline(ms)
    for i in range(ROUNDS):
        c = RawClient(ms.addr, ms.port)
        assert c.reply()[0] == 220
        code, ext = c.cmd("EHLO client.test")
        assert code == 250 and "CHUNKING" not in ext, ext
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
        body = message("bdat %d" % i, 4000)
        c.send(b"BDAT %d\r\n" % len(body) + (body[:1000] if cut == "inside the chunk" else body))
        code, text = c.reply()
        assert code == 500 and text[0].startswith("5.5.1"), (code, text)
        c.close()
    settle(ms, before)
    assert stored_count(ms) == 1
    serves(ms)


@pytest.mark.parametrize("mech", ["LOGIN", "PLAIN"])
def test_disconnect_mid_auth(ms, mech):
    """Input: AUTH LOGIN / AUTH PLAIN without an initial response, the 334 read, then
    close (half the time after sending half a base64 line). Expected: no leak."""
    before = baseline(ms)
    for i in range(ROUNDS):
        c = RawClient(ms.addr, ms.port)
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("AUTH " + mech)[0] == 334
        if i % 2:
            c.send(b"dXNlcgBwYX")
        c.close()
    settle(ms, before)
    serves(ms)


def test_close_right_after_the_final_dot_keeps_the_message(ms):
    """Input: a whole transaction, the final dot, then close without reading the 250.
    Expected: every message is committed and kept (the server owns it once the dot
    arrived)."""
    before = baseline(ms)
    sent = []
    for i in range(ROUNDS):
        content = message("dot then close %d" % i, 2000)
        c = open_data(ms)
        c.send(content + b".\r\n")
        c.close()
        sent.append(content)
    assert wait_until(lambda: stored_count(ms) == 1 + ROUNDS, timeout=20), stored_count(ms)
    with Db(ms.db) as db:
        bodies = sorted(db.body(m) for m in db.ids())
    for content in sent:
        assert content in bodies
    settle(ms, before)
    serves(ms)


# Whole transactions of 100 recipients: 102 replies each and no junk command, so the
# server keeps answering until its replies back up (NOOPs would hit the junk limit after
# 100 short replies, which the server finishes writing long before any RST).
BACKLOG = (b"MAIL FROM:<r@x.example>\r\n" + b"RCPT TO:<b@y.example>\r\n" * 100
           + b"DATA\r\nSubject: r\r\n\r\nx\r\n.\r\n") * 300
RESET_ROUNDS = 6 if SANITIZED else 12


def server_send_queue(server_port, client_port):
    """Octets the kernel holds unsent on the server's end of one loopback connection
    (tx_queue in /proc/net/tcp), or None when the connection is not there."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local, remote = fields[1].rsplit(":", 1)[1], fields[2].rsplit(":", 1)[1]
                if int(local, 16) == server_port and int(remote, 16) == client_port:
                    return int(fields[4].split(":")[0], 16)
    return None


def test_reset_while_the_server_writes(ms):
    """Input: EHLO and 300 pipelined transactions of 100 recipients from a client with a
    4 KiB receive buffer that never reads, so the replies back up; once the server's own
    send queue holds replies it cannot send (checked in /proc/net/tcp), RST. The server
    then writes into a reset connection. Expected: mailsink alive, every such session
    freed, still serving; SIGPIPE ignored (SigIgn in /proc/PID/status). The first write
    after a reset fails with ECONNRESET, which raises no signal, and the session closes on
    it; only a write after that would get EPIPE and the SIGPIPE, so with these clients a
    server that kept SIGPIPE's default survives too (tried). In mailsink, g_mime_init
    (gpgme) ignores SIGPIPE as well; libsmtpd's own ignore is checked with the catch
    example in tests/e2e/test_robustness.py, where it fails without it."""
    with open("/proc/%d/status" % ms.proc.pid) as f:
        ignored = int(next(ln for ln in f if ln.startswith("SigIgn:")).split()[1], 16)
    assert ignored & (1 << (signal.SIGPIPE - 1)), "SIGPIPE is not ignored: %x" % ignored
    before = baseline(ms)
    queued = []
    for _ in range(RESET_ROUNDS):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(3)
        s.connect((ms.addr, ms.port))
        client_port = s.getsockname()[1]
        try:
            s.sendall(b"EHLO reset.test\r\n" + BACKLOG)
        except socket.timeout:
            pass  # the server stopped reading: its replies are backed up
        pending = 0
        deadline = time.monotonic() + 5
        while pending == 0 and time.monotonic() < deadline:
            pending = server_send_queue(ms.port, client_port) or 0
            time.sleep(0.01)
        queued.append(pending)
        rst_close(s)
    print("server send queue at each reset: %r" % queued)
    assert all(queued), "the server had nothing unsent at some resets: %r" % queued
    assert ms.proc.poll() is None, "mailsink died: %s" % ms.proc.returncode
    settle(ms, before)
    serves(ms)
