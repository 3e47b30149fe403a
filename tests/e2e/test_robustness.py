"""The examples as processes: clients that misbehave, signals, several servers at once,
IPv6, the command line."""

import os
import signal
import socket
import struct
import threading
import time

import pytest

from e2elib import HOSTNAME, TIMEOUT, check_delivery, examples_dir, run

CLIENT = "client.e2e.test"


def good_transaction(ex, tag):
    msg = b"Subject: %s\r\n\r\nstill serving\r\n" % tag.encode()
    with ex.smtp(local_hostname=CLIENT) as s:
        assert s.sendmail("%s@example.com" % tag, ["alice@example.com"], msg) == {}
        rid = s.last_id()
    got = ex.next_message()
    check_delivery(got, content=msg, sender="%s@example.com" % tag,
                   rcpts=["alice@example.com"], reply_id=rid, helo=CLIENT)


def open_data(ex):
    c = ex.raw()
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + CLIENT)[0] == 250
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    return c


@pytest.mark.parametrize("name", ["catch", "validate"])
def test_disconnect_mid_data(start, name):
    ex = start(name)
    c = open_data(ex)
    c.send(b"Subject: partial\r\n\r\nthis message never ends")
    c.close()
    ex.assert_no_message()
    good_transaction(ex, "after")


def test_reset_mid_data(catch):
    c = open_data(catch)
    c.send(b"Subject: partial\r\n\r\n" + b"y" * 100000)
    # SO_LINGER 0: close with a TCP RST instead of a FIN
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    catch.assert_no_message()
    good_transaction(catch, "afterrst")


def test_disconnect_after_final_dot_keeps_message(catch):
    # the server owns the message once the dot is in; the client need not read the 250
    c = open_data(catch)
    c.send(b"Subject: fire and forget\r\n\r\nbody\r\n.\r\n")
    c.close()
    got = catch.next_message()
    assert got.body == b"Subject: fire and forget\r\n\r\nbody\r\n"
    good_transaction(catch, "afterdot")


def test_garbage_then_disconnect(catch):
    c = catch.raw()
    assert c.reply()[0] == 220
    c.send(os.urandom(4096) + b"\r\n\x00\xff\r\n" + b"A" * 3000 + b"\r\n")
    c.close()
    good_transaction(catch, "aftergarbage")


def test_client_leaves_without_reading_replies(catch):
    # the replies to these commands go to a socket the client has closed: the server
    # gets EPIPE/ECONNRESET (never a fatal SIGPIPE) and drops only that session.
    # catch leaves SIGPIPE alone and starts with its default action (Popen restores it):
    # libsmtpd must have ignored it (smtpd.h, smtpd_server_new).
    with open("/proc/%d/status" % catch.proc.pid) as f:
        ignored = int(next(ln for ln in f if ln.startswith("SigIgn:")).split()[1], 16)
    assert ignored & (1 << (signal.SIGPIPE - 1)), "SIGPIPE is not ignored: %x" % ignored
    for i in range(5):
        c = catch.raw()
        c.send(b"EHLO x\r\nMAIL FROM:<a@b>\r\n" * 50)
        c.close()
        time.sleep(0.1)
        assert catch.proc.poll() is None, "example died: status %s" % catch.proc.poll()
    good_transaction(catch, "afterleaving")


def test_many_clients_at_once(catch):
    errors, ids = [], []

    def client(k):
        try:
            with catch.smtp(local_hostname=CLIENT) as s:
                for j in range(5):
                    msg = b"Subject: %d.%d\r\n\r\nbody %d.%d\r\n" % (k, j, k, j)
                    assert s.sendmail("c%d@example.com" % k, ["r%d@example.net" % j], msg) == {}
                    ids.append((s.last_id(), k, j))
        except Exception as e:  # reported below
            errors.append((k, e))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(ids) == 50 and len({i for i, _, _ in ids}) == 50
    want = {i: (k, j) for i, k, j in ids}
    for _ in range(50):
        got = catch.next_message()
        k, j = want.pop(got.id)
        check_delivery(got, content=b"Subject: %d.%d\r\n\r\nbody %d.%d\r\n" % (k, j, k, j),
                       sender="c%d@example.com" % k, rcpts=["r%d@example.net" % j],
                       helo=CLIENT)


def test_many_idle_connections(catch):
    conns = [catch.raw() for _ in range(30)]
    for c in conns:
        assert c.reply()[0] == 220
    good_transaction(catch, "busy")
    for c in conns:
        c.close()
    good_transaction(catch, "quiet")


