"""Data-driven SMTP protocol cases (tests/cases/*.case) run over real sockets.

Each case starts case_server (path in $SMTPD_CASE_SERVER) with the case's options and
hooks, talks to it on 127.0.0.1, then closes the server's stdin, waits for it to exit and
checks the replies, the hook events it recorded, its exit status and its stderr (so
sanitizer reports fail the case). README in this directory describes the file format.

Standard library and pytest only (and the openssl program, to make a throwaway test
certificate for the TLS cases). Every read has a timeout and every loop is bounded.
"""

import atexit
import base64
import hashlib
import hmac
import os
import pathlib
import re
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import warnings

import pytest

HERE = pathlib.Path(__file__).resolve().parent
CASES = sorted(HERE.glob("*.case"))
MIN_CASES = 100
# seconds for one expected reply, the start of the server, its exit
TIMEOUT = float(os.environ.get("SMTPD_CASE_TIMEOUT", "5"))
EXIT_TIMEOUT = float(os.environ.get("SMTPD_CASE_EXIT_TIMEOUT", "20"))
# how long the runner waits for unexpected extra bytes at the end of a case
TAIL_WAIT = 0.05
MAX_REPLY_LINE = 512  # RFC 5321 4.5.3.1.5, including the code and CRLF
ALARMING = re.compile(
    r"Sanitizer|runtime error|Assertion|assertion|Segmentation|double free|"
    r"corrupted|stack smashing|heap-use-after|leak",
)

SETUP = {"option", "hook", "log", "allow-chunks-differ", "start-fails", "allow-event",
         "tls", "listen-tls", "auth"}
SCRIPT = {"conn", "send", "sendraw", "sendrep", "expect", "expect-multi", "expect-close",
          "expect-nothing", "sleep", "close", "stop-server",
          "expect-exact", "reply-has", "reply-not", "starttls", "starttls-fail", "conn-tls",
          "conn-tls-fail", "conn-tlsport", "expect-tls", "send-cram", "expect-close-any"}
TLS_SPECS = {"tls1.0", "tls1.1", "tls1.2", "tls1.3", "client-cert"}
MSG_CHECKS = {"body", "bodylen", "body-has", "body-not", "trace-has", "trace-not",
              "trace-line", "findings", "finding", "no-finding", "deliver"}
CHECKS = {"event", "no-event", "event-count", "messages", "session-finding",
          "no-session-finding"}


class CaseError(Exception):
    """The case file itself is wrong."""


# ---------------------------------------------------------------------------------------
# Case files
# ---------------------------------------------------------------------------------------

def unescape(text):
    """C-style escapes to bytes: \\r \\n \\t \\0 \\\\ \\xNN; other text as UTF-8."""
    out = bytearray()
    i = 0
    raw = text.encode("utf-8")
    while i < len(raw):
        ch = raw[i]
        if ch != 0x5C:  # backslash
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(raw):
            raise CaseError("dangling backslash in %r" % text)
        nxt = chr(raw[i + 1])
        simple = {"r": 13, "n": 10, "t": 9, "0": 0, "\\": 0x5C, "s": 0x20}
        if nxt in simple:
            out.append(simple[nxt])
            i += 2
        elif nxt == "x" and i + 3 < len(raw) and re.fullmatch(
                rb"[0-9a-fA-F]{2}", raw[i + 2:i + 4]):
            out.append(int(raw[i + 2:i + 4], 16))
            i += 4
        else:
            raise CaseError("bad escape \\%s in %r" % (nxt, text))
    return bytes(out)


def glob_re(pattern):
    """A pattern where '*' is any run of characters and everything else is literal."""
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.S)


def glob_match(pattern, text):
    return glob_re(pattern).fullmatch(text) is not None


MSG_RE = re.compile(r"^([a-z-]+)(?:#(\d+))?$")


