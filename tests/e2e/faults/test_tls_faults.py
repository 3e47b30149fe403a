"""TLS handshakes that fail (fault table: "TLS handshake failure / garbage / stall").

mailsink with a self-signed certificate (made by openssl in a fixture), STARTTLS on the
plain port and implicit TLS (--smtps) on a second one. Inputs, TRIES times in a mix:
random bytes instead of a ClientHello, a real ClientHello then close, a ClientHello then
RST, STARTTLS then garbage, STARTTLS then close; every GOOD_EVERY tries a proper TLS
client delivers (a failed handshake that left OpenSSL's per-thread error queue dirty
would fail the next good one on that thread). Expected: each connection is closed by
the server (or was closed by the client), mailsink stays up, a connection that says
nothing after connecting to the TLS port or after STARTTLS's 220 is closed by the server
at the TLS handshake timeout (libsmtpd's 30 s: mailsink has no flag), and so is random
junk that OpenSSL takes for the start of a record and waits on (fewer than 5 octets, or
a first octet with the high bit set: an SSLv2-style header), a proper TLS
client then delivers, and the descriptor count and RSS are back to the baseline.
Leaks: RSS after WARM_UP tries and at the end may differ by LEAK_MAX at most, so a leak
of LEAK_MAX / (TRIES - WARM_UP) octets per failed handshake (~500) fails the test."""

import os
import random
import smtplib
import socket
import ssl
import struct
import subprocess
import time

import pytest

from faultlib import SANITIZED, MiB, Proc, message, serves, settle
from mslib import HOSTNAME, Db, RawClient, accepted_id

TRIES = 2000 if SANITIZED else 10000  # the fault table: no leak over 10^4 tries
WARM_UP = TRIES // 5  # tries before the RSS reference: allocator pools fill up first
GOOD_EVERY = 250
LEAK_MAX = 4 * MiB if not SANITIZED else 16 * MiB  # ASan's quarantine holds freed memory
TLS_TIMEOUT = 30  # libsmtpd's tls-timeout default; mailsink has no flag for it


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    key, crt = str(d / "key.pem"), str(d / "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=" + HOSTNAME, "-keyout", key, "-out", crt], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    return crt, key


@pytest.fixture
def ms(start, cert):
    return start("--tls-cert", cert[0], "--tls-key", cert[1], "--smtps", "127.0.0.1:0",
                 listeners=2)


def client_hello():
    """The first flight of a real TLS client, as bytes."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=HOSTNAME)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def closed_by_server(sock, timeout=10):
    """Read until EOF/RST (True) or timeout (False), discarding what comes."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
    return False


def starttls_ready(ms):
    c = RawClient(ms.addr, ms.port)
    assert c.reply()[0] == 220
    code, ext = c.cmd("EHLO client.test")
    assert code == 250 and "STARTTLS" in ext, ext
    assert c.cmd("STARTTLS")[0] == 220
    return c