@pytest.mark.parametrize("name", ["catch", "validate"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_zero(start, name, sig):
    ex = start(name)
    good_transaction(ex, "beforestop")
    t0 = time.monotonic()
    assert ex.stop(sig) == 0, ex.stderr_tail()
    # no session is open, so there is nothing to wait for (stop-grace is 5 s)
    assert time.monotonic() - t0 < 2.5
    # nothing half-written on stdout: the reader saw a clean end
    assert ex.events.get(timeout=TIMEOUT) == ("eof", None)


def test_sigterm_lets_open_session_finish(start):
    ex = start("catch", "-o", "stop-grace=3000")
    c = ex.raw()
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + CLIENT)[0] == 250
    ex.send_signal(signal.SIGTERM)
    # the listener closes at once ...
    deadline = time.monotonic() + 2
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            socket.create_connection((ex.addr, ex.port), timeout=1).close()
            time.sleep(0.05)
        except ConnectionRefusedError:
            refused = True
    assert refused, "still accepting connections after SIGTERM"
    # ... while the open session may still complete its transaction
    assert c.cmd("MAIL FROM:<late@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.com>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: in grace\r\n\r\nmade it\r\n.\r\n")
    assert c.reply()[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert ex.next_message().sender == "late@example.com"
    assert ex.wait(TIMEOUT) == 0


def test_sigterm_closes_idle_session_after_grace(start):
    ex = start("catch", "-o", "stop-grace=200")
    c = ex.raw()
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + CLIENT)[0] == 250
    t0 = time.monotonic()
    ex.send_signal(signal.SIGTERM)
    assert c.reply() == (421, ["4.3.2 %s Service shutting down" % HOSTNAME])
    assert c.closed_by_peer()
    assert ex.wait(TIMEOUT) == 0
    assert time.monotonic() - t0 < 10


def test_sigterm_while_recipient_pending_completes_in_grace(start):
    ex = start("validate", "-d", "500", "-o", "stop-grace=5000")
    c = ex.raw()
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + CLIENT)[0] == 250
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    c.send(b"RCPT TO:<alice@example.com>\r\n")
    time.sleep(0.1)  # the worker has it now
    ex.send_signal(signal.SIGTERM)
    assert c.reply() == (250, ["2.1.5 Ok"])
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: pending at stop\r\n\r\nok\r\n.\r\n")
    assert c.reply()[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert ex.next_message().rcpts == ["alice@example.com"]
    assert ex.wait(TIMEOUT) == 0


def test_sigterm_while_recipient_pending_past_grace(start):
    ex = start("validate", "-d", "3000", "-o", "stop-grace=300")
    c = ex.raw()
    assert c.reply()[0] == 220
    assert c.cmd("EHLO " + CLIENT)[0] == 250
    assert c.cmd("MAIL FROM:<a@example.com>")[0] == 250
    c.send(b"RCPT TO:<alice@example.com>\r\n")
    time.sleep(0.1)
    ex.send_signal(signal.SIGTERM)
    # the grace ends before the worker answers: 421 and close, the late answer dropped
    assert c.reply() == (421, ["4.3.2 %s Service shutting down" % HOSTNAME])
    assert c.closed_by_peer()
    assert ex.wait(TIMEOUT) == 0
    assert ex.events.get(timeout=TIMEOUT) == ("eof", None)  # and no message


def test_two_servers_at_once(start):
    a = start("catch")
    b = start("catch")
    v = start("validate")
    assert len({a.port, b.port, v.port}) == 3
    good_transaction(a, "first")
    good_transaction(b, "second")
    good_transaction(v, "third")
    good_transaction(a, "fourth")
    for ex in (a, b, v):
        ex.assert_no_message(0.2)


def test_ipv6_loopback(start):
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    ex = start("catch", addr="::1")
    msg = b"Subject: v6\r\n\r\nover ::1\r\n"
    with ex.smtp(local_hostname=CLIENT) as s:
        assert s.sendmail("a@example.com", ["b@example.net"], msg) == {}
        rid = s.last_id()
    check_delivery(ex.next_message(), content=msg, sender="a@example.com",
                   rcpts=["b@example.net"], reply_id=rid, helo=CLIENT, addr="::1")


@pytest.mark.parametrize("helo", ["[127.0.0.1]", "[IPv6:::1]"])
def test_trace_keeps_address_literal_helo(catch, helo):
    # RFC 5321 4.1.1.1: EHLO may give an address literal (smtplib does when the host has
    # no FQDN), and 4.4 allows it as the FROM of Received
    msg = b"Subject: literal\r\n\r\nx\r\n"
    with catch.smtp(local_hostname=helo) as s:
        assert s.sendmail("a@example.com", ["b@example.net"], msg) == {}
        rid = s.last_id()
    check_delivery(catch.next_message(), content=msg, sender="a@example.com",
                   rcpts=["b@example.net"], reply_id=rid, helo=helo)


def test_greeting_uses_hostname_option(catch):
    c = catch.raw()
    assert c.reply() == (220, ["%s ESMTP" % HOSTNAME])
    assert c.cmd("QUIT") == (221, ["2.0.0 Bye"])
    assert c.closed_by_peer()


@pytest.mark.parametrize("argv", [
    ["catch", "-o", "no-such-option=1"],
    ["catch", "-o", "max-recipients=many"],
    ["catch", "-o", "max-recipients"],
    ["catch", "-x"],
    ["catch", "127.0.0.1", "0", "extra"],
    ["validate", "-d", "soon"],
    ["validate", "-d", "-5"],
    ["validate", "-o", "bare-lf=sometimes"],
])
def test_bad_command_line_exits_2(argv):
    path = os.path.join(examples_dir(), argv[0])
    r = run([path] + argv[1:], timeout=TIMEOUT)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr != ""


@pytest.mark.parametrize("name", ["catch", "validate"])
def test_port_in_use_exits_1(catch, name):
    path = os.path.join(examples_dir(), name)
    r = run([path, "127.0.0.1", str(catch.port)], timeout=TIMEOUT)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert "listen" in r.stderr
    good_transaction(catch, "unharmed")


def test_bad_address_exits_1():
    path = os.path.join(examples_dir(), "catch")
    r = run([path, "not an address", "0"], timeout=TIMEOUT)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)


def test_example_without_hostname_option(start):
    # the default hostname (gethostname) still makes a well-formed trace
    ex = start("catch", hostname=None)
    msg = b"Subject: default host\r\n\r\nx\r\n"
    with ex.smtp(local_hostname=CLIENT) as s:
        assert s.sendmail("a@example.com", ["b@example.net"], msg) == {}
    got = ex.next_message()
    assert got.body == msg
    assert got.data.startswith(b"Return-Path: <a@example.com>\r\nReceived: from ")
    assert b" by %s " % socket.gethostname().encode() in got.trace.replace(b"\r\n\t", b" ")
