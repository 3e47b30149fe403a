"""Clients that go away (fault table: "client disconnect mid-DATA/BDAT/AUTH",
"disconnect after end of data, before reading 250", "peer reset while writing").

Each case repeats its disconnect ROUNDS times on fresh connections and then checks: what
must (not) be stored, a normal client still gets 250, and mailsink's descriptor count and
RSS are back where they were (no session, buffer or transaction leaked)."""

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


def test_reset_while_the_server_writes(ms):
    """Input: 2,000 pipelined NOOPs (2,000 replies to write) then RST at once, so the
    server writes into a reset connection (EPIPE/ECONNRESET, never SIGPIPE). Expected:
    mailsink alive, sessions freed, still serving."""
    before = baseline(ms)
    for i in range(ROUNDS):
        s = socket.create_connection((ms.addr, ms.port), timeout=10)
        s.recv(512)  # the greeting
        s.sendall(b"EHLO reset.test\r\n" + b"NOOP\r\n" * 2000)
        if i % 2:
            time.sleep(0.005)  # let it be mid-write for some
        rst_close(s)
    assert ms.proc.poll() is None, "mailsink died: %s" % ms.proc.returncode
    settle(ms, before)
    serves(ms)
