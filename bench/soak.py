#!/usr/bin/python3
"""soak.py - mixed load against one mailsink for --minutes N; RSS, fds and threads must
stay flat (issue 7, "Soak"). Run through bench/soak.sh; `make test` runs --minutes 2.

  bench/soak.sh [--minutes 30] [--mailsink PATH] [--smtp-load PATH] [--json FILE] [--keep]
                [--interval SECONDS]

What it does
  1. Makes a self-signed RSA certificate in a temporary directory and starts
     `mailsink --smtp 127.0.0.1:0 --smtps 127.0.0.1:0 --http 127.0.0.1:0 --db TMP/soak.db
     --tls-cert ... --tls-key ... --auth-accept-any --hostname soak.test`; the ports come
     from its log. Nothing but 127.0.0.1 is used.
  2. Primes every path once (plain, STARTTLS, implicit TLS, AUTH, HTTP reads, a DELETE),
     so that lazily opened files and threads exist, then samples the baseline.
  3. For --minutes, runs these clients at the same time, each a bounded loop (count and
     deadline, every socket with a timeout):
     - smtp-load (bench/smtp-load.c) runs one after another, cycling through 1 KiB and
       100 KiB messages, 1 and 20 sessions, pipelined and not, one message per connection
       and many; a pause after each run keeps the machine usable for others;
     - two TLS clients (smtplib): STARTTLS and implicit TLS, TLS 1.2 and 1.3, half with
       AUTH (PLAIN, LOGIN, CRAM-MD5), 1-5 messages of 1-30 KiB per session;
     - a hostile client cycling through: garbage lines until "421 too many errors",
       disconnect in the middle of DATA, early talker (a command before the greeting),
       a 100 KiB command line and a 20 KiB data line, bare LF in data and <LF>.<LF>
       smuggling, a client that sends NOOPs and never reads the replies, TLS handshakes
       cut off (partial ClientHello, STARTTLS then garbage or nothing), an idle client;
     - an HTTP reader: list, search, one message, its raw source (size checked against
       the list's Size), info, livez - one keep-alive connection;
     - a deleter that every few seconds deletes what is stored by ID (so the database
       does not grow for 30 minutes and the stored count stays exactly checkable).
     Every SAMPLE seconds (--interval, default 2 s for short runs, 5 s for long ones) it
     reads VmRSS and Threads from /proc/PID/status and counts /proc/PID/fd.
  4. Stops the clients, waits for them, keeps sampling for a cool-down, sends a final
     plain and TLS message, compares the API's count with the database's, stops
     mailsink with SIGTERM and checks it exits 0 and the database is intact.

How to read the output
  The table has the baseline, the end of warm-up (the first quarter of the load, at
  least 20 s, and until every kind of smtp-load run has run once, at most half the
  load), the maxima of the first and last thirds of the load after warm-up, the end of
  the load and the end of the cool-down, each with RSS, fds, threads and the database's
  size (with its WAL; shown, not judged). Then one line per client class: sessions,
  messages accepted (250 after the dot), expected refusals, unexpected replies,
  timeouts, and "uncertain" (the dot was sent but the reply never came: the message may
  or may not be stored). Then the store check:
      accepted <= deleted + stored <= accepted + uncertain
  (a 250 for a message that is not stored, or a message stored twice, breaks it).
  The verdict is FLAT (exit 0) or FAIL (exit 1) with every reason. It fails when
    - RSS: the last third's median > the first third's median * 1.10 + 8 MiB, or the
      last third's max > the max of warm-up and first third * 1.10 + 16 MiB (the 100 KiB
      runs swing RSS by about 15 MiB, and a starved CPU must not look like a leak). The
      2-minute run catches a leak of about 300 KiB/s (1-2 KiB per message at the 170-320
      messages/s seen on a shared 2-core machine), the 30-minute run one of about
      35 KiB/s (about 0.1-0.2 KiB per message),
    - fds: not back to the baseline within the cool-down once all clients have closed,
    - threads: ever more than at the baseline, or not back to it at the end,
    - mailsink died, did not exit 0 on SIGTERM, or printed a sanitizer report,
    - the store check or the API/database comparison fails,
    - a normal client got an unexpected reply, or a hostile one got a 2xx where a
      refusal was due, or the final messages were not accepted.
  Timeouts alone (a starved CPU) do not fail it; they are counted and shown. Exit 2:
  bad arguments or mailsink would not start.
"""

import argparse
import http.client
import json
import os
import random
import re
import select
import shutil
import signal
import smtplib
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HOST = "127.0.0.1"
HOSTNAME = "soak.test"
SOCK_TIMEOUT = 20  # seconds for any one socket operation
RSS_FACTOR = 1.10
RSS_SLACK_KIB = 16 * 1024  # for the peaks
RSS_LEVEL_SLACK_KIB = 8 * 1024  # for the level (median), which swings much less
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# smtp-load runs, cycled in order: (size, sessions, messages, per-connection, pipelining)
LOAD_RUNS = [
    (102400, 20, 200, 1, False),
    (1024, 20, 2000, 0, True),
    (102400, 20, 300, 5, True),
    (1024, 1, 300, 0, False),
    (102400, 1, 60, 0, True),
    (1024, 20, 1000, 1, False),
    (1024, 1, 300, 10, True),
    (1024, 20, 1000, 0, False),
]
LOAD_TIMEOUT = 90  # smtp-load --timeout for one run


def die(msg):
    """Exit 2: the soak could not be set up (not a verdict)."""
    sys.stderr.write("soak: %s\n" % msg)
    sys.exit(2)


def log(msg):
    sys.stderr.write("soak: %s\n" % msg)
    sys.stderr.flush()


# -- counting -------------------------------------------------------------------------------


