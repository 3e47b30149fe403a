#!/usr/bin/python3
"""http_latency.py - how fast mailsink's HTTP API answers with many messages stored.

Starts mailsink (SMTP and HTTP on free loopback ports, a database in a temporary
directory), fills it over SMTP with --messages varied messages (default 100,000: different
subjects, senders, recipients and bodies, some HTML, some with attachments), marks a third
of them read, then times GET /api/v1/messages (first page and a deep page), GET
/api/v1/search with several kinds of query, and GET /api/v1/message/{ID}, and prints
p50/p95/max in milliseconds (a table, or --json).

The fill is fast because it talks SMTP the way fast clients do: several connections at
once on one selector loop, and with PIPELINING (RFC 2920) MAIL, every RCPT and DATA leave
in one write; every reply is checked (a wrong one stops the run). smtplib cannot
pipeline, hence the raw sockets.

    python3 bench/http_latency.py --mailsink build-release/mailsink            # 100,000
    python3 bench/http_latency.py --mailsink build/mailsink --messages 2000    # quick

Build the program for measuring with
    cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release && cmake --build build-release -j

Standard library only. Talks only to 127.0.0.1. Bounded: every loop has a count and a
deadline (--fill-timeout for the fill, --kind-timeout per measured kind).
"""

import argparse
import base64
import datetime
import http.client
import json
import math
import os
import platform
import random
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CRLF = b"\r\n"
START_TIMEOUT = 30  # seconds for mailsink to start listening
IO_TIMEOUT = 60  # seconds without any progress on the SMTP connections

# ---- the messages -------------------------------------------------------------------------

WORDS = ("account alpha analysis answer april archive backup balance batch budget build "
         "calendar change client cluster config contract customer daily data deadline "
         "delivery deploy design draft error event export feature feedback figure file "
         "forecast friday global growth holiday incident invoice issue january launch "
         "ledger license march meeting memo metrics migration minutes monday network "
         "newsletter notice offer order outage package partner payment plan policy "
         "preview price project proposal quarterly receipt release renewal report request "
         "review roadmap schedule security server service shipment signup status summary "
         "support survey ticket timeline training travel update upgrade vendor weekly "
         "welcome workshop").split()
FIRST = ("alice bob carol dave erin frank grace heidi ivan judy mallory nina oscar peggy "
         "quentin rupert sybil trent uma victor walter xena yusuf zoe").split()
DOMAINS = ("example.test shop.example.test corp.example.test mail.example.test "
           "news.example.test billing.example.test").split()
SUBJECT_FORMS = (
    "Invoice {n} for {w}",
    "Your {w} order {n} has shipped",
    "Weekly report: {w} and {w2}",
    "Re: {w} {w2} meeting",
    "Quarterly report {n}",
    "Welcome to {w}!",
    "Password reset for {name}",
    "[{w}] build {n} failed",
    "Reminder: {w} deadline on {day}",
    "Fwd: {w} {w2} proposal",
)
DAYS = "Monday Tuesday Wednesday Thursday Friday".split()
ATTACHMENTS = (("report.pdf", "application/pdf"), ("photo.png", "image/png"),
               ("data.csv", "text/csv"), ("notes.txt", "text/plain"),
               ("archive.zip", "application/zip"))


def address(rng, pool_first=FIRST):
    name = rng.choice(pool_first)
    return "%s.%d@%s" % (name, rng.randrange(50), rng.choice(DOMAINS)), name.capitalize()


