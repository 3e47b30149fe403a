"""Memory under many large messages at once (issue 7: "1,000 concurrent clients each
mid-DATA with 10 MiB messages keep RSS bounded").

mailsink with --max-buffered-data 64M (the octets of message data all sessions may hold
together) and --max-message-size 12M. CLIENTS connections (1,000; 100 under a
sanitizer) each get 354 for DATA, then all send the first MiB of a 10 MiB message (so
all are mid-DATA at once), then the rest and the final dot, round robin from one
non-blocking loop. mailsink's RSS is sampled every 50 ms throughout.
Expected: peak RSS growth stays under the budget plus a fixed allowance per connection
plus one for the messages being committed (in all far below CLIENTS x 10 MiB); each
message gets either 250 (then it is stored, all of it) or 452 4.3.1 (then nothing of it
is stored); at least one gets 250 (the budget is not simply closed); afterwards every
connection is gone and the server serves."""

import selectors
import socket
import threading
import time

from faultlib import SANITIZED, MiB, Proc, sample_peak_rss, serves, wait_until
from mslib import Db, accepted_id

CLIENTS = 100 if SANITIZED else 1000
BUDGET = 64 * MiB
MESSAGE = 10 * MiB
FIRST = 1 * MiB
PER_CONNECTION = 200 * 1024  # allowance: buffers, session, TLS-free socket state
# messages being committed are outside the budget: a few 10 MiB messages, each in a few
# copies (the received data, the MIME summary, SQLite's blob); ASan keeps more around
STORE_ALLOWANCE = (192 if SANITIZED else 128) * MiB
CHUNK = 256 * 1024

LINE = b"m" * 78 + b"\r\n"
BODY = memoryview(LINE * (MESSAGE // len(LINE)))


class Client:
    def __init__(self, ms, n):
        self.n = n
        self.sock = socket.create_connection((ms.addr, ms.port), timeout=30)
        self.head = (b"Subject: mem %d\r\nX-Client: %d\r\n\r\n" % (n, n))
        self.inbuf = b""
        self.sent = 0
        self.total = len(self.head) + len(BODY) + 3  # head, the shared body, final dot

    def piece(self, start, end):
        """The octets [start, end) of head + BODY + ".\r\n", without building the
        10 MiB (1,000 copies would be 10 GiB in this process)."""
        h, b = len(self.head), len(BODY)
        if start < h:
            return self.head[start:min(end, h)]
        if start < h + b:
            return BODY[start - h:min(end, h + b) - h]
        return b".\r\n"[start - h - b:end - h - b]

    def expect(self, code):
        """Read one whole reply (blocking) and check its code."""
        for _ in range(1000):
            lines = self.inbuf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if len(line) >= 4 and line[3:4] == b" ":
                    self.inbuf = b"\r\n".join(lines[i + 1:])
                    assert line.startswith(b"%d " % code), (self.n, line)
                    return line
            chunk = self.sock.recv(65536)
            assert chunk, "closed by the server: %r" % self.inbuf
            self.inbuf += chunk
        raise AssertionError("no reply")


def pump(clients, limit, deadline):
    """Send each client's data up to limit octets (of head + body + final dot), round
    robin, non-blocking; returns when all reached it."""
    sel = selectors.DefaultSelector()
    for c in clients:
        c.sock.setblocking(False)
        if c.sent < limit(c):
            sel.register(c.sock, selectors.EVENT_WRITE, c)
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            c = key.data
            end = limit(c)
            try:
                c.sent += c.sock.send(c.piece(c.sent, min(end, c.sent + CHUNK)))
            except BlockingIOError:
                continue
            if c.sent >= end:
                sel.unregister(c.sock)
    left = len(sel.get_map())
    sel.close()
    for c in clients:
        c.sock.setblocking(True)
    assert left == 0, "%d clients could not send in time" % left


def test_many_large_messages_at_once_keep_rss_bounded(start):
    ms = start("--max-buffered-data", "64M", "--max-message-size", "12M",
               "--max-connections", str(CLIENTS + 50),
               "--max-connections-per-ip", str(CLIENTS + 50), "--data-timeout", "120")
    serves(ms, "baseline")
    p = Proc(ms.proc.pid)
    base = p.snapshot()
    peak, stop = [base["rss"]], threading.Event()
    t = threading.Thread(target=sample_peak_rss, args=(p, peak, stop), daemon=True)
    t.start()
    clients = []
    try:
        for n in range(CLIENTS):
            c = Client(ms, n)
            c.sock.sendall(b"EHLO mem.test\r\nMAIL FROM:<m@x.example>\r\n"
                           b"RCPT TO:<n@y.example>\r\nDATA\r\n")
            clients.append(c)
        for c in clients:
            c.expect(220)
            c.expect(250)
            c.expect(250)
            c.expect(250)
            c.expect(354)
        deadline = time.monotonic() + (200 if SANITIZED else 150)
        pump(clients, lambda c: FIRST, deadline)
        mid = p.rss()  # every client is mid-DATA now
        pump(clients, lambda c: c.total, deadline)
        accepted, full = {}, 0
        for c in clients:
            c.sock.settimeout(60)
            for _ in range(1000):
                if b"\r\n" in c.inbuf:
                    break
                chunk = c.sock.recv(65536)
                assert chunk, "closed before the reply to the dot"
                c.inbuf += chunk
            line = c.inbuf.split(b"\r\n")[0].decode()
            if line.startswith("250 "):
                accepted[accepted_id(line[4:])] = c
            else:
                assert line.startswith("452 4.3.1 "), (c.n, line)
                full += 1
            c.sock.close()
    finally:
        stop.set()
        t.join(5)
        for c in clients:
            c.sock.close()
    growth = peak[0] - base["rss"]
    allowed = BUDGET + CLIENTS * PER_CONNECTION + STORE_ALLOWANCE
    print("memory: %d clients x %d MiB: RSS %.0f MiB at start, %.0f MiB with all mid-DATA, "
          "peak %.0f MiB (growth %.0f MiB, allowed %.0f MiB); 250: %d, 452: %d"
          % (CLIENTS, MESSAGE // MiB, base["rss"] / MiB, mid / MiB, peak[0] / MiB,
             growth / MiB, allowed / MiB, len(accepted), full))
    assert growth < allowed, "RSS grew %.0f MiB (allowed %.0f)" % (growth / MiB, allowed / MiB)
    assert accepted, "no message got through the budget"
    with Db(ms.db) as db:
        assert db.count() == 1 + len(accepted), (db.count(), len(accepted), full)
        for mid_, c in list(accepted.items())[:20]:
            body = db.body(mid_)
            assert body == c.head + bytes(BODY), (mid_, len(body or b""))
    assert wait_until(lambda: p.fds() <= base["fds"], timeout=20), p.fds()
    serves(ms, "after the big ones")
