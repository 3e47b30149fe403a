"""Helpers for the hostile-input suite: a raw SMTP client that can send anything and
reads replies with bounded waits, the after-case checks every test ends with (the
server still serves a normal client; exactly the expected messages were stored), and a
small HTTP client for the REST API over a raw socket.

Built on tests/mailsink/mslib.py (servers, database) and tests/pylib/smtpwire.py (the raw
client). Loopback only; every wait and loop is bounded."""

import json
import os
import re
import socket
import time
import uuid

from mslib import (  # noqa: F401
    CRLF, TIMEOUT, Db, RawClient, binary_has_asan, mailsink_bin, wait_until, write_script)

_ENH = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


# A sanitizer build is a few times slower: the waits below scale with this.
SLOW = 3 if binary_has_asan(mailsink_bin()) else 1


class Reply:
    """One SMTP reply: code (int), enhanced code ("5.5.2" or None), text lines."""

    def __init__(self, code, lines):
        self.code = code
        self.lines = lines
        m = _ENH.match(lines[-1]) if lines else None
        self.enh = "%s.%s.%s" % m.groups() if m else None

    def __repr__(self):
        return "<%d %r>" % (self.code, self.lines)

    def __eq__(self, other):
        """Reply == 250 or Reply == (550, "5.5.2")."""
        if isinstance(other, tuple):
            return (self.code, self.enh) == other
        if isinstance(other, int):
            return self.code == other
        return NotImplemented

    def is_(self, code, enh=None):
        return self.code == code and (enh is None or self.enh == enh)


class Client(RawClient):
    """smtpwire's RawClient with Reply objects, raw byte sends, and helpers for whole
    steps of a transaction."""

    def __init__(self, ms, greet=True, timeout=TIMEOUT):
        super().__init__(ms.addr, ms.port)
        self.sock.settimeout(timeout)
        self.greeting = self.reply() if greet else None
        if greet:
            assert self.greeting.code == 220, self.greeting

    def reply(self):
        code, lines = super().reply()
        return Reply(code, lines)

    def cmd(self, line):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + CRLF)
        return self.reply()

    def ok(self, line, code=250):
        r = self.cmd(line)
        assert r.code == code, (line, r)
        return r

    def ehlo(self, name="client.test"):
        return self.ok("EHLO " + name)

    def envelope(self, sender="a@x.example", rcpts=("b@y.example",), ehlo=True):
        if ehlo:
            self.ehlo()
        self.ok("MAIL FROM:<%s>" % sender)
        for r in rcpts:
            self.ok("RCPT TO:<%s>" % r)

    def data(self, raw):
        """DATA, then raw bytes as they are (the caller adds the final CRLF.CRLF): the
        end-of-data reply."""
        self.ok("DATA", 354)
        self.send(raw)
        return self.reply()

    def quit_replies(self, limit=50):
        """QUIT, then every reply until the connection closes: a stray reply (one a
        smuggled command got) shows up before the 221."""
        self.send(b"QUIT\r\n")
        out = []
        for _ in range(limit):
            r = self.reply()
            out.append(r)
            if r.code == 221:
                break
        assert self.closed_by_peer(TIMEOUT), "no close after 221"
        return out

    def replies_until_close(self, limit=100000, timeout=TIMEOUT):
        """Every reply until the server closes (bounded): list of Reply."""
        self.sock.settimeout(timeout)
        out = []
        for _ in range(limit):
            try:
                out.append(self.reply())
            except (ConnectionError, socket.timeout, OSError):
                break
        return out

    def recv_all(self, timeout=TIMEOUT, cap=64 << 20):
        """Everything the server sends until it closes (or timeout): bytes."""
        self.sock.settimeout(timeout)
        out = bytearray(self.buf)
        self.buf = b""
        deadline = time.monotonic() + timeout
        while len(out) < cap and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)


def count(ms):
    with Db(ms.db) as db:
        return db.count()


def newest_bodies(ms, n):
    """The message bodies (trace headers removed) of the n newest messages, oldest first."""
    with Db(ms.db) as db:
        ids = [r[0] for r in db.conn.execute(
            "SELECT id FROM messages ORDER BY seq DESC LIMIT ?", (n,))]
        return [db.body(i) for i in reversed(ids)]


def stored(ms, mid):
    with Db(ms.db) as db:
        return db.row(mid)


def normal_transaction(ms, rcpt="ok@y.example"):
    """A full well-behaved transaction on a new connection: 250 and stored byte-exact.
    Returns its id."""
    tag = uuid.uuid4().hex
    content = (b"From: ok@x.example\r\nTo: ok@y.example\r\nSubject: normal " +
               tag.encode() + b"\r\n\r\nall well\r\n")
    with Client(ms) as c:
        c.envelope("ok@x.example", [rcpt])
        r = c.data(content + b".\r\n")
        assert r.is_(250, "2.0.0"), r
        mid = r.lines[-1].split()[1]
        assert c.quit_replies()[-1].code == 221
    with Db(ms.db) as db:
        assert db.body(mid) == content, "the normal message was not stored byte-exact"
    return mid


class Case:
    """The after-checks of one hostile case: c = Case(ms) before, c.check(n) after:
    exactly n messages were stored meanwhile, and a normal client still gets 250 and its
    message stored."""

    def __init__(self, ms, rcpt="ok@y.example"):
        self.ms = ms
        self.rcpt = rcpt  # for the normal client: one this server's rules accept
        assert ms.proc.poll() is None, "mailsink is not running"
        self.before = count(ms)

    def stored_since(self):
        return count(self.ms) - self.before

    def check(self, n):
        assert self.ms.proc.poll() is None, "mailsink died:\n" + self.ms.stderr()[-3000:]
        got = self.stored_since()
        assert got == n, "stored %d message(s), expected %d" % (got, n)
        normal_transaction(self.ms, self.rcpt)
        assert count(self.ms) == self.before + n + 1


# -- HTTP over a raw socket --------------------------------------------------------------


def _one_response_done(out):
    """Whether out holds a whole response with a Content-Length body."""
    head, sep, body = bytes(out).partition(b"\r\n\r\n")
    if not sep:
        return False
    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    return bool(m) and len(body) >= int(m.group(1))


def http_raw(ms, request, timeout=TIMEOUT, first_only=False):
    """Send request bytes to the HTTP listener; everything answered until the server
    closes or timeout passes (bytes; what came before a reset). first_only: stop as
    soon as one whole response (with a Content-Length) is in."""
    host, port = ms.http_url.split("//", 1)[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout)
    try:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(out) < (64 << 20):
            if first_only and _one_response_done(out):
                break
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)
    finally:
        s.close()


def http_status(answer):
    """The status code of the first response in answer, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    return int(m.group(1)) if m else None


def http_get(ms, path, headers=b""):
    """GET path with Connection: close: (status, headers bytes, body bytes)."""
    req = (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
           headers + b"\r\n")
    ans = http_raw(ms, req)
    head, _, body = ans.partition(b"\r\n\r\n")
    return http_status(ans), head, body


def http_json(ms, path):
    st, _, body = http_get(ms, path)
    assert st == 200, (path, st, body[:300])
    return json.loads(body)


def api_total(ms):
    return http_json(ms, "/api/v1/messages?limit=1")["total"]


def files_under(root):
    """Every file path under root (relative), bounded."""
    out = []
    for i, (d, _, fs) in enumerate(os.walk(root)):
        assert i < 100000
        for f in fs:
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)
