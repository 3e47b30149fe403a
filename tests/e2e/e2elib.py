"""Helpers for the end-to-end tests: run an example, read what it delivers, talk SMTP.

The examples (examples/catch.c, examples/validate.c) print every delivered message as

    === message <id> from <sender> to <r1>,<r2> size <n> trace <t> utf8 <0|1> 8bitmime <0|1> findings <names|->
    <exactly n octets of msg->data: t octets of Return-Path + Received, then the message>
    === end

A reader thread parses that stream so a test can wait for the next message with a
timeout. Everything here is bounded: sockets and processes have timeouts, loops have caps,
and only 127.0.0.1 / ::1 are used.
"""

import os
import sys
import queue
import re
import signal
import smtplib
import subprocess
import threading
import time
from email.utils import parsedate_to_datetime

HOSTNAME = "e2e.test"  # the examples run with -o hostname=e2e.test
TIMEOUT = 20  # seconds for any single wait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from smtpwire import (  # noqa: E402  (shared with the other end-to-end suite)
    RawClient, RecordingProxy, RecordingSMTP, accepted_id, data_blocks, require_tool, run,
    stuff, unstuff)
CRLF = b"\r\n"

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))


def examples_dir():
    """SMTPD_EXAMPLES_DIR (set by ctest), else the usual build directory."""
    return os.environ.get("SMTPD_EXAMPLES_DIR") or os.path.join(_REPO, "build")


_HEADER = re.compile(
    rb"=== message (\S+) from <(.*)> to (.*) size (\d+) trace (\d+) "
    rb"utf8 ([01]) 8bitmime ([01]) findings (\S+)\n\Z"
)
_LISTENING = re.compile(rb"listening on (.+):(\d+)\n\Z")


class Message:
    """One delivered message as the example printed it."""

    def __init__(self, mid, sender, rcpts, data, trace_size, utf8, bit8, findings):
        self.id = mid
        self.sender = sender
        self.rcpts = rcpts
        self.data = data
        self.trace_size = trace_size
        self.utf8 = utf8
        self.bit8 = bit8
        self.findings = findings

    @property
    def trace(self):
        return self.data[: self.trace_size]

    @property
    def body(self):
        """The message after our trace headers: what the client sent, unstuffed."""
        return self.data[self.trace_size :]

    def __repr__(self):
        return "<Message %s from %r to %r, %d+%d octets, findings %s>" % (
            self.id,
            self.sender,
            self.rcpts,
            self.trace_size,
            len(self.body),
            ",".join(sorted(self.findings)) or "-",
        )