def paragraph(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def wrap(text, width=72):
    out, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = (line + " " + word) if line else word
    out.append(line)
    return out


def b64_lines(data):
    enc = base64.b64encode(data).decode("ascii")
    return [enc[i:i + 76] for i in range(0, len(enc), 76)]


def make_message(rng, i):
    """(sender, [recipients], message bytes with CRLF ends, not dot-stuffed)."""
    sender, sname = address(rng)
    rcpts = [address(rng) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
    subject = rng.choice(SUBJECT_FORMS).format(
        n=rng.randrange(100000), w=rng.choice(WORDS), w2=rng.choice(WORDS),
        name=rng.choice(FIRST), day=rng.choice(DAYS))
    date = (datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(seconds=rng.randrange(300 * 86400)))
    head = [
        "From: %s <%s>" % (sname, sender),
        "To: " + ", ".join("%s <%s>" % (n, a) for a, n in rcpts[:2]),
    ]
    if len(rcpts) > 2:
        head.append("Cc: %s <%s>" % (rcpts[2][1], rcpts[2][0]))
    head += [
        "Subject: " + subject,
        "Date: " + date.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "Message-ID: <bench.%d.%d@%s>" % (i, rng.randrange(1 << 30), rng.choice(DOMAINS)),
        "MIME-Version: 1.0",
    ]
    paras = [paragraph(rng, rng.randrange(8, 60)) for _ in range(rng.randrange(1, 6))]
    text = []
    for p in paras:
        text += wrap(p) + [""]
    kind = rng.random()
    body = []
    if kind < 0.12:  # with an attachment
        fname, ctype = rng.choice(ATTACHMENTS)
        payload = bytes(rng.randrange(256) for _ in range(rng.randrange(200, 4000)))
        head.append('Content-Type: multipart/mixed; boundary="b%d"' % i)
        body += ["--b%d" % i, "Content-Type: text/plain; charset=utf-8", ""] + text
        body += ["--b%d" % i, "Content-Type: %s; name=\"%s\"" % (ctype, fname),
                 "Content-Disposition: attachment; filename=\"%s\"" % fname,
                 "Content-Transfer-Encoding: base64", ""] + b64_lines(payload)
        body += ["--b%d--" % i]
    elif kind < 0.35:  # text and HTML alternatives
        html = "".join("<p>%s</p>" % p for p in paras)
        head.append('Content-Type: multipart/alternative; boundary="a%d"' % i)
        body += ["--a%d" % i, "Content-Type: text/plain; charset=utf-8", ""] + text
        body += ["--a%d" % i, "Content-Type: text/html; charset=utf-8", ""]
        body += wrap("<html><body>%s</body></html>" % html, 200)
        body += ["--a%d--" % i]
    else:
        head.append("Content-Type: text/plain; charset=utf-8")
        body = text
    msg = "\r\n".join(head + [""] + body) + "\r\n"
    return sender, [a for a, _ in rcpts], msg.encode("ascii")


def dot_stuff(data):
    """RFC 5321 4.5.2: a line starting with '.' gets one more."""
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


# ---- SMTP with pipelining on many connections ---------------------------------------------

class SmtpError(Exception):
    pass


class Conn:
    """One SMTP connection: a queue of expected reply codes and what to do on each."""

    def __init__(self, addr, port):
        self.sock = socket.create_connection((addr, port), timeout=10)
        self.sock.setblocking(False)
        self.inbuf = b""
        self.outbuf = b""
        self.expect = [(220, "greeting")]  # (code, what) in order
        self.reply_lines = []
        self.current = None  # message index in flight
        self.done = False

    def queue(self, data, *expects):
        self.outbuf += data
        self.expect.extend(expects)

    def replies(self):
        """Complete replies read so far: (code, text of the last line)."""
        out = []
        while True:
            eol = self.inbuf.find(CRLF)
            if eol < 0:
                if len(self.inbuf) > 65536:
                    raise SmtpError("reply line too long")
                return out
            line = self.inbuf[:eol].decode("utf-8", "replace")
            self.inbuf = self.inbuf[eol + 2:]
            if len(line) < 3 or not line[:3].isdigit():
                raise SmtpError("not an SMTP reply: %r" % line)
            self.reply_lines.append(line)
            if len(line) > 3 and line[3] == "-":
                if len(self.reply_lines) > 100:
                    raise SmtpError("reply of more than 100 lines")
                continue
            lines, self.reply_lines = self.reply_lines, []
            out.append((int(line[:3]), lines))


class Filler:
    """Sends n messages over `conns` connections; collects the ids of the 250 replies."""

    ACCEPTED = re.compile(r"^250[ -]2\.0\.0 (\S+) ")

    def __init__(self, addr, port, n, conns, seed, deadline):
        self.addr, self.port, self.n, self.deadline = addr, port, n, deadline
        self.rng = random.Random(seed)
        self.next_index = 0
        self.ids = []
        self.sent_bytes = 0
        self.sel = selectors.DefaultSelector()
        self.conns = [Conn(addr, port) for _ in range(min(conns, max(n, 1)))]
        for c in self.conns:
            self.sel.register(c.sock, selectors.EVENT_READ, c)

    def start_next(self, c):
        if self.next_index >= self.n:
            c.queue(b"QUIT\r\n", (221, "QUIT"))
            return
        i = self.next_index
        self.next_index += 1
        sender, rcpts, data = make_message(self.rng, i)
        # RFC 2920: MAIL, RCPT... and DATA go together; the content only after the 354.
        group = b"MAIL FROM:<%s>\r\n" % sender.encode()
        group += b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts)
        group += b"DATA\r\n"
        c.current = (i, dot_stuff(data) + b".\r\n")
        c.queue(group, (250, "MAIL"), *[(250, "RCPT")] * len(rcpts), (354, "DATA"))

    def on_reply(self, c, code, lines):
        if not c.expect:
            raise SmtpError("unexpected reply %r" % lines)
        want, what = c.expect.pop(0)
        if code != want:
            raise SmtpError("%s: expected %d, got %r (message %s)" % (
                what, want, lines, c.current and c.current[0]))
        if what == "greeting":
            c.queue(b"EHLO bench.example.test\r\n", (250, "EHLO"))
        elif what == "EHLO":
            if not any(l[4:].upper().startswith("PIPELINING") for l in lines):
                raise SmtpError("the server does not offer PIPELINING: %r" % lines)
            self.start_next(c)
        elif what == "DATA":
            c.queue(c.current[1], (250, "end of data"))
            self.sent_bytes += len(c.current[1])
        elif what == "end of data":
            m = self.ACCEPTED.match(lines[-1])
            if not m:
                raise SmtpError("end of data: no id in %r" % lines)
            self.ids.append(m.group(1))
            c.current = None
            self.start_next(c)
        elif what == "QUIT":
            c.done = True

    def flush(self, c):
        if c.outbuf:
            try:
                sent = c.sock.send(c.outbuf)
            except BlockingIOError:
                sent = 0
            c.outbuf = c.outbuf[sent:]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.outbuf else 0)
        self.sel.modify(c.sock, events, c)

    def run(self, progress=None):
        last_progress = time.monotonic()
        last_report = 0.0
        # Bounded: each turn either makes progress or waits; the deadlines end it anyway.
        for _ in range(100 * self.n + 100000):
            live = [c for c in self.conns if not c.done]
            if not live:
                break
            now = time.monotonic()
            if now > self.deadline:
                raise SmtpError("fill deadline passed after %d messages" % len(self.ids))
            if now - last_progress > IO_TIMEOUT:
                raise SmtpError("no progress for %d s after %d messages" % (
                    IO_TIMEOUT, len(self.ids)))
            if progress and now - last_report >= 5:
                last_report = now
                progress(len(self.ids))
            for key, mask in self.sel.select(timeout=1.0):
                c = key.data
                if mask & selectors.EVENT_READ:
                    try:
                        data = c.sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        if c.expect:
                            raise SmtpError("server closed the connection (waiting for %s)"
                                            % c.expect[0][1])
                        c.done = True
                        self.sel.unregister(c.sock)
                        continue
                    if data:
                        c.inbuf += data
                        for code, lines in c.replies():
                            self.on_reply(c, code, lines)
                        last_progress = time.monotonic()
                if not c.done:
                    self.flush(c)
        for c in self.conns:
            try:
                c.sock.close()
            except OSError:
                pass
        self.sel.close()
        if len(self.ids) != self.n:
            raise SmtpError("stored %d of %d messages" % (len(self.ids), self.n))
        return self.ids