class Tally:
    """What each client class got; shared by the worker threads."""

    FIELDS = ("sessions", "accepted", "refused", "unexpected", "timeouts", "uncertain")

    def __init__(self):
        self.lock = threading.Lock()
        self.by_class = {}
        self.notes = []  # the first unexpected replies, for the report

    def add(self, cls, **kw):
        with self.lock:
            row = self.by_class.setdefault(cls, dict.fromkeys(self.FIELDS, 0))
            for k, v in kw.items():
                row[k] = row.get(k, 0) + v

    def unexpected(self, cls, what):
        self.add(cls, unexpected=1)
        with self.lock:
            if len(self.notes) < 30:
                self.notes.append("%s: %s" % (cls, what[:300]))

    def total(self, field):
        with self.lock:
            return sum(r.get(field, 0) for r in self.by_class.values())


# -- mailsink -------------------------------------------------------------------------------


class Server:
    """mailsink with TLS and AUTH on free ports; ports read from its stderr."""

    def __init__(self, binary, tmp):
        self.tmp = tmp
        self.db = os.path.join(tmp, "soak.db")
        self.errpath = os.path.join(tmp, "mailsink.stderr")
        crt, key = make_cert(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSINK_")}
        for d in ("home", "xdg"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        env.update(HOME=os.path.join(tmp, "home"), XDG_DATA_HOME=os.path.join(tmp, "xdg"),
                   LC_ALL="C.UTF-8")
        self.argv = [binary, "--smtp", HOST + ":0", "--smtps", HOST + ":0",
                     "--http", HOST + ":0", "--db", self.db, "--hostname", HOSTNAME,
                     "--tls-cert", crt, "--tls-key", key, "--auth-accept-any"]
        self.err = open(self.errpath, "wb")
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err, env=env, cwd=tmp,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.smtp_ports, self.http_port = self._wait_ports()
        self.port, self.smtps_port = classify(self.smtp_ports)

    def log_text(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def _wait_ports(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            text = self.log_text()
            smtp = [int(p) for p in re.findall(r"listening on [0-9.]+:(\d+)", text)]
            m = re.search(r"HTTP on https?://[0-9.]+:(\d+)", text)
            if len(smtp) >= 2 and m:
                return smtp, int(m.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        die("mailsink did not start (exit %s):\n%s" % (self.proc.poll(),
                                                       self.log_text()[-3000:]))

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM and wait; the exit status or None (then it was killed)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        finally:
            self.err.close()

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass


def make_cert(tmp):
    crt, key = os.path.join(tmp, "server.crt"), os.path.join(tmp, "server.key")
    openssl = shutil.which("openssl")
    if not openssl:
        die("openssl not found (needed for the test certificate)")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                        "/CN=" + HOSTNAME, "-addext", "subjectAltName=DNS:" + HOSTNAME,
                        "-days", "2", "-keyout", key, "-out", crt],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    if r.returncode != 0:
        die("openssl req failed: %s" % r.stderr.decode(errors="replace"))
    return crt, key


def classify(ports):
    """(plain port, implicit TLS port): a plain listener greets at once, a TLS one waits
    for the ClientHello."""
    plain = tls = None
    for p in ports:
        c = socket.create_connection((HOST, p), timeout=SOCK_TIMEOUT)
        try:
            r, _, _ = select.select([c], [], [], 3)
            data = c.recv(100) if r else b""
        finally:
            c.close()
        if data.startswith(b"220"):
            plain = p
        else:
            tls = p
    if plain is None or tls is None:
        die("could not tell the plain and TLS ports apart: %r" % ports)
    return plain, tls


def db_kib(path):
    """The database's size with its WAL, in KiB (shown, not judged)."""
    n = 0
    for suffix in ("", "-wal"):
        try:
            n += os.path.getsize(path + suffix)
        except OSError:
            pass
    return n // 1024


def proc_figures(pid):
    """(VmRSS KiB, open fds, threads), or None once the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            status = f.read()
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return None
    rss = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
    thr = re.search(r"^Threads:\s+(\d+)", status, re.M)
    if not rss or not thr:  # a zombie has no VmRSS
        return None
    return int(rss.group(1)), fds, int(thr.group(1))


# -- SMTP helpers ---------------------------------------------------------------------------


def tls_ctx(max_tls12=False):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def message(cls, n, size):
    words = ("soak", "invoice", "meeting", "report", "lorem", "ipsum", "build", "mail")
    lines, total = [], 0
    rnd = random.Random(n)
    while total < size:
        ln = " ".join(rnd.choice(words) for _ in range(12))
        lines.append(ln)
        total += len(ln) + 2
    return ("From: %s@client.test\r\nTo: sink@soak.test\r\nSubject: soak %s %d\r\n"
            "Message-ID: <%s.%d.%d@client.test>\r\nX-Soak: %s\r\n\r\n%s\r\n"
            % (cls, cls, n, cls, n, os.getpid(), cls, "\r\n".join(lines))).encode()


class Raw:
    """A line-oriented SMTP socket for the hostile clients."""

    def __init__(self, port, read_greeting=True):
        self.sock = socket.create_connection((HOST, port), timeout=SOCK_TIMEOUT)
        self.buf = b""
        self.greeting = self.reply() if read_greeting else None

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        """(code, last line) of one reply; (None, why) when the connection closed."""
        for _ in range(200):
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return None, "closed (unread %r)" % self.buf[:80]
                self.buf += chunk
                if len(self.buf) > 1 << 20:
                    return None, "no line ending in 1 MiB"
            ln, self.buf = self.buf.split(b"\r\n", 1)
            if not re.match(rb"^[2-5]\d\d([ -]|$)", ln):
                return None, "not a reply: %r" % ln[:100]
            if len(ln) == 3 or ln[3:4] == b" ":
                return int(ln[:3]), ln.decode("utf-8", "replace")
        return None, "reply too long"

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.reply()

    def close(self, reset=False):
        try:
            if reset:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.sock.close()
        except OSError:
            pass


# -- the clients ----------------------------------------------------------------------------


class Soak:
    def __init__(self, args, server, tmp):
        self.args = args
        self.srv = server
        self.tmp = tmp
        self.tally = Tally()
        self.stop = threading.Event()
        self.deleted = 0
        self.delete_cycles = 0
        self.load_runs = 0
        self.load_durations = []
        self.cycle_done = threading.Event()  # every kind of smtp-load run has run once
        self.seq = 0
        self.seq_lock = threading.Lock()

    def next_n(self):
        with self.seq_lock:
            self.seq += 1
            return self.seq

    def messages_accepted(self):
        """Messages the SMTP clients got a 250 for (the http class counts 200 answers)."""
        with self.tally.lock:
            return sum(r["accepted"] for c, r in self.tally.by_class.items() if c != "http")

    def pause(self, seconds):
        """Sleep unless told to stop; True when stopping."""
        return self.stop.wait(seconds)

    # smtp-load --------------------------------------------------------------------------

    def load_worker(self):
        pause = 0.0
        for i in range(100000):
            if self.pause(pause):
                break
            pause = 1.0  # after a failed run
            size, sessions, count, per_conn, pipe = LOAD_RUNS[i % len(LOAD_RUNS)]
            # no --host: the default is 127.0.0.1 (and smtp-load takes --host for a number)
            argv = [self.args.smtp_load, "--port", str(self.srv.port), "--sessions",
                    str(sessions), "--messages", str(count), "--size", str(size),
                    "--per-connection", str(per_conn), "--timeout", str(LOAD_TIMEOUT),
                    "--json"] + (["--pipelining"] if pipe else [])
            t0 = time.monotonic()
            try:
                r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=LOAD_TIMEOUT + 60)
            except subprocess.TimeoutExpired:
                # it ignored its own --timeout: up to one dot per session unanswered
                self.tally.add("smtp-load", sessions=1, timeouts=1, uncertain=sessions)
                self.tally.unexpected("smtp-load", "did not end: %s" % " ".join(argv[1:]))
                continue
            took = time.monotonic() - t0
            self.load_runs += 1
            self.load_durations.append(took)
            out = r.stdout.decode("utf-8", "replace").strip()
            err = r.stderr.decode("utf-8", "replace").strip()
            try:
                doc = json.loads(out.splitlines()[-1])
                delivered = int(doc["delivered"])
            except (ValueError, KeyError, IndexError):
                self.tally.unexpected("smtp-load", "exit %d, output %r %r"
                                      % (r.returncode, out[:200], err[:200]))
                self.tally.add("smtp-load", sessions=1, uncertain=sessions)
                continue
            self.tally.add("smtp-load", sessions=1, accepted=delivered)
            if r.returncode != 0:
                # a failed run leaves at most one dot per session unanswered
                self.tally.add("smtp-load", uncertain=sessions)
                if "timeout" in err.lower() or "timed out" in err.lower():
                    self.tally.add("smtp-load", timeouts=1)
                else:
                    self.tally.unexpected("smtp-load", "%s: %s" % (" ".join(argv[1:]), err))
            if i + 1 >= len(LOAD_RUNS):
                self.cycle_done.set()
            # about half the time loaded, half idle: the machine is shared
            pause = min(max(took, 0.5), 5)

    # TLS (and AUTH) with smtplib -----------------------------------------------------------

    def tls_worker(self, seed):
        rnd = random.Random(seed)
        for _ in range(1000000):
            if self.stop.is_set():
                break
            implicit = rnd.random() < 0.4
            auth = rnd.choice([None, None, "PLAIN", "LOGIN", "CRAM-MD5"])
            tls12 = rnd.random() < 0.25
            cls = "tls+auth" if auth else "tls"
            self.tls_session(cls, implicit, auth, tls12, rnd.randint(1, 5), rnd)
            if self.pause(rnd.uniform(0.05, 0.3)):
                break

    def tls_session(self, cls, implicit, auth, tls12, count, rnd):
        self.tally.add(cls, sessions=1)
        in_data = False
        s = None
        try:
            if implicit:
                s = smtplib.SMTP_SSL(HOST, self.srv.smtps_port, local_hostname="client.test",
                                     timeout=SOCK_TIMEOUT, context=tls_ctx(tls12))
                s.ehlo()
            else:
                s = smtplib.SMTP(HOST, self.srv.port, local_hostname="client.test",
                                 timeout=SOCK_TIMEOUT)
                s.ehlo()
                code, text = s.starttls(context=tls_ctx(tls12))
                if code != 220:
                    raise smtplib.SMTPResponseException(code, text)
                s.ehlo()
            if auth:
                user = "soak-user-%d" % rnd.randint(1, 50)
                s.user, s.password = user, "pw-%d" % rnd.randint(1, 10 ** 6)
                fn = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login,
                      "CRAM-MD5": s.auth_cram_md5}[auth]
                code, text = s.auth(auth, fn, initial_response_ok=(auth != "LOGIN"))
                if code != 235:
                    raise smtplib.SMTPResponseException(code, text)
            for _ in range(count):
                n = self.next_n()
                code, text = s.mail("%s-%d@client.test" % (cls.replace("+", "-"), n))
                if code != 250:
                    raise smtplib.SMTPResponseException(code, text)
                code, text = s.rcpt("sink@soak.test")
                if code != 250:
                    raise smtplib.SMTPResponseException(code, text)
                in_data = True
                code, text = s.data(message(cls.replace("+", "-"), n,
                                            rnd.randint(1024, 30 * 1024)))
                in_data = False
                if code != 250:
                    raise smtplib.SMTPResponseException(code, text)
                self.tally.add(cls, accepted=1)
            code, text = s.docmd("QUIT")
            if code != 221:
                raise smtplib.SMTPResponseException(code, text)
            s.close()
            s = None
        except smtplib.SMTPAuthenticationError as e:
            self.tally.unexpected(cls, "AUTH %s: %s %r" % (auth, e.smtp_code, e.smtp_error))
        except smtplib.SMTPResponseException as e:
            self.tally.unexpected(cls, "%s %r" % (e.smtp_code, e.smtp_error))
        except (socket.timeout, TimeoutError):
            self.tally.add(cls, timeouts=1, uncertain=1 if in_data else 0)
        except (OSError, smtplib.SMTPException) as e:
            self.tally.add(cls, uncertain=1 if in_data else 0)
            # smtplib reports a reply that timed out as "Connection unexpectedly closed:
            # timed out" (and ssl a slow handshake as "... operation timed out"): a
            # starved CPU, not a wrong reply
            if "timed out" in str(e):
                self.tally.add(cls, timeouts=1)
            else:
                self.tally.unexpected(cls, "%s: %s" % (type(e).__name__, e))
        finally:
            if s is not None:
                try:
                    s.close()
                except OSError:
                    pass

    # hostile clients --------------------------------------------------------------------

    def hostile_worker(self):
        cases = [self.h_garbage, self.h_mid_data, self.h_early_talker, self.h_long_lines,
                 self.h_bare_lf, self.h_never_reads, self.h_tls_aborted, self.h_idle]
        rnd = random.Random(7)
        for i in range(1000000):
            if self.stop.is_set():
                break
            case = cases[i % len(cases)]
            name = case.__name__[2:].replace("_", "-")
            self.tally.add("hostile", sessions=1)
            try:
                problem = case(rnd)
            except (socket.timeout, TimeoutError):
                self.tally.add("hostile", timeouts=1)
                problem = None
            except OSError as e:
                problem = "%s: %s" % (type(e).__name__, e)
            if problem:
                self.tally.unexpected("hostile", "%s: %s" % (name, problem))
            if self.pause(rnd.uniform(0.05, 0.3)):
                break

    def _start_data(self, c):
        for line, want in ((b"EHLO hostile.test", 250), (b"MAIL FROM:<h@client.test>", 250),
                           (b"RCPT TO:<sink@soak.test>", 250), (b"DATA", 354)):
            code, text = c.cmd(line)
            if code != want:
                return "%s: %s %s" % (line.decode(), code, text)
        return None

    def _refused_after_dot(self, c, body, want):
        """Send body and the dot; the reply must be the refusal want (5xx)."""
        c.send(body + b"\r\n.\r\n")
        code, text = c.reply()
        if code == 250:
            self.tally.add("hostile", accepted=1)  # stored: counted for the store check
            return "accepted, expected %d: %s" % (want, text)
        if code != want:
            return "expected %d, got %s %s" % (want, code, text)
        self.tally.add("hostile", refused=1)
        code, text = c.cmd(b"QUIT")
        return None if code == 221 else "QUIT: %s %s" % (code, text)

    def h_garbage(self, rnd):
        c = Raw(self.srv.port)
        try:
            lines = []
            for _ in range(30):
                junk = bytes(rnd.randrange(1, 256) for _ in range(rnd.randint(1, 200)))
                junk = junk.replace(b"\r", b"").replace(b"\n", b"")
                lines.append(b"ZZ" + junk + b"\r\n")
            c.send(b"".join(lines))  # 30 lines: max-errors (20) closes the session first
            errors = 0
            for _ in range(30):
                try:
                    code, text = c.reply()
                except ConnectionResetError:
                    if errors < 15:  # the close after 421 may reset the connection
                        raise
                    self.tally.add("hostile", refused=1)
                    return None
                if code is None:
                    return "closed without 421: %s" % text
                errors += 1
                if code == 421:
                    self.tally.add("hostile", refused=1)
                    return None
                if code < 500:
                    return "garbage answered %s %s" % (code, text)
            return "no 421 after 30 garbage lines"
        finally:
            c.close()

    def h_mid_data(self, rnd):
        c = Raw(self.srv.port)
        try:
            problem = self._start_data(c)
            if problem:
                return problem
            c.send(message("middata", self.next_n(), rnd.randint(100, 60000)))
            self.tally.add("hostile", refused=1)  # nothing may be stored: the store check
            return None
        finally:
            c.close(reset=rnd.random() < 0.5)

    def h_early_talker(self, rnd):
        c = Raw(self.srv.port, read_greeting=False)
        try:
            c.send(b"EHLO early.test\r\n")  # before the greeting
            code, text = c.reply()
            if code != 220:
                return "greeting: %s %s" % (code, text)
            code, text = c.reply()
            if code != 250:
                return "EHLO: %s %s" % (code, text)
            for line, want in ((b"MAIL FROM:<early@client.test>", 250),
                               (b"RCPT TO:<sink@soak.test>", 250), (b"DATA", 354)):
                code, text = c.cmd(line)
                if code != want:
                    return "%s: %s %s" % (line.decode(), code, text)
            c.send(message("early", self.next_n(), 2000) + b".\r\n")
            code, text = c.reply()
            if code != 250:
                self.tally.add("hostile", uncertain=1 if code is None else 0)
                return "early talker's message: %s %s" % (code, text)
            self.tally.add("hostile", accepted=1)
            code, text = c.cmd(b"QUIT")
            return None if code == 221 else "QUIT: %s %s" % (code, text)
        finally:
            c.close()

    def h_long_lines(self, rnd):
        c = Raw(self.srv.port)
        try:
            code, text = c.cmd(b"NOOP " + b"a" * (100 * 1024))
            if code != 500:
                return "100 KiB command line: %s %s" % (code, text)
            self.tally.add("hostile", refused=1)
            problem = self._start_data(c)
            if problem:
                return problem
            body = b"Subject: long line\r\n\r\n" + b"x" * (20 * 1024)
            return self._refused_after_dot(c, body, 552)
        finally:
            c.close()

    def h_bare_lf(self, rnd):
        c = Raw(self.srv.port)
        try:
            problem = self._start_data(c)
            if problem:
                return problem
            if rnd.random() < 0.5:
                body = b"Subject: bare lf\nX: y\n\nline one\nline two"
            else:  # smuggling: <LF>.<LF> then what would be a second message
                body = (b"Subject: smuggle\r\n\r\nhello\n.\nMAIL FROM:<s@client.test>\r\n"
                        b"RCPT TO:<sink@soak.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx")
            return self._refused_after_dot(c, body, 550)
        finally:
            c.close()

    def h_never_reads(self, rnd):
        c = Raw(self.srv.port)
        try:
            c.sock.setblocking(False)
            junk = b"EHLO never.test\r\n" + b"NOOP\r\n" * 5000
            sent, deadline = 0, time.monotonic() + 3
            while time.monotonic() < deadline and sent < 4 << 20:
                try:
                    sent += c.sock.send(junk)
                except BlockingIOError:
                    time.sleep(0.05)
                except OSError:  # the server closed it (max-junk): fine
                    break
            self.tally.add("hostile", refused=1)
            return None
        finally:
            c.close(reset=True)

    def h_tls_aborted(self, rnd):
        kind = rnd.randrange(3)
        if kind == 0:  # implicit TLS port: half a ClientHello, then gone
            s = socket.create_connection((HOST, self.srv.smtps_port), timeout=SOCK_TIMEOUT)
            try:
                s.sendall(bytes.fromhex("160301020001" "0001fc0303") + os.urandom(20))
                time.sleep(0.05)
            finally:
                s.close()
            self.tally.add("hostile", refused=1)
            return None
        c = Raw(self.srv.port)
        try:
            code, text = c.cmd(b"EHLO tls.test")
            if code != 250:
                return "EHLO: %s %s" % (code, text)
            code, text = c.cmd(b"STARTTLS")
            if code != 220:
                return "STARTTLS: %s %s" % (code, text)
            if kind == 1:  # not TLS at all
                c.send(b"EHLO this is not a ClientHello\r\n" + os.urandom(64))
                try:
                    c.sock.recv(4096)  # an alert or the close
                except OSError:
                    pass
            self.tally.add("hostile", refused=1)
            return None
        finally:
            c.close(reset=kind == 2)

    def h_idle(self, rnd):
        c = Raw(self.srv.port)
        try:
            c.send(b"EH")
            self.pause(rnd.uniform(0.5, 2))
            self.tally.add("hostile", refused=1)
            return None
        finally:
            c.close()

    # HTTP ---------------------------------------------------------------------------------

    def http(self, conn, method, path, body=None):
        """(status, bytes); one retry on a fresh connection if keep-alive was dropped."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            try:
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                return r.status, r.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def http_worker(self):
        conn = http.client.HTTPConnection(HOST, self.srv.http_port, timeout=SOCK_TIMEOUT)
        cls = "http"
        try:
            for _ in range(1000000):
                if self.stop.is_set():
                    break
                try:
                    self.http_round(conn, cls)
                except (socket.timeout, TimeoutError):
                    self.tally.add(cls, timeouts=1)
                    conn.close()
                except (OSError, http.client.HTTPException, ValueError) as e:
                    self.tally.unexpected(cls, "%s: %s" % (type(e).__name__, e))
                    conn.close()
                if self.pause(0.2):
                    break
        finally:
            conn.close()

    def http_round(self, conn, cls):
        self.tally.add(cls, sessions=1)
        status, body = self.http(conn, "GET", "/api/v1/messages?limit=20")
        if status != 200:
            return self.tally.unexpected(cls, "list: %d %r" % (status, body[:200]))
        page = json.loads(body)
        self.tally.add(cls, accepted=1)
        for path in ("/api/v1/search?query=subject%3Asoak&limit=10",
                     "/api/v1/search?query=from%3Atls-auth%20-has%3Aattachment&limit=5",
                     "/api/v1/info", "/livez"):
            status, body = self.http(conn, "GET", path)
            if status != 200:
                return self.tally.unexpected(cls, "%s: %d %r" % (path, status, body[:200]))
            self.tally.add(cls, accepted=1)
        if not page.get("messages"):
            return
        m = random.choice(page["messages"])
        status, body = self.http(conn, "GET", "/api/v1/message/%s" % m["ID"])
        if status == 404:  # deleted meanwhile by the deleter
            return self.tally.add(cls, refused=1)
        if status != 200 or json.loads(body).get("ID") != m["ID"]:
            return self.tally.unexpected(cls, "message %s: %d %r" % (m["ID"], status,
                                                                     body[:200]))
        self.tally.add(cls, accepted=1)
        status, body = self.http(conn, "GET", "/api/v1/message/%s/raw" % m["ID"])
        if status == 404:
            return self.tally.add(cls, refused=1)
        if status != 200 or len(body) != m["Size"]:
            return self.tally.unexpected(cls, "raw %s: %d, %d octets, Size %s"
                                         % (m["ID"], status, len(body), m["Size"]))
        self.tally.add(cls, accepted=1)

    def delete_stored(self, conn, pages=200):
        """Delete what is stored, page by page, by ID; the number deleted."""
        n = 0
        for _ in range(pages):
            status, body = self.http(conn, "GET", "/api/v1/messages?limit=500")
            if status != 200:
                self.tally.unexpected("deleter", "list: %d %r" % (status, body[:200]))
                break
            ids = [m["ID"] for m in json.loads(body)["messages"]]
            if not ids:
                break
            status, body = self.http(conn, "DELETE", "/api/v1/messages",
                                     json.dumps({"IDs": ids}))
            if status != 200:
                self.tally.unexpected("deleter", "DELETE: %d %r" % (status, body[:200]))
                break
            n += len(ids)
            self.deleted += len(ids)
        return n

    def delete_worker(self, period):
        conn = http.client.HTTPConnection(HOST, self.srv.http_port, timeout=60)
        try:
            while not self.pause(period):
                try:
                    self.delete_stored(conn)
                    self.delete_cycles += 1
                except (socket.timeout, TimeoutError):
                    self.tally.add("deleter", timeouts=1)
                    conn.close()
                except (OSError, http.client.HTTPException, ValueError) as e:
                    self.tally.unexpected("deleter", "%s: %s" % (type(e).__name__, e))
                    conn.close()
        finally:
            conn.close()

    # priming and the final check ------------------------------------------------------------

    def prime(self):
        """Every path once, so lazily made threads and files exist before the baseline;
        what it sends is counted like the rest."""
        rnd = random.Random(1)
        self.tls_session("tls", False, None, False, 1, rnd)
        self.tls_session("tls", True, None, True, 1, rnd)
        self.tls_session("tls+auth", False, "PLAIN", False, 1, rnd)
        self.tls_session("tls+auth", True, "CRAM-MD5", False, 1, rnd)
        for case in (self.h_early_talker, self.h_bare_lf, self.h_tls_aborted):
            self.tally.add("hostile", sessions=1)
            problem = case(rnd)
            if problem:
                self.tally.unexpected("hostile", problem)
        r = subprocess.run([self.args.smtp_load, "--port", str(self.srv.port), "--sessions",
                            "2", "--messages", "20", "--json"], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=LOAD_TIMEOUT + 60)
        try:
            self.tally.add("smtp-load", sessions=1,
                           accepted=int(json.loads(r.stdout)["delivered"]))
        except (ValueError, KeyError):
            self.tally.unexpected("smtp-load", "priming run: %r %r" % (r.stdout, r.stderr))
        conn = http.client.HTTPConnection(HOST, self.srv.http_port, timeout=60)
        try:
            self.http_round(conn, "http")
            self.delete_stored(conn)
        finally:
            conn.close()

    def final_messages(self):
        """One plain and one STARTTLS message after the load: the server still serves."""
        rnd = random.Random(2)
        before = self.tally.total("accepted")
        self.tls_session("tls", False, None, False, 1, rnd)
        c = Raw(self.srv.port)
        try:
            problem = self._start_data(c)
            if not problem:
                c.send(message("final", self.next_n(), 500) + b".\r\n")
                code, text = c.reply()
                if code == 250:
                    self.tally.add("final", sessions=1, accepted=1)
                else:
                    problem = "%s %s" % (code, text)
            if problem:
                self.tally.unexpected("final", problem)
        finally:
            c.close()
        return self.tally.total("accepted") - before == 2

    def api_count(self):
        conn = http.client.HTTPConnection(HOST, self.srv.http_port, timeout=60)
        try:
            status, body = self.http(conn, "GET", "/api/v1/messages?limit=1")
            if status != 200:
                return None, None
            doc = json.loads(body)
            return doc["total"], doc["messages_count"]
        finally:
            conn.close()


# -- the run --------------------------------------------------------------------------------


def find_binary(given, name):
    if given:
        if not os.access(given, os.X_OK):
            die("%s is not an executable file" % given)
        return given
    for d in ("build-release", "build"):
        p = os.path.join(REPO, d, name)
        if os.access(p, os.X_OK):
            return p
    die("no %s in build-release/ or build/: pass --%s" % (name, name))


def parse_args(argv):
    ap = argparse.ArgumentParser(description="mailsink soak test (see the header comment)")
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--mailsink")
    ap.add_argument("--smtp-load")
    ap.add_argument("--json", metavar="FILE", help="write the samples and counts here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--interval", type=float, help="seconds between samples")
    a = ap.parse_args(argv)
    if not 1 <= a.minutes <= 24 * 60:  # under a minute too little is left after warm-up
        ap.error("--minutes must be between 1 and 1440")
    a.mailsink = find_binary(a.mailsink, "mailsink")
    a.smtp_load = find_binary(a.smtp_load, "smtp-load")
    a.load_secs = a.minutes * 60
    a.warmup = max(20.0, a.load_secs / 4)  # the least: the first quarter, at least 20 s
    if a.interval is None:
        a.interval = 2.0 if a.minutes <= 5 else 5.0
    return a


class Abort(Exception):
    """Stop the run early; the reason is already in failures."""


def fmt_min(t):
    return "%d:%02d" % (int(t) // 60, int(t) % 60)


def main(argv):
    args = parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="mailsink-soak-")
    try:
        srv = Server(args.mailsink, tmp)
    except BaseException:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    log("mailsink pid %d: smtp %d, smtps %d, http %d; %s minutes; temp %s"
        % (srv.pid, srv.port, srv.smtps_port, srv.http_port, args.minutes, tmp))
    soak = Soak(args, srv, tmp)
    failures = []
    samples = []
    t_start = time.monotonic()

    def sample(phase):
        fig = proc_figures(srv.pid)
        if fig is None:
            return None
        s = {"t": round(time.monotonic() - t_start, 1), "phase": phase,
             "rss_kib": fig[0], "fds": fig[1], "threads": fig[2], "db_kib": db_kib(srv.db)}
        samples.append(s)
        return s

    total = count = None
    try:
        soak.prime()
        time.sleep(1)
        base = sample("baseline")
        if base is None:
            failures.append("mailsink died while priming")
            raise Abort()
        log("baseline: RSS %.1f MiB, %d fds, %d threads"
            % (base["rss_kib"] / 1024, base["fds"], base["threads"]))
        load_secs, warmup = args.load_secs, args.warmup
        args.warmup = None  # set when warm-up ends
        workers = [threading.Thread(target=soak.load_worker, name="smtp-load"),
                   threading.Thread(target=soak.tls_worker, args=(11,), name="tls-1"),
                   threading.Thread(target=soak.tls_worker, args=(12,), name="tls-2"),
                   threading.Thread(target=soak.hostile_worker, name="hostile"),
                   threading.Thread(target=soak.http_worker, name="http"),
                   threading.Thread(target=soak.delete_worker,
                                    args=(10 if args.minutes <= 5 else 15,), name="deleter")]
        for w in workers:
            w.daemon = True
            w.start()
        t_load = time.monotonic()
        next_report = t_load + 60
        for _ in range(int(load_secs / args.interval) + 10):
            now = time.monotonic()
            if now - t_load >= load_secs:
                break
            if (args.warmup is None and now - t_load >= warmup
                    and (soak.cycle_done.is_set() or now - t_load >= load_secs / 2)):
                args.warmup = now - t_load  # from here on the samples are judged
            s = sample("warm-up" if args.warmup is None else "load")
            if s is None:
                failures.append("mailsink died during the load (exit %s)" % srv.proc.poll())
                break
            s["t_load"] = round(now - t_load, 1)
            if now >= next_report:
                next_report += 60
                log("%s: RSS %.1f MiB, %d fds, %d threads; %d accepted, %d deleted"
                    % (fmt_min(now - t_load), s["rss_kib"] / 1024, s["fds"], s["threads"],
                       soak.messages_accepted(), soak.deleted))
            time.sleep(max(0.0, args.interval - (time.monotonic() - now)))
        t_end_load = time.monotonic()
        soak.stop.set()
        # the clients end by themselves (each step is bounded); keep sampling meanwhile
        join_deadline = time.monotonic() + LOAD_TIMEOUT + 60
        while any(w.is_alive() for w in workers) and time.monotonic() < join_deadline:
            sample("draining")
            for w in workers:
                w.join(timeout=args.interval / len(workers))
        stuck = [w.name for w in workers if w.is_alive()]
        if stuck:
            failures.append("clients did not end: %s" % ", ".join(stuck))
        end_load = sample("end of load")
        # cool-down: the fds must come back to the baseline once every client has closed
        cool = 30 if args.minutes <= 5 else 60
        cool_deadline = time.monotonic() + cool
        last, settled = end_load, 0
        while time.monotonic() < cool_deadline and last is not None and settled < 5:
            time.sleep(min(1.0, args.interval))
            last = sample("cool-down")
            settled = settled + 1 if last and last["fds"] <= base["fds"] else 0
        if last is None or not srv.alive():
            if not any("died" in f for f in failures):
                failures.append("mailsink died after the load (exit %s)" % srv.proc.poll())
            raise Abort()
        if not soak.final_messages():
            failures.append("the final plain and TLS messages were not both accepted")
        total, count = soak.api_count()
        if total is None:
            failures.append("GET /api/v1/messages failed after the load")
        sample("final")
        verdict_figures(samples, base, args.warmup or load_secs, t_end_load - t_load, last,
                        failures)
    except Abort:
        pass
    except Exception as e:  # a bug here, or mailsink gone mid-step: say so, still clean up
        traceback.print_exc()
        failures.append("the soak itself stopped: %s: %s" % (type(e).__name__, e))
    finally:
        soak.stop.set()

    died = any("died" in f for f in failures)
    rc_srv = srv.stop()
    log_text = srv.log_text()
    if rc_srv != 0 and not died:
        failures.append("mailsink exit status %s on SIGTERM (None: had to be killed)" % rc_srv)
    if "Sanitizer" in log_text or "runtime error:" in log_text:
        failures.append("sanitizer report in mailsink's log")

    db_count = integrity = None
    if os.path.exists(srv.db):
        try:
            conn = sqlite3.connect("file:%s?mode=ro" % srv.db, uri=True, timeout=30)
            db_count = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
            integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
            conn.close()
        except sqlite3.Error as e:
            failures.append("database: %s" % e)
    accepted = soak.messages_accepted()
    uncertain = soak.tally.total("uncertain")
    if total is not None and (db_count != total or count != total):
        failures.append("API total %s, list count %s, database %s" % (total, count, db_count))
    stored = total if total is not None else db_count  # the database's after a crash
    if stored is not None and not accepted <= soak.deleted + stored <= accepted + uncertain:
        failures.append("store check: accepted %d, deleted %d + stored %d = %d, uncertain %d"
                        % (accepted, soak.deleted, stored, soak.deleted + stored, uncertain))
    if integrity not in ("ok", None):
        failures.append("database quick_check: %s" % integrity)
    unexpected = soak.tally.total("unexpected")
    if unexpected:
        failures.append("%d unexpected replies or errors (first: %s)"
                        % (unexpected, "; ".join(soak.tally.notes[:5])))

    report(args, srv, soak, samples, total, db_count, accepted, uncertain, failures)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"minutes": args.minutes, "mailsink": args.mailsink,
                       "samples": samples, "clients": soak.tally.by_class,
                       "notes": soak.tally.notes, "deleted": soak.deleted,
                       "delete_cycles": soak.delete_cycles, "stored_api": total,
                       "stored_db": db_count, "accepted": accepted, "uncertain": uncertain,
                       "exit_status": rc_srv, "failures": failures}, f, indent=1)
    if failures:
        print("mailsink's log (last 3000 characters):\n%s" % log_text[-3000:])
    if args.keep or failures:
        print("soak: temporary directory kept: %s" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failures else 0


def verdict_figures(samples, base, warmup, load_secs, last, failures):
    """Append to failures what is not flat."""
    post = [s for s in samples if s["phase"] == "load"]
    if len(post) < 6:
        failures.append("too few samples after warm-up (%d)" % len(post))
        return
    first, last3 = thirds(post, warmup, load_secs)
    early = [s for s in samples if s["phase"] == "warm-up"] + first
    # the level (median) and the peaks: the peaks come and go with the 100 KiB runs, so
    # the last third's are compared with every peak seen in warm-up and the first third
    for what, a, b, slack in (("median", median_rss(first), median_rss(last3),
                               RSS_LEVEL_SLACK_KIB),
                              ("max", max(s["rss_kib"] for s in early),
                               max(s["rss_kib"] for s in last3), RSS_SLACK_KIB)):
        limit = a * RSS_FACTOR + slack
        if b > limit:
            failures.append("RSS grew: last third's %s %.1f MiB > %.1f MiB (earlier %s "
                            "%.1f MiB * %.2f + %d MiB)" % (what, b / 1024, limit / 1024, what,
                                                           a / 1024, RSS_FACTOR, slack // 1024))
    if last["fds"] > base["fds"]:
        failures.append("fds: %d after the cool-down, %d at the baseline"
                        % (last["fds"], base["fds"]))
    most = max(s["threads"] for s in samples)
    if most > base["threads"] or last["threads"] != base["threads"]:
        failures.append("threads: baseline %d, max %d, at the end %d"
                        % (base["threads"], most, last["threads"]))


def thirds(post, warmup, load_secs):
    """The first and the last third (by time) of the samples after warm-up."""
    third = (load_secs - warmup) / 3
    first = [s for s in post if s["t_load"] < warmup + third] or post[:2]
    last3 = [s for s in post if s["t_load"] >= warmup + 2 * third] or post[-2:]
    return first, last3


def median_rss(sel):
    v = sorted(s["rss_kib"] for s in sel)
    return v[len(v) // 2]


def report(args, srv, soak, samples, total, db_count, accepted, uncertain, failures):
    def row(label, s, how=""):
        if not s:
            print("  %-22s %8s %10s %6s %8s %8s" % (label, "-", "-", "-", "-", "-"))
            return
        print("  %-22s %8s %10.1f %6d %8d %8.1f  %s"
              % (label, fmt_min(s["t"]), s["rss_kib"] / 1024, s["fds"], s["threads"],
                 s["db_kib"] / 1024, how))

    def max_of(sel):
        if not sel:
            return None
        m = dict(max(sel, key=lambda s: s["rss_kib"]))
        for k in ("fds", "threads", "db_kib"):
            m[k] = max(s[k] for s in sel)
        return m

    print("\nsoak: %.1f minutes of mixed load against %s (pid %d), a sample every %.0f s"
          % (args.minutes, args.mailsink, srv.pid, args.interval))
    print("  %-22s %8s %10s %6s %8s %8s" % ("", "time", "RSS MiB", "fds", "threads",
                                            "DB MiB"))
    by = lambda p: [s for s in samples if s["phase"] == p]  # noqa: E731
    base = by("baseline")
    warm = by("warm-up")
    load = by("load")
    row("baseline", base[0] if base else None)
    row("end of warm-up", warm[-1] if warm else None)
    if load:
        first, last3 = thirds(load, args.warmup or args.load_secs, args.load_secs)
        row("load, first third", max_of(first), "(maxima)")
        row("load, last third", max_of(last3), "(maxima)")
    row("end of load", (by("end of load") or [None])[-1])
    row("after cool-down", (by("cool-down") or by("end of load") or [None])[-1])
    if samples:
        print("  %-22s %8s %10.1f %6d %8d %8.1f"
              % ("max over the run", "", max(s["rss_kib"] for s in samples) / 1024,
                 max(s["fds"] for s in samples), max(s["threads"] for s in samples),
                 max(s["db_kib"] for s in samples) / 1024))
    print("\n  %-10s %9s %9s %9s %10s %8s %9s" % ("clients", "sessions", "accepted",
                                                 "refused", "unexpected", "timeouts",
                                                 "uncertain"))
    for cls in ("smtp-load", "tls", "tls+auth", "hostile", "final", "http", "deleter"):
        r = soak.tally.by_class.get(cls)
        if r:
            print("  %-10s %9d %9d %9d %10d %8d %9d" % (cls, r["sessions"], r["accepted"],
                                                        r["refused"], r["unexpected"],
                                                        r["timeouts"], r["uncertain"]))
    print("  (http: sessions = rounds, accepted = 200 answers, refused = 404 for a message "
          "deleted meanwhile)")
    if soak.load_durations:
        print("  smtp-load: %d runs, %.1f s on average" % (
            soak.load_runs, sum(soak.load_durations) / len(soak.load_durations)))
    print("\n  store: %d messages accepted (250), %d uncertain; %d deleted in %d cycles + "
          "%s stored (API) = %s; database holds %s"
          % (accepted, uncertain, soak.deleted, soak.delete_cycles, total,
             soak.deleted + total if total is not None else "?", db_count))
    for n in soak.tally.notes[:10]:
        print("  unexpected: %s" % n)
    if failures:
        print("\nsoak: FAIL")
        for f in failures:
            print("  - %s" % f)
    else:
        print("\nsoak: FLAT - RSS, fds and threads stayed flat; the store holds what was "
              "accepted; mailsink exited 0")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
