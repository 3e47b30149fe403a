"""Floods and misbehaving connections (issue 7; smtp-rules.md rules 6 and 8, the fault
table's "client never reads replies"): 10,000 NOOPs, RSET loops, pipelined junk after a
valid command, early talkers, half-closed sockets, a client that reads no replies. The
junk limit is the library's default max-junk 100 (Postfix smtpd_junk_command_limit),
the error limit its max-errors 20."""

import os
import socket
import time

import pytest

from hostlib import SLOW, Case, Client, http_json, write_script
from mslib import TIMEOUT, Db

MAX_JUNK = 100
MAX_ERRORS = 20


@pytest.fixture
def ms(shared):
    return shared()


def _rss_kib(ms):
    with open("/proc/%d/status" % ms.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _fds(ms):
    return len(os.listdir("/proc/%d/fd" % ms.proc.pid))


@pytest.mark.parametrize("flood", [b"NOOP\r\n", b"RSET\r\n", b"HELP\r\n", b"VRFY a@x\r\n",
                                   b"MAIL FROM:<a@x.example>\r\nRSET\r\n"],
                         ids=["noop", "rset", "help", "vrfy", "mail-rset-loop"])
def test_ten_thousand_junk_commands(ms, flood):
    """Input: EHLO, then 10,000 copies of a junk command (or a MAIL/RSET pair) in one
    write. Expected: exactly max-junk (100) junk commands are answered (the MAIL of a
    pair with 250 2.1.0), then 421 4.7.0 "too many commands" and the connection closes;
    nothing stored."""
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        try:
            c.send(flood * 10000)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before reading everything
        replies = c.replies_until_close(limit=20000)
    assert replies and replies[-1] == (421, "4.7.0"), replies[-3:]
    assert "too many commands" in replies[-1].lines[-1]
    answered = replies[:-1]
    per = flood.count(b"\r\n")
    assert len(answered) == MAX_JUNK * per, len(answered)
    assert all(r.code in (250, 252, 214) for r in answered), set(r.code for r in answered)
    case.check(0)


def test_rset_loop_between_transactions_is_not_junk(ms):
    """Input: 150 rounds of MAIL, RCPT, DATA (a message), all pipelined with RSET only
    once per 3 rounds (50 RSETs < max-junk). Expected: every reply as for a normal
    client (150 messages stored), no 421."""
    case = Case(ms)
    one = (b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
           b"Subject: loop\r\n\r\nx\r\n.\r\n")
    with Client(ms) as c:
        c.ehlo()
        for i in range(50):
            c.send(one * 3 + b"RSET\r\n")
            got = [c.reply() for _ in range(13)]
            assert [r.code for r in got] == [250, 250, 354, 250] * 3 + [250], got
        assert c.quit_replies()[-1].code == 221
    case.check(150)


@pytest.mark.parametrize("junk,codes", [
    (b"\xff\xfe\x00garbage\r\n", [(500, "5.5.2")]),
    (b"FOO BAR\r\n", [(500, "5.5.1")]),
    (b"\r\n", [(500, "5.5.1")]),
    (b"MAIL FROM:<a@x.example>\r\n", [(503, "5.5.1")]),
    (b"DATA\r\n", [(503, "5.5.1")]),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n", [(500, "5.5.2")]),
], ids=["binary", "unknown-verb", "empty-line", "nested-mail", "data-no-rcpt", "tls-hello"])
def test_pipelined_junk_after_valid_command(ms, junk, codes):
    """Input: in one write EHLO, MAIL FROM, then a junk line, then RCPT, DATA, a message
    and QUIT. Expected: replies strictly in order, the junk answered with the error in
    the table and the transaction going on untouched: one message stored."""
    case = Case(ms)
    with Client(ms) as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\n" + junk +
               b"RCPT TO:<b@y.example>\r\nDATA\r\nSubject: pj\r\n\r\nx\r\n.\r\nQUIT\r\n")
        replies = c.replies_until_close(limit=20)
    want = [250, 250] + codes + [250, 354, (250, "2.0.0"), 221]
    assert replies == want, replies
    case.check(1)


def test_junk_after_final_dot_and_after_quit(ms):
    """Input: one write with a whole transaction, then (after the final dot) a binary
    junk line, then QUIT, then MAIL/RCPT/DATA and a second message. Expected: 250 for the
    message, 500 5.5.2 for the junk, 221 for QUIT and nothing after it: one message
    stored (the commands after QUIT are never run)."""
    case = Case(ms)
    with Client(ms) as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
               b"DATA\r\nSubject: one\r\n\r\nx\r\n.\r\n\x00\xff junk\r\nQUIT\r\n"
               b"MAIL FROM:<evil@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
               b"Subject: two\r\n\r\ny\r\n.\r\n")
        replies = c.replies_until_close(limit=20)
    assert replies == [250, 250, 250, 354, (250, "2.0.0"), (500, "5.5.2"), 221], replies
    case.check(1)