# ---- the server ---------------------------------------------------------------------------

class Server:
    def __init__(self, binary, db, tmp, extra_args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSINK_")}
        env["HOME"] = env["XDG_DATA_HOME"] = tmp
        argv = [binary, "--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0", "--db", db] + extra_args
        self.errpath = os.path.join(tmp, "mailsink.stderr")
        self.errfile = open(self.errpath, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.errfile, env=env, start_new_session=True)
        self.smtp_port = self.wait_port(r"listening on 127\.0\.0\.1:(\d+)", "SMTP")
        self.http_port = self.wait_port(r"HTTP on http://127\.0\.0\.1:(\d+)", "HTTP")
        self.wait_http()

    def log(self):
        with open(self.errpath, "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")

    def fail(self, why):
        self.stop()
        raise SystemExit("http_latency: %s\n--- mailsink's stderr ---\n%s" % (why, self.log()))

    def wait_port(self, pattern, what):
        """The port in mailsink's announcement ("listening on ...", "HTTP on ...")."""
        deadline = time.monotonic() + START_TIMEOUT
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.log())
            if m:
                return int(m.group(1))
            if self.proc.poll() is not None:
                self.fail("mailsink exited with status %s" % self.proc.returncode)
            time.sleep(0.05)
        self.fail("mailsink did not report its %s port within %d s" % (what, START_TIMEOUT))

    def wait_http(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=5)
                c.request("GET", "/api/v1/info")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                self.fail("mailsink exited with status %s" % self.proc.returncode)
            time.sleep(0.1)
        self.fail("GET /api/v1/info did not answer 200 within %d s" % START_TIMEOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.errfile.close()


# ---- HTTP measurements --------------------------------------------------------------------

class Api:
    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None):
        """(status, body bytes); one keep-alive connection, reopened after an error."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def json(self, method, path, body=None):
        status, data = self.request(method, path, body)
        if status != 200:
            raise SystemExit("http_latency: %s %s answered %d: %s" % (
                method, path, status, data[:300].decode("utf-8", "replace")))
        return json.loads(data)


def quote(q):
    return urllib.parse.quote(q, safe="")


def percentile(sorted_ms, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_ms:
        return 0.0
    k = min(len(sorted_ms) - 1, max(0, math.ceil(p / 100.0 * len(sorted_ms)) - 1))
    return sorted_ms[k]


def measure(api, name, paths, repeat, kind_timeout):
    """Time GET of each path in turn (cycling) `repeat` times after 2 warm-up requests."""
    deadline = time.monotonic() + kind_timeout
    for p in paths[:2]:
        api.request("GET", p)
    times, matched, size = [], None, 0
    for k in range(repeat):
        if time.monotonic() > deadline:
            break
        path = paths[k % len(paths)]
        t0 = time.perf_counter()
        status, data = api.request("GET", path)
        times.append((time.perf_counter() - t0) * 1000.0)
        if status != 200:
            raise SystemExit("http_latency: GET %s answered %d: %s" % (
                path, status, data[:300].decode("utf-8", "replace")))
        size = max(size, len(data))
        if matched is None and path.startswith(("/api/v1/search", "/api/v1/messages")):
            matched = json.loads(data).get("messages_count")
    times.sort()
    return {"name": name, "path": paths[0], "n": len(times), "matches": matched,
            "bytes": size, "p50_ms": round(percentile(times, 50), 2),
            "p95_ms": round(percentile(times, 95), 2), "max_ms": round(times[-1], 2)
            if times else 0.0}


def kinds(n, ids, rng):
    tomorrow = (datetime.datetime.now(datetime.timezone.utc)
                + datetime.timedelta(days=1)).strftime("%Y-%m-%d")
    deep = min(50000, max(0, n // 2))
    s = "/api/v1/search?limit=50&query="
    out = [
        ("list, first page", ["/api/v1/messages?limit=50"]),
        ("list, start=%d" % deep, ["/api/v1/messages?start=%d&limit=50" % deep]),
        ("search word", [s + quote(w) for w in ("invoice", "meeting", "holiday")]),
        ("search phrase", [s + quote('"%s"' % p) for p in ("weekly report", "has shipped",
                                                           "build")]),
        ("search from:", [s + quote("from:" + f) for f in ("alice", "bob.7", "shop.example")]),
        ("search to:", [s + quote("to:" + t) for t in ("carol.3@", "dave", "news.example")]),
        ("search subject:", [s + quote('subject:"%s"' % t) for t in ("quarterly report",
                                                                     "invoice", "welcome")]),
        ("search is:unread", [s + quote("is:unread")]),
        ("search has:attachment", [s + quote("has:attachment")]),
        ("search before:", [s + quote("before:" + tomorrow)]),
        ("search negation", [s + quote(q) for q in ("invoice -has:attachment",
                                                    "-subject:invoice", "!is:read")]),
        ("search combination", [s + quote(q) for q in (
            "from:alice subject:report is:unread", 'to:bob "weekly report" -has:attachment',
            "has:attachment from:shop.example before:" + tomorrow)]),
        ("search, deep page", [s + quote("is:unread") + "&start=%d" % (deep // 2)]),
        ("message by ID", ["/api/v1/message/" + i for i in rng.sample(ids, min(len(ids),
                                                                               200))]),
    ]
    return out


# ---- main ---------------------------------------------------------------------------------

def mark_read(api, ids, deadline):
    """Every third message read, in batches, so that is:read/is:unread differ."""
    chosen = ids[::3]
    for k in range(0, len(chosen), 1000):
        if time.monotonic() > deadline:
            raise SystemExit("http_latency: marking messages read passed the deadline")
        body = json.dumps({"IDs": chosen[k:k + 1000], "Read": True})
        status, data = api.request("PUT", "/api/v1/messages", body)
        if status != 200:
            raise SystemExit("http_latency: PUT /api/v1/messages answered %d: %s" % (
                status, data[:300].decode("utf-8", "replace")))
    return len(chosen)


def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": platform.platform(),
            "python": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def table(res):
    head = ("request", "matches", "p50 ms", "p95 ms", "max ms", "n")
    rows = [(r["name"], "" if r["matches"] is None else str(r["matches"]),
             "%.2f" % r["p50_ms"], "%.2f" % r["p95_ms"], "%.2f" % r["max_ms"], str(r["n"]))
            for r in res["results"]]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row in rows:
        lines.append("| " + row[0].ljust(widths[0]) + " | " + " | ".join(
            c.rjust(w) for c, w in zip(row[1:], widths[1:])) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mailsink", default=os.path.join(REPO, "build", "mailsink"),
                    help="the program (default build/mailsink; measure a Release build)")
    ap.add_argument("--messages", type=int, default=100000, help="messages to store")
    ap.add_argument("--connections", type=int, default=8, help="parallel SMTP connections")
    ap.add_argument("--repeat", type=int, default=50, help="timed requests per kind")
    ap.add_argument("--seed", type=int, default=5, help="random seed of the messages")
    ap.add_argument("--fill-timeout", type=float, default=3600, help="seconds for the fill")
    ap.add_argument("--kind-timeout", type=float, default=120,
                    help="seconds for the requests of one kind")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("mailsink_args", nargs="*", help="more mailsink flags (after --)")
    a = ap.parse_args()
    if a.messages < 1 or a.connections < 1 or a.repeat < 1:
        ap.error("--messages, --connections and --repeat must be at least 1")
    binary = os.path.abspath(a.mailsink)
    if not os.access(binary, os.X_OK):
        ap.error("%s is not an executable: build mailsink first (see --help)" % binary)
    say = (lambda *x: print(*x, file=sys.stderr, flush=True))

    tmp = tempfile.mkdtemp(prefix="mailsink-bench-")
    srv = None
    try:
        srv = Server(binary, os.path.join(tmp, "bench.db"), tmp, a.mailsink_args)
        say("mailsink: SMTP port %d, HTTP port %d, database in %s" % (
            srv.smtp_port, srv.http_port, tmp))
        t0 = time.monotonic()
        filler = Filler("127.0.0.1", srv.smtp_port, a.messages, a.connections, a.seed,
                        t0 + a.fill_timeout)
        try:
            ids = filler.run(progress=lambda k: say("  stored %d/%d" % (k, a.messages)))
        except (SmtpError, OSError) as e:
            srv.fail("SMTP fill failed: %s" % e)
        fill_s = time.monotonic() - t0
        say("stored %d messages in %.1f s (%.0f/s, %.1f MB)" % (
            len(ids), fill_s, len(ids) / fill_s, filler.sent_bytes / 1e6))
        api = Api(srv.http_port)
        info = api.json("GET", "/api/v1/info")
        if info.get("Messages") != a.messages:
            srv.fail("/api/v1/info says %s messages, expected %d" % (
                info.get("Messages"), a.messages))
        nread = mark_read(api, ids, time.monotonic() + a.kind_timeout)
        info = api.json("GET", "/api/v1/info")
        rng = random.Random(a.seed)
        results = []
        for name, paths in kinds(a.messages, ids, rng):
            results.append(measure(api, name, paths, a.repeat, a.kind_timeout))
            say("  %-24s p50 %8.2f ms" % (name, results[-1]["p50_ms"]))
        res = {"machine": machine(), "messages": a.messages, "read": nread,
               "fill_seconds": round(fill_s, 1), "fill_per_second": round(len(ids) / fill_s),
               "database_bytes": info.get("DatabaseSize"), "version": info.get("Version"),
               "connections": a.connections, "results": results}
        if a.json:
            print(json.dumps(res, indent=2))
        else:
            m = res["machine"]
            print("%d messages (%d read), database %.0f MB; filled in %.1f s (%d/s)" % (
                a.messages, nread, (res["database_bytes"] or 0) / 1e6, fill_s,
                res["fill_per_second"]))
            print("%s, %s cores, %s, %s" % (m["cpu"], m["cores"], m["system"], m["date"]))
            print()
            print(table(res))
    finally:
        if srv:
            srv.stop()
        if a.keep:
            say("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