class Case:
    def __init__(self, path):
        self.path = path
        self.name = path.name
        self.options = []
        self.hooks = []
        self.log = False
        self.allow_chunks_differ = False
        self.start_fails = None
        self.allowed_events = []
        self.tls = False         # tls-cert/tls-key options with the test certificate
        self.listen_tls = False  # an implicit TLS listener too
        self.auth = []           # --auth USER:PASS
        self.script = []   # (lineno, directive, arg)
        self.checks = []   # (lineno, directive, index, arg)
        self.parse()

    def parse(self):
        lines = self.path.read_text(encoding="utf-8").split("\n")
        m = re.match(r"^# (\d{4}) \S", lines[0]) if lines else None
        if not m:
            raise CaseError("first line must be '# NNNN title'")
        if not self.name.startswith(m.group(1)):
            raise CaseError("file name does not start with the case number %s" % m.group(1))
        for lineno, line in enumerate(lines, 1):
            line = line.rstrip()
            if not line or line.startswith("#"):
                continue
            word, _, arg = line.partition(" ")
            mm = MSG_RE.match(word)
            if not mm:
                raise CaseError("line %d: bad directive %r" % (lineno, word))
            word, idx = mm.group(1), mm.group(2)
            if idx is not None and word not in MSG_CHECKS and word not in (
                    "session-finding", "no-session-finding"):
                raise CaseError("line %d: %s takes no #N" % (lineno, word))
            if word == "option":
                if "=" not in arg:
                    raise CaseError("line %d: option NAME=VALUE" % lineno)
                self.options.append(arg)
            elif word == "hook":
                self.hooks.append(arg)
            elif word == "log":
                self.log = True
            elif word == "allow-chunks-differ":
                self.allow_chunks_differ = True
            elif word == "start-fails":
                self.start_fails = arg
            elif word == "allow-event":
                self.allowed_events.append(arg)
            elif word == "tls":
                self.tls = True
            elif word == "listen-tls":
                self.listen_tls = True
            elif word == "auth":
                if ":" not in arg:
                    raise CaseError("line %d: auth USER:PASS" % lineno)
                self.auth.append(arg)
            elif word in SCRIPT:
                if word in ("sendraw", "sendrep"):
                    unescape(arg.split(" ", 1)[-1])  # fail early on bad escapes
                if word == "expect-exact":
                    unescape(arg)
                spec = arg.split()
                if word in ("conn-tls", "conn-tls-fail", "conn-tlsport"):
                    if not spec:
                        raise CaseError("line %d: %s NAME" % (lineno, word))
                    spec = spec[1:]
                if word in ("starttls", "starttls-fail", "conn-tls", "conn-tls-fail"):
                    bad = [w for w in spec if w not in TLS_SPECS]
                    if bad:
                        raise CaseError("line %d: unknown TLS spec %s" % (lineno, bad))
                if word == "send-cram" and len(spec) != 2:
                    raise CaseError("line %d: send-cram USER PASS" % lineno)
                self.script.append((lineno, word, arg))
            elif word in MSG_CHECKS or word in CHECKS:
                self.checks.append((lineno, word, int(idx) if idx else 1, arg))
            else:
                raise CaseError("line %d: unknown directive %r" % (lineno, word))
        if self.start_fails is None and not self.script:
            raise CaseError("no client script")
        tls_words = {"conn-tls", "conn-tls-fail", "conn-tlsport"}
        if any(w in tls_words for _, w, _ in self.script) and not self.listen_tls:
            raise CaseError("conn-tls/conn-tls-fail/conn-tlsport need listen-tls")



# ---------------------------------------------------------------------------------------
# TLS: a throwaway certificate and the client side
# ---------------------------------------------------------------------------------------

_TLS_DIR = None


def tls_files():
    """{"cert", "key", "client-cert", "client-key"}: a P-256 certificate for mx.example
    and one for client.example, made once per run in a temporary directory (never kept)."""
    global _TLS_DIR
    if _TLS_DIR is None:
        openssl = shutil.which("openssl")
        if not openssl:
            pytest.fail("the openssl program is needed to make the test certificate")
        d = tempfile.mkdtemp(prefix="smtpd-case-tls-")
        atexit.register(shutil.rmtree, d, True)
        for name, cn in (("server", "mx.example"), ("client", "client.example")):
            r = subprocess.run(
                [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=" + cn, "-days", "2",
                 "-keyout", os.path.join(d, name + ".key"),
                 "-out", os.path.join(d, name + ".crt")],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                timeout=60)
            if r.returncode != 0:
                pytest.fail("openssl req failed: %s" % r.stdout.decode("utf-8", "replace"))
        _TLS_DIR = d
    return {"cert": os.path.join(_TLS_DIR, "server.crt"),
            "key": os.path.join(_TLS_DIR, "server.key"),
            "client-cert": os.path.join(_TLS_DIR, "client.crt"),
            "client-key": os.path.join(_TLS_DIR, "client.key")}