class Example:
    """A running example program, listening on a free port of ADDR."""

    def __init__(self, name, args=(), addr="127.0.0.1", errpath=None, hostname=HOSTNAME):
        path = os.path.join(examples_dir(), name)
        if not os.access(path, os.X_OK):
            raise AssertionError(
                "example %s not found; build it or set SMTPD_EXAMPLES_DIR" % path
            )
        argv = [path, "-v"]
        if hostname:
            argv += ["-o", "hostname=" + hostname]
        argv += list(args) + [addr, "0"]
        self.argv = argv
        self.errpath = errpath or os.devnull
        self._err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._err
        )
        self.events = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        kind, value = self._next_event(TIMEOUT)
        if kind != "listening":
            self.kill()
            raise AssertionError("%s did not start: %r %r" % (name, kind, value))
        self.addr, self.port = value
        assert self.addr == addr and 0 < self.port < 65536

    # -- the stdout parser (its own thread) ------------------------------------------

    def _read(self):
        out = self.proc.stdout
        try:
            line = out.readline()
            m = _LISTENING.match(line)
            if not m:
                self.events.put(("error", b"bad first line: " + line))
                return
            self.events.put(("listening", (m.group(1).decode(), int(m.group(2)))))
            # Bounded by the process: every iteration consumes output or ends.
            while True:
                line = out.readline()
                if not line:
                    self.events.put(("eof", None))
                    return
                m = _HEADER.match(line)
                if not m:
                    self.events.put(("error", b"bad header line: " + line[:300]))
                    return
                size = int(m.group(4))
                data = out.read(size)
                end = out.readline()
                if len(data) != size or end != b"=== end\n":
                    self.events.put(("error", b"bad framing after %d/%d octets: %r"
                                     % (len(data), size, end[:100])))
                    return
                rcpts = [r.decode("utf-8") for r in re.findall(rb"<([^>]*)>", m.group(3))]
                findings = set() if m.group(8) == b"-" else set(m.group(8).decode().split(","))
                self.events.put(("message", Message(
                    m.group(1).decode(), m.group(2).decode("utf-8"), rcpts, data,
                    int(m.group(5)), m.group(6) == b"1", m.group(7) == b"1", findings)))
        except Exception as e:  # reported to the test, never lost in a thread
            self.events.put(("error", repr(e).encode()))

    def _next_event(self, timeout):
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            return ("timeout", None)

    # -- what tests call --------------------------------------------------------------

    def next_message(self, timeout=TIMEOUT):
        kind, value = self._next_event(timeout)
        assert kind == "message", "expected a message, got %s %r; stderr:\n%s" % (
            kind, value, self.stderr_tail())
        return value

    def assert_no_message(self, wait=0.5):
        kind, value = self._next_event(wait)
        assert kind == "timeout", "unexpected %s: %r" % (kind, value)

    def stderr_tail(self, n=4000):
        try:
            with open(self.errpath, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        """Stop with a signal; return the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)

    def close(self):
        """Stop (SIGTERM) if still running; return the exit status."""
        rc = self.stop()
        self.reader.join(timeout=TIMEOUT)
        self.proc.stdout.close()
        self._err.close()
        return rc

    def smtp(self, **kw):
        return RecordingSMTP(self.addr, self.port, timeout=TIMEOUT, **kw)

    def raw(self):
        return RawClient(self.addr, self.port)


# -- the bytes on the wire ---------------------------------------------------------------


def smtplib_wire_content(msg):
    """The content smtplib.SMTP.data() puts on the wire for msg, before stuffing:
    str gets its line ends made CRLF (bytes are sent as they are), and a CRLF is added
    when the content does not end with one."""
    if isinstance(msg, str):
        msg = re.sub(r"(?:\r\n|\n|\r(?!\n))", "\r\n", msg).encode("ascii")
    if stuff(msg)[-2:] != CRLF:
        msg += CRLF
    return msg


# -- a recording TCP proxy for clients we cannot instrument (swaks, curl) -----------------


# -- checks --------------------------------------------------------------------------------


def check_delivery(msg, *, content, sender, rcpts, reply_id=None, helo=None,
                   with_proto="ESMTP", addr="127.0.0.1"):
    """The message delivered is exactly content, after a Return-Path and a Received of
    ours that name the envelope and the session; the ids agree."""
    assert msg.sender == sender
    assert msg.rcpts == list(rcpts)
    if reply_id is not None:
        assert msg.id == reply_id, "250 reply id %r, delivered id %r" % (reply_id, msg.id)
    assert msg.body == content, first_difference(msg.body, content)
    check_trace(msg, helo=helo, with_proto=with_proto, addr=addr)


def check_trace(msg, *, helo=None, with_proto="ESMTP", addr="127.0.0.1"):
    """Return-Path first, then one Received (RFC 5321 4.4), and exactly trace_size octets."""
    data = msg.data
    rp = b"Return-Path: <" + msg.sender.encode("utf-8") + b">" + CRLF
    assert data.startswith(rp), "trace does not start with %r: %r" % (rp, data[:200])
    pos = len(rp)
    assert data.startswith(b"Received: ", pos), data[:300]
    # the Received header: its first line and continuation lines (RFC 5322 folding)
    end = data.find(CRLF, pos)
    for _ in range(50):
        if end < 0 or data[end + 2 : end + 3] not in (b" ", b"\t"):
            break
        end = data.find(CRLF, end + 2)
    assert end >= 0
    trace_end = end + 2
    assert trace_end == msg.trace_size, "trace headers end at %d, trace_size %d: %r" % (
        trace_end, msg.trace_size, data[:trace_end + 40])
    raw = data[pos:trace_end]
    assert b"\n" not in raw.replace(CRLF, b"") and b"\r" not in raw.replace(CRLF, b"")
    received = re.sub(rb"\r\n[ \t]+", b" ", raw[:-2]).decode("utf-8")
    assert received.startswith("Received: from "), received
    if helo is not None:
        assert received.startswith("Received: from " + helo), received
    # RFC 5321 4.4 TCP-info is an address literal: [1.2.3.4] or [IPv6:...] (4.1.3)
    literal = "[IPv6:%s]" % addr if ":" in addr else "[%s]" % addr
    assert re.search(r"\(([^()\s]+ )?%s\)" % re.escape(literal), received), received
    assert re.search(r"\bby %s\b" % re.escape(HOSTNAME), received), received
    assert re.search(r"\bwith %s\b" % re.escape(with_proto), received), received
    assert re.search(r"\bid %s\b" % re.escape(msg.id), received), received
    date = received.rsplit(";", 1)
    assert len(date) == 2, received
    when = parsedate_to_datetime(date[1].strip())
    assert when.tzinfo is not None and abs(time.time() - when.timestamp()) < 300, received


def first_difference(got, want):
    n = min(len(got), len(want))
    for i in range(n):
        if got[i] != want[i]:
            break
    else:
        i = n
    return "delivered %d octets, expected %d; first difference at %d: got %r, want %r" % (
        len(got), len(want), i, got[max(0, i - 20) : i + 40], want[max(0, i - 20) : i + 40])