def test_errors_flood_ends_in_421(ms):
    """Input: EHLO then 1,000 unknown commands in one write. Expected: max-errors (20)
    500 5.5.1 replies, then 421 4.7.0 "too many errors" and close; nothing stored."""
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        try:
            c.send(b"XYZZY\r\n" * 1000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        replies = c.replies_until_close(limit=2000)
    assert replies[:-1] == [(500, "5.5.1")] * MAX_ERRORS, replies[:3]
    assert replies[-1] == (421, "4.7.0") and "too many errors" in replies[-1].lines[-1]
    case.check(0)


HOLD = """#!/bin/sh
# validate-host hook: holds the greeting back so the client surely talks first
sleep %s
exit 0
"""


def test_early_talker_whole_transaction(shared, tmp_path_factory):
    """Input: a client that sends EHLO, MAIL, RCPT, DATA, a message and QUIT right after
    connecting, before the greeting (held back 0.5 s by --validate-host-exec). Expected:
    the 220 first, then every command answered in order (250 x3, 354, 250, 221); one
    message stored with the finding early-talker."""
    hook = write_script(str(tmp_path_factory.mktemp("hold") / "hold.sh"),
                        HOLD % (0.5 * SLOW))
    ms = shared("--validate-host-exec", hook)
    case = Case(ms)
    with Client(ms, greet=False) as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
               b"DATA\r\nSubject: early\r\n\r\nx\r\n.\r\nQUIT\r\n")
        replies = c.replies_until_close(limit=20)
    assert [r.code for r in replies] == [220, 250, 250, 250, 354, 250, 221], replies
    env = http_json(ms, "/api/v1/message/%s/envelope" % replies[5].lines[-1].split()[1])
    assert "early-talker" in env["Findings"], env
    case.check(1)


def test_early_talker_junk_then_close(shared, tmp_path_factory):
    """Input: 64 KiB of binary junk before the greeting (held 0.5 s), then the client
    closes. Expected: the server survives; nothing stored."""
    hook = write_script(str(tmp_path_factory.mktemp("hold") / "hold.sh"),
                        HOLD % (0.5 * SLOW))
    ms = shared("--validate-host-exec", hook)
    case = Case(ms)
    with Client(ms, greet=False) as c:
        try:
            c.send(bytes(range(256)) * 256)
        except (BrokenPipeError, ConnectionResetError):
            pass
    case.check(0)


@pytest.mark.parametrize("where", ["after-data", "mid-data", "after-dot", "before-ehlo"])
def test_half_closed_socket(ms, where):
    """Input: the client sends part of a session then shuts down its sending side (no
    QUIT): after the whole message (final dot), in the middle of the content, right
    after the DATA command, or with only a partial EHLO line. Expected: every complete
    command is still answered, then the server closes; the message is stored only when
    its final dot arrived (after-dot: 1), never partially (others: 0)."""
    case = Case(ms)
    head = b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n"
    sends = {
        "after-dot": (head + b"Subject: hc\r\n\r\nx\r\n.\r\n", [250, 250, 250, 354, 250]),
        "mid-data": (head + b"Subject: hc\r\n\r\npartial li", [250, 250, 250, 354]),
        "after-data": (head, [250, 250, 250, 354]),
        "before-ehlo": (b"EHLO clie", []),
    }
    data, want = sends[where]
    with Client(ms) as c:
        c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        replies = c.replies_until_close(limit=20)
    assert [r.code for r in replies] == want, replies
    case.check(1 if where == "after-dot" else 0)


def _push_without_reading(ms, seconds):
    """A client with a tiny receive buffer that sends RCPT lines (each answered 452 past
    max-recipients) and never reads, until the server stops taking them. Returns
    (socket, octets sent, how it ended: "stalled" (no progress for 1 s), "reset" (the
    server closed) or "time" (still taking input after the given seconds))."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(TIMEOUT)
    s.connect((ms.addr, ms.port))
    s.sendall(b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\n")
    s.setblocking(False)
    block = (b"RCPT TO:<" + b"r" * 60 + b"@" + b"d" * 60 + b".example>\r\n") * 1000
    sent = 0
    last = time.monotonic()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        off = sent % len(block)  # a partial send goes on mid-line, never restarts one
        try:
            sent += s.send(block[off:])
            last = time.monotonic()
        except BlockingIOError:
            if time.monotonic() - last > 1.0:
                return s, sent, "stalled"
            time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            return s, sent, "reset"
    return s, sent, "time"


def test_client_that_reads_no_replies_memory_bounded(shared):
    """Input: a client that pipelines RCPT commands (replies 250 then 452) and reads
    nothing. Expected: the server stops reading (the client's sends stall) with its
    memory bounded (RSS grows < 32 MiB while the client pushed far more input than
    that in replies' worth)."""
    ms = shared("--command-timeout", "300")
    case = Case(ms)
    rss0 = _rss_kib(ms)
    s, sent, how = _push_without_reading(ms, 20 * SLOW)
    try:
        assert how == "stalled", "the server kept reading a client that reads nothing: " + how
        assert _rss_kib(ms) - rss0 < 32 * 1024, (rss0, _rss_kib(ms), sent)
    finally:
        s.close()
    case.check(0)


def test_client_that_reads_no_replies_is_closed(shared):
    """Input: as above with --command-timeout 2: the client pushes RCPTs until the server
    stops reading (or has already dropped it), then reads nothing. Expected: the server
    drops the connection - its descriptor is closed - within the command timeout plus
    the 5 s linger (x the sanitizer factor, + 8 s), never keeping it open."""
    ms = shared("--command-timeout", "2", "--stop-grace", "1")
    case = Case(ms)
    fds0 = _fds(ms)
    s, sent, how = _push_without_reading(ms, 20 * SLOW)
    try:
        # under a slow (sanitizer) build the timeout may already have dropped it
        assert how in ("stalled", "reset"), how
        deadline = time.monotonic() + (2 + 5) * SLOW + 8
        while time.monotonic() < deadline and _fds(ms) > fds0:
            time.sleep(0.2)
        assert _fds(ms) <= fds0, "the connection is still open %.0f s after the timeout" % (
            (2 + 5) * SLOW + 8)
    finally:
        s.close()
    case.check(0)