def tls_deliver(ms, tag):
    """A proper client: STARTTLS on the plain port; the id of the stored message."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    content = message(tag)
    with smtplib.SMTP(ms.addr, ms.port, timeout=20, local_hostname="client.test") as s:
        s.starttls(context=ctx)
        s.ehlo("client.test")
        s.mail("a@x.example")
        s.rcpt("b@y.example")
        code, text = s.data(content)
    assert code == 250, text
    rid = accepted_id(text.decode())
    with Db(ms.db) as db:
        assert db.body(rid) == content
    return rid


def test_tls_garbage_aborts_and_stalls_leak_nothing(ms):
    smtps_port = ms.listeners[1][1]
    tls_deliver(ms, "baseline")
    before = Proc(ms.proc.pid).snapshot()
    # silent clients, from the start: after connecting to the TLS port, and after
    # STARTTLS's 220; both must be closed by the server at the TLS handshake timeout
    silent = [socket.create_connection((ms.addr, smtps_port), timeout=10),
              starttls_ready(ms).sock]
    silent_since = time.monotonic()
    hello = client_hello()
    rng = random.Random(11)
    not_closed, waiting, warm = [], [], None
    for i in range(TRIES):
        if i == WARM_UP:
            warm = Proc(ms.proc.pid).rss()
        if i % GOOD_EVERY == GOOD_EVERY - 1:
            tls_deliver(ms, "good handshake %d" % i)
        kind = i % 5
        if kind == 0:  # random bytes instead of a ClientHello: the server ends it
            s = socket.create_connection((ms.addr, smtps_port), timeout=10)
            junk = rng.randbytes(rng.randint(1, 2000))
            s.sendall(junk)
            if closed_by_server(s, timeout=2):
                s.close()
            else:  # e.g. a TLS record header whose length is not yet all there
                waiting.append((s, time.monotonic(), junk[:8].hex()))
        elif kind == 1:  # a real ClientHello, then the client goes away
            s = socket.create_connection((ms.addr, smtps_port), timeout=10)
            s.sendall(hello)
            s.close()
        elif kind == 2:  # half a ClientHello, then RST
            s = socket.create_connection((ms.addr, smtps_port), timeout=10)
            s.sendall(hello[: len(hello) // 2])
            rst_close(s)
        elif kind == 3:  # STARTTLS, then garbage
            c = starttls_ready(ms)
            c.send(b"\x16\x03\x01\x00\x05garbage" + os.urandom(64))
            if not closed_by_server(c.sock):
                not_closed.append((i, "garbage after STARTTLS"))
            c.close()
        else:  # STARTTLS, ClientHello, close
            c = starttls_ready(ms)
            c.send(hello)
            c.close()
    assert not not_closed, not_closed[:10]
    assert ms.proc.poll() is None
    end = Proc(ms.proc.pid).rss()
    print("%d failed handshakes: RSS %.1f MiB after %d, %.1f MiB at the end"
          % (TRIES, warm / MiB, WARM_UP, end / MiB))
    assert end - warm < LEAK_MAX, "RSS grew %.1f MiB over %d failed handshakes" % (
        (end - warm) / MiB, TRIES - WARM_UP)

    for sock in silent:
        left = silent_since + TLS_TIMEOUT + 15 - time.monotonic()
        assert closed_by_server(sock, timeout=max(left, 1)), "a silent TLS client stays open"
        took = time.monotonic() - silent_since
        sock.close()
        assert took >= TLS_TIMEOUT - 5, "closed after %.1f s, before the TLS timeout" % took
    # garbage the TLS layer waits on for more must end at the handshake timeout too
    print("garbage left waiting for more: %r" % [w[2] for w in waiting])
    for sock, since, head in waiting:
        left = since + TLS_TIMEOUT + 15 - time.monotonic()
        assert closed_by_server(sock, timeout=max(left, 1)), "garbage %s... stays open" % head
        sock.close()

    settle(ms, before)
    tls_deliver(ms, "after the garbage")
    serves(ms)


def test_tls_client_that_never_reads_is_dropped(start, cert):
    """Input: on the implicit-TLS port, with a 4 KiB receive buffer, EHLO and 300
    pipelined transactions of 100 recipients, never reading a reply; then silence. The
    replies back up under TLS. Expected: the server drops the connection, at the latest
    after --command-timeout (5 s), and its descriptors are back to the baseline; the
    same with an RST after the backlog. (Seen: both gone within a second, ended by the
    session's own limits; conn.c's watch on a TLS session held back for unread replies,
    5a7404d, is the backstop for a backlog those limits do not end.)"""
    ms = start("--tls-cert", cert[0], "--tls-key", cert[1], "--smtps", "127.0.0.1:0",
               "--command-timeout", "5", listeners=2)
    tls_deliver(ms, "baseline")
    before = Proc(ms.proc.pid).snapshot()
    backlog = (b"MAIL FROM:<r@x.example>\r\n" + b"RCPT TO:<b@y.example>\r\n" * 100
               + b"DATA\r\nSubject: r\r\n\r\nx\r\n.\r\n") * 300
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    socks = []
    for reset in (False, True):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(10)
        raw.connect((ms.addr, ms.listeners[1][1]))
        s = ctx.wrap_socket(raw, server_hostname=HOSTNAME)
        s.settimeout(3)
        try:
            s.sendall(b"EHLO noread.test\r\n" + backlog)
        except (socket.timeout, ssl.SSLError, OSError):
            pass  # the server stopped reading: the replies are backed up
        if reset:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        else:
            socks.append(s)
    t0 = time.monotonic()
    try:
        settle(ms, before, timeout=30)
    finally:
        for s in socks:
            s.close()
    print("both TLS sessions gone after %.1f s" % (time.monotonic() - t0))
    tls_deliver(ms, "after the unread backlog")