def client_context(spec):
    """An SSL context for the client: no verification, TLS 1.2 or later unless spec pins
    a version (tls1.0 and tls1.1 lower the client's security level so that only the
    server can refuse), client-cert sends the client.example certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    versions = {"tls1.0": ssl.TLSVersion.TLSv1, "tls1.1": ssl.TLSVersion.TLSv1_1,
                "tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        for w in spec:
            if w in versions:
                if w in ("tls1.0", "tls1.1"):
                    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                    ctx.minimum_version = versions[w]
                    ctx.maximum_version = versions[w]
                else:
                    ctx.maximum_version = versions[w]
                    ctx.minimum_version = versions[w]
            elif w == "client-cert":
                f = tls_files()
                ctx.load_cert_chain(f["client-cert"], f["client-key"])
    return ctx

# ---------------------------------------------------------------------------------------
# Talking to the server
# ---------------------------------------------------------------------------------------

class Conn:
    def __init__(self, name, port, transcript):
        self.name = name
        self.buf = b""
        self.eof = False
        self.transcript = transcript
        self.multi_code = None  # code of an unfinished multi-line reply
        self.closed = False  # closed by the client (directive close)
        self.reply_lines = []  # lines of the reply being read
        self.last_reply = []   # lines of the last complete reply
        self.tls = None        # (version, cipher) once TLS is on
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)

    def note(self, who, data):
        self.transcript.append("%s %s: %r" % (self.name, who, data))

    def send(self, data):
        self.note("C", data)
        self.sock.settimeout(TIMEOUT)
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Read what arrives before the deadline; False on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if not (self.tls and self.sock.pending()):
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                return False
        try:
            if self.tls:
                # readable may be only TLS records without application data (session
                # tickets): recv then waits, but not past the deadline
                self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            data = self.sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, ssl.SSLEOFError,
                ssl.SSLZeroReturnError, BrokenPipeError):
            data = b""
        except socket.timeout:
            return False
        except ssl.SSLError as e:
            raise AssertionError("%s: TLS error while reading: %s" % (self.name, e))
        if not data:
            self.eof = True
            self.note("S", "<closed>")
            return True
        self.buf += data
        return True

    def readline(self):
        deadline = time.monotonic() + TIMEOUT
        for _ in range(100000):
            pos = self.buf.find(b"\r\n")
            if pos >= 0:
                line, self.buf = self.buf[:pos + 2], self.buf[pos + 2:]
                self.note("S", line)
                self.check_reply_line(line)
                text = line[:-2].decode("utf-8", "backslashreplace")
                self.reply_lines.append(text)
                if self.multi_code is None:
                    self.last_reply, self.reply_lines = self.reply_lines, []
                return text
            if self.eof:
                raise AssertionError("%s: connection closed; unread %r" % (self.name, self.buf))
            if not self._fill(deadline):
                raise AssertionError("%s: no reply line within %.1fs; unread %r"
                                     % (self.name, TIMEOUT, self.buf))
        raise AssertionError("readline loop bound")

    def check_reply_line(self, line):
        """RFC 5321 4.2: code (2xx..5xx), '-' or ' ', same code on every line, <= 512."""
        assert len(line) <= MAX_REPLY_LINE, "reply line over 512 octets: %r" % line[:80]
        m = re.match(rb"^([2-5][0-9][0-9])([ -]|\r\n$)", line)
        assert m, "malformed reply line %r" % line
        body = line[:-2]
        assert b"\r" not in body and b"\n" not in body, "bare CR/LF in reply %r" % line
        code = m.group(1)
        if self.multi_code is not None:
            assert code == self.multi_code, "multi-line reply changes code: %r" % line
        self.multi_code = code if m.group(2) == b"-" else None

    def expect_close(self):
        deadline = time.monotonic() + TIMEOUT
        for _ in range(100000):
            if self.buf:
                raise AssertionError("%s: expected close, got %r" % (self.name, self.buf))
            if self.eof:
                return
            if not self._fill(deadline):
                raise AssertionError("%s: not closed within %.1fs" % (self.name, TIMEOUT))
        raise AssertionError("expect_close loop bound")

    def expect_close_any(self):
        """Whatever comes (a TLS alert, say), then the server closes."""
        deadline = time.monotonic() + TIMEOUT
        for _ in range(100000):
            self.buf = b""
            if self.eof:
                return
            if not self._fill(deadline):
                raise AssertionError("%s: not closed within %.1fs" % (self.name, TIMEOUT))
        raise AssertionError("expect_close_any loop bound")

    def expect_nothing(self, seconds):
        deadline = time.monotonic() + seconds
        while not self.eof and self._fill(deadline):
            pass
        if self.buf or self.eof:
            raise AssertionError("%s: expected nothing for %.2fs, got %r%s"
                                 % (self.name, seconds, self.buf,
                                    " and close" if self.eof else ""))

    def starttls(self, spec, must_fail=False):
        """The TLS handshake on this connection (after the 220 to STARTTLS, or at once on
        the implicit TLS port). Nothing may be waiting from the server before it."""
        assert self.tls is None, "%s: TLS is already on" % self.name
        assert not self.buf, "%s: bytes before the TLS handshake: %r" % (self.name, self.buf)
        r, _, _ = select.select([self.sock], [], [], 0)
        if r:
            try:
                early = self.sock.recv(65536, socket.MSG_PEEK)
            except OSError:
                early = b""
            assert not early, "%s: bytes before the TLS handshake: %r" % (self.name, early)
        ctx = client_context(spec)
        self.sock.settimeout(TIMEOUT)
        self.note("C", "<TLS handshake %s>" % " ".join(spec))
        try:
            tsock = ctx.wrap_socket(self.sock, server_hostname="mx.example")
        except (ssl.SSLError, OSError) as e:
            if must_fail:
                self.note("S", "<handshake failed: %s>" % e)
                self.closed = True
                return
            raise AssertionError("%s: TLS handshake failed: %s" % (self.name, e))
        if must_fail:
            v = tsock.version()
            tsock.close()
            self.closed = True
            raise AssertionError("%s: TLS handshake succeeded (%s), must fail" % (self.name, v))
        self.sock = tsock
        self.tls = (tsock.version(), tsock.cipher()[0])
        self.note("S", "<TLS %s %s>" % self.tls)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def start_server(case, events_path, stderr_file):
    server = os.environ.get("SMTPD_CASE_SERVER")
    if not server:
        pytest.skip("SMTPD_CASE_SERVER is not set (ctest sets it)")
    argv = [server, "--events", events_path]
    subst = {}
    if case.tls or any("$" in o for o in case.options):
        f = tls_files()
        subst = {"$CLIENTCERT": f["client-cert"], "$CLIENTKEY": f["client-key"],
                 "$CERT": f["cert"], "$KEY": f["key"]}
    if case.tls:
        argv += ["--opt", "tls-cert=" + subst["$CERT"], "--opt", "tls-key=" + subst["$KEY"]]
    for opt in case.options:
        for k, v in subst.items():
            opt = opt.replace(k, v)
        argv += ["--opt", opt]
    for cred in case.auth:
        argv += ["--auth", cred]
    if case.listen_tls:
        argv.append("--listen-tls")
    for hook in case.hooks:
        argv += ["--hook", hook]
    if case.log:
        argv.append("--log")
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr_file)
    return proc


def read_port(proc):
    deadline = time.monotonic() + TIMEOUT * 2
    out = b""
    fd = proc.stdout.fileno()
    while b"\n" not in out:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        r, _, _ = select.select([fd], [], [], remaining)
        if not r:
            return None
        chunk = os.read(fd, 256)
        if not chunk:
            return None
        out += chunk
    m = re.match(rb"PORT (\d+)(?: TLSPORT (\d+))?\n", out)
    if not m:
        return None
    return (int(m.group(1)), int(m.group(2)) if m.group(2) else None)


# ---------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------

class Message:
    def __init__(self, line):
        self.line = line
        self.fields = dict(re.findall(r"(\S+?)=(\S*)", line[len("deliver "):]))
        self.trace = b""
        self.body = b""
        self.chunks = None
        self.facts = None  # {"tls": .., "cipher": .., "peer": .., "auth": ..}

    @property
    def findings(self):
        f = self.fields.get("findings", "-")
        return set() if f in ("-", "") else set(f.split(","))

    def trace_lines(self):
        text = self.trace.decode("utf-8", "backslashreplace")
        text = re.sub(r"\r\n(?=[ \t])", "", text)  # unfold
        # runs of spaces and tabs read as one space, so GLOBs need not know the folding
        return [re.sub(r"[ \t]+", " ", ln) for ln in text.split("\r\n") if ln]


def parse_events(lines):
    msgs, closes = [], []
    prev = None
    for line in lines:
        word, _, arg = line.partition(" ")
        if word == "facts" and prev == "chunks" and msgs and msgs[-1].facts is None:
            msgs[-1].facts = dict(re.findall(r"(\w+)=(\S*)", arg))
        prev = word
        if word == "deliver":
            msgs.append(Message(line))
        elif word in ("trace", "body") and msgs:
            setattr(msgs[-1], word, base64.b64decode(arg))
        elif word == "chunks" and msgs:
            msgs[-1].chunks = arg
        elif word == "close":
            f = arg.partition("=")[2]
            closes.append(set() if f in ("-", "") else set(f.split(",")))
    return msgs, closes


def check_events(case, lines, replies_ids, client=None):
    """client: what run_script saw ({"tls": set of (version, cipher), "secrets": [...],
    "challenges": [...]})."""
    msgs, closes = parse_events(lines)
    problems = []
    client = client or {"tls": set(), "secrets": [], "challenges": []}

    def need(cond, what):
        if not cond:
            problems.append(what)

    # automatic checks, true for every case
    connects = sum(1 for ln in lines if ln.startswith("connect "))
    need(connects == len(closes),
         "%d connect events but %d close events" % (connects, len(closes)))
    mentioned = " ".join(a for _, d, _, a in case.checks)
    for bad in ("set-reply-error", "complete-error"):
        if bad not in mentioned:
            for ln in lines:
                if ln.startswith(bad) and not any(glob_match(p, ln)
                                                  for p in case.allowed_events):
                    problems.append("unexpected event: %s" % ln)
    # TLS and AUTH: the server's TLS facts are what the client negotiated; no secret of
    # the AUTH exchange reaches the transcript; CRAM-MD5 challenges are never reused
    for ln in lines:
        if ln.startswith("facts-error"):
            problems.append("session facts disagree: %s" % ln)
        m = re.match(r"^tls version=(\S+) cipher=(\S+) ", ln)
        if m and (m.group(1), m.group(2)) not in client["tls"]:
            problems.append("on_tls says %s %s; the client negotiated %s"
                            % (m.group(1), m.group(2), sorted(client["tls"]) or "nothing"))
    logged = [ln for ln in lines if ln.startswith(("log-in ", "log-out ", "log-info "))]
    secrets = set(client["secrets"]) | {c.partition(":")[2] for c in case.auth}
    for secret in sorted(secrets):
        if len(secret) < 4:
            continue
        for ln in logged:
            if secret in ln:
                problems.append("secret %r in the transcript: %s" % (secret, ln))
    ch = client["challenges"]
    need(len(set(ch)) == len(ch), "CRAM-MD5 challenge repeated: %s" % ch)
    all_ids = [m.fields.get("id") for m in msgs]
    need(len(set(all_ids)) == len(all_ids), "message ids repeat: %s" % all_ids)
    normalize = any(o.replace(" ", "") == "bare-lf=normalize" for o in case.options)
    for i, m in enumerate(msgs, 1):
        f = m.fields
        try:
            body, size, tr = int(f["bodylen"]), int(f["size"]), int(f["tracelen"])
        except (KeyError, ValueError):
            problems.append("message %d: bad deliver line %r" % (i, m.line))
            continue
        need(size == tr + body, "message %d: size %d != tracelen %d + bodylen %d"
             % (i, size, tr, body))
        need(len(m.body) == body, "message %d: body is %d octets, bodylen says %d"
             % (i, len(m.body), body))
        need(tr > 0 and m.trace.startswith(b"Return-Path: <"),
             "message %d: trace does not start with Return-Path: %r" % (i, m.trace[:60]))
        need(b"\r\nReceived: " in m.trace, "message %d: no Received: in trace %r"
             % (i, m.trace))
        need(m.trace.endswith(b"\r\n"), "message %d: trace does not end in CRLF" % i)
        need(not re.search(rb"(?<!\r)\n|\r(?!\n)|\x00", m.trace),
             "message %d: bare CR/LF/NUL in trace %r" % (i, m.trace))
        if not (normalize or case.allow_chunks_differ):
            need(m.chunks == "same", "message %d: on_data_chunk pieces %s the body"
                 % (i, m.chunks))
        need(m.facts is not None, "message %d: no facts line after its deliver event" % i)
        if m.facts:
            tls, auth = m.facts.get("tls", "-"), m.facts.get("auth", "-")
            # RFC 3848: the WITH keyword says TLS (S) and AUTH (A); the TLS facts are named
            kw = re.search(rb"\bwith (ESMTP[A-Z]*)", m.trace)
            if kw:
                want = "ESMTP" + ("S" if tls != "-" else "") + ("A" if auth != "-" else "")
                need(kw.group(1).decode() == want, "message %d: Received says with %s, "
                     "want %s (tls=%s auth=%s)" % (i, kw.group(1).decode(), want, tls, auth))
            if tls != "-":
                for fact in (tls, m.facts.get("cipher", "-")):
                    need(fact.encode() in m.trace, "message %d: %s not in the trace %r"
                         % (i, fact, m.trace))
    ids = {m.fields.get("id"): m for m in msgs}
    for rid in replies_ids:
        m = ids.get(rid)
        need(m is not None, "250 reply id %s has no deliver event" % rid)
        if m is not None:
            need(rid.encode() in m.trace, "id %s is not in the Received header" % rid)

    # the case's own checks
    pos = 0
    for lineno, word, idx, arg in case.checks:
        where = "line %d: %s" % (lineno, word)
        if word == "event":
            for j in range(pos, len(lines)):
                if glob_match(arg, lines[j]):
                    pos = j + 1
                    break
            else:
                problems.append("%s %s: not found (in order)" % (where, arg))
        elif word == "no-event":
            for ln in lines:
                need(not glob_match(arg, ln), "%s %s: found %r" % (where, arg, ln))
        elif word == "event-count":
            n, _, pat = arg.partition(" ")
            got = sum(1 for ln in lines if glob_match(pat, ln))
            need(got == int(n), "%s %s: %d events match, want %s" % (where, pat, got, n))
        elif word == "messages":
            need(len(msgs) == int(arg), "%s: %d messages delivered, want %s"
                 % (where, len(msgs), arg))
        elif word in ("session-finding", "no-session-finding"):
            if idx > len(closes):
                problems.append("%s: no session #%d" % (where, idx))
                continue
            has = arg in closes[idx - 1]
            need(has == (word == "session-finding"),
                 "%s %s: session findings are %s" % (where, arg, sorted(closes[idx - 1])))
        else:  # message checks
            if idx > len(msgs):
                problems.append("%s: no message #%d (%d delivered)" % (where, idx, len(msgs)))
                continue
            m = msgs[idx - 1]
            if word == "deliver":
                rest = m.line[len("deliver "):]
                need(glob_match(arg, rest), "%s: %r does not match %r" % (where, rest, arg))
            elif word == "body":
                want = unescape(arg)
                need(m.body == want, "%s: body %r, want %r" % (where, m.body, want))
            elif word == "bodylen":
                need(len(m.body) == int(arg), "%s: body is %d octets, want %s"
                     % (where, len(m.body), arg))
            elif word == "body-has":
                need(unescape(arg) in m.body, "%s: %r not in body %r"
                     % (where, arg, m.body[:200]))
            elif word == "body-not":
                need(unescape(arg) not in m.body, "%s: %r in body" % (where, arg))
            elif word == "trace-has":
                need(unescape(arg) in m.trace, "%s: %r not in trace %r"
                     % (where, arg, m.trace))
            elif word == "trace-not":
                need(unescape(arg) not in m.trace, "%s: %r in trace %r"
                     % (where, arg, m.trace))
            elif word == "trace-line":
                need(any(glob_match(arg, ln) for ln in m.trace_lines()),
                     "%s: no trace line matches %r in %r" % (where, arg, m.trace_lines()))
            elif word == "findings":
                want = set() if arg == "-" else set(arg.split(","))
                need(m.findings == want, "%s: findings %s, want %s"
                     % (where, sorted(m.findings), sorted(want)))
            elif word == "finding":
                need(arg in m.findings, "%s %s: findings are %s"
                     % (where, arg, sorted(m.findings)))
            elif word == "no-finding":
                need(arg not in m.findings, "%s %s: findings are %s"
                     % (where, arg, sorted(m.findings)))
    return problems


# ---------------------------------------------------------------------------------------
# Running one case
# ---------------------------------------------------------------------------------------

ID_RE = re.compile(r"^250 (?:2\.0\.0 )?(\S+) Message accepted for delivery$")


def run_script(case, ports, proc, transcript, client):
    port, tls_port = ports
    conns = {}
    cur = None
    ids = []
    stopped = False
    sasl = {}  # connection name -> True after a 334: the next line is a SASL response

    def current():
        nonlocal cur
        if cur is None:
            if "main" in conns:
                raise CaseError("no current connection (after close); use conn NAME")
            conns["main"] = Conn("main", port, transcript)
            cur = conns["main"]
        return cur

    try:
        for lineno, word, arg in case.script:
            where = "%s line %d (%s %s)" % (case.name, lineno, word, arg)
            try:
                if word == "conn":
                    if arg not in conns:
                        conns[arg] = Conn(arg, port, transcript)
                    cur = conns[arg]
                elif word == "send":
                    c = current()
                    if sasl.pop(c.name, False):
                        client["secrets"].append(arg)
                    w = arg.split()
                    if len(w) >= 3 and w[0].upper() == "AUTH":
                        client["secrets"].append(w[2])
                    c.send(arg.encode("utf-8") + b"\r\n")
                elif word == "sendraw":
                    sasl.pop(current().name, None)
                    current().send(unescape(arg))
                elif word == "sendrep":
                    sasl.pop(current().name, None)
                    n, _, text = arg.partition(" ")
                    current().send(unescape(text) * int(n))
                elif word == "expect":
                    line = current().readline()
                    assert glob_match(arg, line), "got %r" % line
                    m = ID_RE.match(line)
                    if m:
                        ids.append(m.group(1))
                    if line.startswith("334"):
                        sasl[current().name] = True
                elif word == "expect-exact":
                    line = current().readline()
                    want = unescape(arg).decode("utf-8", "backslashreplace")
                    assert line == want, "got %r, want %r" % (line, want)
                    if line.startswith("334"):
                        sasl[current().name] = True
                elif word in ("reply-has", "reply-not"):
                    last = current().last_reply
                    hit = any(glob_match(arg, ln) for ln in last)
                    assert hit == (word == "reply-has"), "last reply %r" % last
                elif word in ("starttls", "starttls-fail"):
                    c = current()
                    c.starttls(arg.split(), must_fail=(word == "starttls-fail"))
                    if c.closed:
                        cur = None
                    else:
                        client["tls"].add(c.tls)
                elif word in ("conn-tls", "conn-tls-fail", "conn-tlsport"):
                    name, *spec = arg.split()
                    if name in conns:
                        raise CaseError("%s: connection %s exists" % (where, name))
                    conns[name] = cur = Conn(name, tls_port, transcript)
                    if word != "conn-tlsport":
                        cur.starttls(spec, must_fail=(word == "conn-tls-fail"))
                        if cur.closed:
                            cur = None
                        else:
                            client["tls"].add(cur.tls)
                elif word == "expect-tls":
                    c = current()
                    assert c.tls, "no TLS on %s" % c.name
                    got = "%s %s" % c.tls
                    assert glob_match(arg, got), "TLS is %r" % got
                elif word == "send-cram":
                    c = current()
                    user, password = arg.split()
                    last = c.last_reply
                    assert len(last) == 1 and last[0].startswith("334 "), \
                        "send-cram after %r, want a 334 challenge" % last
                    try:
                        chal = base64.b64decode(last[0][4:], validate=True)
                    except ValueError:
                        raise AssertionError("challenge is not base64: %r" % last[0])
                    assert re.fullmatch(rb"<[!-;=?-~]+@[!-;=?-~]+>", chal), \
                        "challenge is not an RFC 2195 msg-id: %r" % chal
                    client["challenges"].append(chal)
                    digest = hmac.new(password.encode(), chal, hashlib.md5).hexdigest()
                    resp = base64.b64encode(("%s %s" % (user, digest)).encode()).decode()
                    sasl.pop(c.name, None)
                    client["secrets"].append(resp)
                    c.send(resp.encode() + b"\r\n")
                elif word == "expect-multi":
                    c = current()
                    for _ in range(1000):
                        line = c.readline()
                        if c.multi_code is None:
                            break
                    assert glob_match(arg, line), "last line of the reply is %r" % line
                    if line.startswith("334"):
                        sasl[c.name] = True
                elif word == "expect-close":
                    current().expect_close()
                elif word == "expect-close-any":
                    current().expect_close_any()
                elif word == "expect-nothing":
                    current().expect_nothing(int(arg) / 1000.0)
                elif word == "sleep":
                    time.sleep(int(arg) / 1000.0)
                elif word == "close":
                    c = current()
                    c.close()
                    c.closed = True
                    cur = None
                elif word == "stop-server":
                    proc.stdin.close()
                    stopped = True
            except (AssertionError, OSError, ssl.SSLError) as e:
                raise AssertionError("%s: %s" % (where, e)) from None
        # nothing more may arrive on connections still open
        if not stopped:
            for c in conns.values():
                if c.closed or c.eof:
                    continue
                if c.buf:
                    raise AssertionError("%s: unexpected extra reply data %r" % (c.name, c.buf))
                c.expect_nothing(TAIL_WAIT)
    finally:
        for c in conns.values():
            c.close()
    return ids


def finish_server(proc):
    try:
        if not proc.stdin.closed:
            proc.stdin.close()
    except OSError:
        pass
    try:
        return proc.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=EXIT_TIMEOUT)
        return "did not exit within %.0fs after stdin closed (killed)" % EXIT_TIMEOUT


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name) for p in CASES])
def test_case(path):
    case = Case(path)
    transcript = []
    with tempfile.TemporaryDirectory(prefix="smtpd-case-") as tmp:
        events_path = os.path.join(tmp, "events")
        err_path = os.path.join(tmp, "stderr")
        with open(err_path, "wb") as err:
            proc = start_server(case, events_path, err)
        try:
            port = read_port(proc)
            client = {"tls": set(), "secrets": [], "challenges": []}
            if case.start_fails is not None:
                rc = finish_server(proc)
                stderr = pathlib.Path(err_path).read_text("utf-8", "backslashreplace")
                assert port is None, "server started; expected it to fail"
                assert rc == 2, "exit status %r, want 2; stderr: %s" % (rc, stderr)
                assert any(glob_match(case.start_fails, ln) for ln in stderr.splitlines()), \
                    "stderr %r does not match %r" % (stderr, case.start_fails)
                return
            assert port is not None, "case_server did not print PORT: %s" % (
                pathlib.Path(err_path).read_text("utf-8", "backslashreplace"))
            error = None
            ids = []
            try:
                ids = run_script(case, port, proc, transcript, client)
            except AssertionError as e:
                error = str(e)
        finally:
            rc = finish_server(proc)
            proc.stdout.close()
        stderr = pathlib.Path(err_path).read_text("utf-8", "backslashreplace")
        events = []
        if os.path.exists(events_path):
            events = pathlib.Path(events_path).read_bytes().decode(
                "utf-8", "backslashreplace").splitlines()

    report = []
    if error:
        report.append(error)
    if rc != 0:
        report.append("case_server exit status %r" % (rc,))
    if ALARMING.search(stderr):
        report.append("alarming stderr:\n" + stderr[:4000])
    report += check_events(case, events, ids, client)
    if os.environ.get("SMTPD_CASE_SHOW"):  # with pytest -s: show passing cases too
        print("\n".join(["", "=== " + case.name] + transcript + events))
    if report:
        shown = [ln if len(ln) < 300 else ln[:300] + "..." for ln in events]
        pytest.fail("\n".join(report) + "\n--- transcript\n" + "\n".join(transcript[-60:])
                    + "\n--- events\n" + "\n".join(shown[-60:]) + "\n--- stderr\n"
                    + stderr[:2000], pytrace=False)


def test_enough_cases():
    assert len(CASES) >= MIN_CASES, "only %d cases in %s" % (len(CASES), HERE)


def test_case_numbers_unique():
    nums = [p.name[:4] for p in CASES]
    dups = sorted({n for n in nums if nums.count(n) > 1})
    assert not dups, "duplicate case numbers: %s" % dups


def test_case_files_parse():
    bad = []
    for p in CASES:
        try:
            Case(p)
        except CaseError as e:
            bad.append("%s: %s" % (p.name, e))
    assert not bad, "\n".join(bad)
