"""Slow and idle clients (issue 7; smtp-rules.md rule 5 "every wait has a deadline";
docs/replies.md: "command or data timeout: 421 4.4.2 <host> Error: timeout exceeded,
then close"). Short timeouts come from --command-timeout / --data-timeout 2. Lower
bounds are checked exactly (a timeout never fires early); upper bounds are generous so
that a sanitizer build's slowness does not matter."""

import socket
import time

import pytest

from hostlib import SLOW, Case, Client, normal_transaction
from mslib import TIMEOUT

T = 2  # seconds: --command-timeout and --data-timeout of this module's server
ARGS = ("--command-timeout", str(T), "--data-timeout", str(T), "--stop-grace", "1")


@pytest.fixture
def ms(shared):
    return shared(*ARGS)


def _await_421(c, t0):
    """The 421 4.4.2 timeout reply, then the close; returns seconds since t0."""
    r = c.reply()
    took = time.monotonic() - t0
    assert r == (421, "4.4.2") and "timeout exceeded" in r.lines[-1], r
    assert c.closed_by_peer(TIMEOUT), "no close after the 421"
    return took


# id: (setup after the greeting (bytes, replies expected), what the client then does)
IDLE = {
    "after-greeting": (b"", 0),
    "after-ehlo": (b"EHLO client.test\r\n", 1),
    "partial-command": (b"EHLO client.test\r\nMAIL FROM:<a@x.ex", 1),
    "in-transaction": (b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\n"
                       b"RCPT TO:<b@y.example>\r\n", 3),
    "after-data-command": (b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\n"
                           b"RCPT TO:<b@y.example>\r\nDATA\r\n", 4),
    "mid-data": (b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
                 b"DATA\r\nSubject: stalled\r\n\r\npartial", 4),
    "mid-data-after-dot-line-start": (b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\n"
                                      b"RCPT TO:<b@y.example>\r\nDATA\r\nSubject: s\r\n\r\n"
                                      b"x\r\n.", 4),
}


@pytest.mark.parametrize("where", list(IDLE))
def test_idle_client_gets_421(ms, where):
    """Input: the client sends the setup bytes, then nothing. Expected: 421 4.4.2 after
    the timeout (not earlier than 2 s), then close; nothing stored (the unfinished
    message never appears)."""
    case = Case(ms)
    data, nreplies = IDLE[where]
    with Client(ms) as c:
        c.send(data)
        t0 = time.monotonic()
        for _ in range(nreplies):
            assert c.reply().code in (250, 354)
        took = _await_421(c, t0)
    assert took >= T - 0.5, "timed out early: %.2f s" % took
    case.check(0)


def _trickle(c, data, interval, limit):
    """Send data one octet per interval until the server answers or closes, or limit
    seconds pass. Returns (what the server sent or b"", seconds taken)."""
    t0 = time.monotonic()
    c.sock.settimeout(interval)
    for i in range(len(data)):
        try:
            c.send(data[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            return b"", time.monotonic() - t0
        try:
            got = c.sock.recv(4096)
            return got or b"", time.monotonic() - t0
        except socket.timeout:
            pass
        if time.monotonic() - t0 > limit:
            break
    return None, time.monotonic() - t0


def test_byte_per_second_command_is_timed_out(ms):
    """Input: after the greeting, a MAIL command sent one octet every 0.5 s (never 2 s of
    silence). Expected: the command line does not complete within the command timeout,
    so the server answers 421 4.4.2 and closes within 4 x the timeout."""
    case = Case(ms)
    with Client(ms) as c:
        got, took = _trickle(c, b"MAIL FROM:<" + b"s" * 200 + b"@x.example>\r\n", 0.5,
                             4 * T + 2)
        assert got is not None, "still open after %.1f s of a byte-per-0.5 s sender" % took
        assert got.startswith(b"421 4.4.2"), got
    case.check(0)


def test_byte_per_second_data_is_timed_out(ms):
    """Input: a transaction whose content comes one octet every 0.5 s (never 2 s of
    silence). Expected: 421 4.4.2 and close within 4 x the data timeout; nothing stored."""
    case = Case(ms)
    with Client(ms) as c:
        c.envelope()
        c.ok("DATA", 354)
        got, took = _trickle(c, b"Subject: slow\r\n\r\n" + b"z" * 200, 0.5, 4 * T + 2)
        assert got is not None, "still open after %.1f s of a byte-per-0.5 s sender" % took
        assert got.startswith(b"421 4.4.2"), got
    case.check(0)


def test_slow_but_steady_sender_within_timeout_succeeds(ms):
    """Input: a whole transaction whose commands and content are each sent in 3 pieces
    0.3 s apart (each line complete in about 0.9 s, well within the 2 s timeout).
    Expected: every command answered normally, the message stored byte-exact."""
    case = Case(ms)
    content = b"Subject: steady\r\n\r\nslow but fine\r\n"
    with Client(ms) as c:
        for line in [b"EHLO client.test\r\n", b"MAIL FROM:<a@x.example>\r\n",
                     b"RCPT TO:<b@y.example>\r\n", b"DATA\r\n", content + b".\r\n"]:
            step = max(1, -(-len(line) // 3))
            for i in range(0, len(line), step):
                c.send(line[i:i + step])
                time.sleep(0.3)
            r = c.reply()
            assert r.code in (250, 354), r
        assert r.is_(250, "2.0.0")
    case.check(1)


def test_many_slow_clients_do_not_starve_a_fast_one(ms):
    """Input: 60 connections left idle at different points (after the greeting, mid
    command, mid DATA) plus 20 that trickle one octet each 0.3 s, while a fast client
    runs 10 whole transactions. Expected: every fast transaction gets 250 and is
    stored, each within 5 s (x the sanitizer factor); afterwards every slow connection
    ends with 421 4.4.2 and a close; only the fast client's messages are stored."""
    case = Case(ms)
    setups = [b"", b"EHLO client.test\r\nMAIL FROM:<a@x.ex",
              b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
              b"DATA\r\nSubject: stalled\r\n\r\npartial"]
    slow = []
    try:
        for i in range(60):
            c = Client(ms)
            c.send(setups[i % 3])
            slow.append(c)
        tricklers = [Client(ms) for _ in range(20)]
        slow += tricklers
        for k in range(10):
            t0 = time.monotonic()
            for j, c in enumerate(tricklers):
                try:
                    c.send(b"NOOP\r\n"[k % 6:k % 6 + 1])
                except OSError:
                    pass
            normal_transaction(ms)
            assert time.monotonic() - t0 < 5 * SLOW, "a fast client waited %.1f s" % (
                time.monotonic() - t0)
            time.sleep(0.1)
        assert case.stored_since() == 10
        for c in slow:
            got = c.recv_all(timeout=TIMEOUT)
            assert got.endswith(b"421 4.4.2 mailsink.test Error: timeout exceeded\r\n"), \
                got[-200:]
    finally:
        for c in slow:
            c.close()
    case.check(10)
