"""Helpers for the mailsink end-to-end tests: run the program, read its database, talk SMTP.

mailsink is started as `mailsink --smtp 127.0.0.1:0 --db PATH ...`; it writes
`mailsink: listening on ADDR:PORT` (one line per listener, IPv6 as [ADDR]:PORT) and
`mailsink: database PATH` to stderr. A reader thread keeps all of stderr (for the test
and for the report of a failing test) and notes the listening lines.

Everything here is bounded: sockets and processes have timeouts, loops have caps, and
only 127.0.0.1 / ::1 are used. Every process runs with HOME and XDG_DATA_HOME inside the
test's own temporary directory and without any MAILSINK_* variable of the caller.
"""

import json
import os
import sys
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time

TIMEOUT = 20  # seconds for any single wait

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pylib"))
from smtpwire import (  # noqa: E402  (shared with the other end-to-end suite)
    RawClient, RecordingProxy, RecordingSMTP, accepted_id, data_blocks, require_tool, run,
    stuff, unstuff)
CRLF = b"\r\n"
HOSTNAME = "mailsink.test"  # passed with --hostname where a test looks at replies

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(_HERE))

_LISTENING = re.compile(r"listening on (\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d+)")
# "HTTP on http://127.0.0.1:PORT/" (the --webroot path instead of "/"); main.c prints it
# after the listening lines and before "database PATH".
_HTTP_ON = re.compile(r"HTTP on (https?://[^\s\"\\]+)")


def mailsink_bin():
    path = os.environ.get("MAILSINK_BIN") or os.path.join(REPO, "build", "mailsink")
    assert os.access(path, os.X_OK), (
        "mailsink not found at %s: build it (cmake --build build) or set MAILSINK_BIN" % path)
    return path


def clean_env(tmp, extra=None):
    """The environment every mailsink process gets: the caller's, minus MAILSINK_*, with
    HOME and XDG_DATA_HOME inside tmp (so nothing touches the real home)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILSINK_")}
    home = os.path.join(str(tmp), "home")
    xdg = os.path.join(str(tmp), "xdg")
    os.makedirs(home, exist_ok=True)
    os.makedirs(xdg, exist_ok=True)
    env["HOME"] = home
    env["XDG_DATA_HOME"] = xdg
    env.pop("XDG_CONFIG_HOME", None)
    env["LC_ALL"] = "C.UTF-8"
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def _has_option(args, name):
    """Whether args set the option name ("--http"), as "--http X" or "--http=X"."""
    for a in args:
        if a == "--":
            break
        if a == name or a.startswith(name + "="):
            return True
    return False


class Mailsink:
    """A running `mailsink` server. argv is given complete except the program path.

    HTTP: unless args already contain --http (or the environment sets MAILSINK_HTTP),
    "--http 127.0.0.1:0" is added so that parallel tests never fight over port 8025;
    pass http=None to add nothing (the program's default then applies) or http="none"
    to turn it off. http_url is "http://127.0.0.1:PORT" (https with --http-tls-cert; the
    --webroot path is not included: see http_base) or None when HTTP is off."""

    def __init__(self, args, tmp, env=None, listeners=1, db=None, cwd=None, name="mailsink",
                 http="127.0.0.1:0"):
        self.tmp = str(tmp)
        args = list(args)
        self.env = env if env is not None else clean_env(tmp)
        if (http is not None and not _has_option(args, "--http")
                and "MAILSINK_HTTP" not in self.env):
            args += ["--http", http]
        self.argv = [mailsink_bin()] + args
        self._http = False  # not looked up yet
        self.db = db
        self.cwd = cwd or self.tmp
        self.errpath = os.path.join(self.tmp, "%s.stderr" % name)
        self.lines = []  # stderr lines (str), as they come
        self._cond = threading.Condition()
        self._eof = False
        self.expected_exit = 0  # what teardown expects; None: do not check
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=self.env, cwd=self.cwd, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.listeners = self.wait_listening(listeners)
        self.addr, self.port = self.listeners[0]

    def _read(self):
        with open(self.errpath, "wb") as log:
            # Bounded by the process: every iteration consumes output or ends.
            while True:
                line = self.proc.stderr.readline()
                if not line:
                    break
                log.write(line)
                log.flush()
                with self._cond:
                    self.lines.append(line.decode("utf-8", "replace"))
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for_line(self, pattern, timeout=TIMEOUT, start=0):
        """The first stderr line (from index start) matching the regex; None on timeout."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return self.lines[i]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    return None
                self._cond.wait(min(left, 0.5))

    def wait_listening(self, n, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = []
                for line in self.lines:
                    m = _LISTENING.search(line)
                    if m:
                        found.append((m.group(1).strip("[]"), int(m.group(2))))
                if len(found) >= n:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(min(left, 0.5))
        rc = self.proc.poll()
        self.kill()
        raise AssertionError("mailsink did not report %d listener(s) (exit %s); argv %s; "
                             "stderr:\n%s" % (n, rc, self.argv, self.stderr()))

    def stderr(self):
        with self._cond:
            return "".join(self.lines)

    def _http_line(self):
        """The URL of the "HTTP on URL" line, or None. mailsink prints it before the
        "database" line, so waiting for either one never waits for a line that will not
        come (an older build without HTTP, or --http none)."""
        if self._http is False:
            line = self.wait_for_line(r"HTTP on https?://|\bdatabase \S")
            m = _HTTP_ON.search(line) if line else None
            if not m:
                with self._cond:  # the database line came first: look once more
                    for ln in self.lines:
                        m = _HTTP_ON.search(ln) or m
            self._http = m.group(1) if m else None
        return self._http

    @property
    def http_url(self):
        """ "http://127.0.0.1:PORT" (scheme, host, port; no path), or None."""
        url = self._http_line()
        if not url:
            return None
        m = re.match(r"(https?://[^/]+)", url)
        return m.group(1) if m else None

    @property
    def http_base(self):
        """The URL of the web root with its trailing slash: "http://127.0.0.1:PORT/" or
        "http://127.0.0.1:PORT/prefix/" with --webroot; None when HTTP is off."""
        url = self._http_line()
        if not url:
            return None
        return url if url.endswith("/") else url + "/"

    # -- process control ----------------------------------------------------------------

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        """Signal and wait; the exit status, or None if it had to be killed."""
        self.send_signal(sig)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
        self._reader.join(timeout=TIMEOUT)
        return rc

    def kill(self):
        """SIGKILL the whole process group (the program and any hook it runs)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                self.proc.kill()
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        self._reader.join(timeout=TIMEOUT)

    # -- clients ------------------------------------------------------------------------

    def smtp(self, addr=None, port=None, **kw):
        kw.setdefault("local_hostname", "client.test")
        return RecordingSMTP(addr or self.addr, port or self.port, timeout=TIMEOUT, **kw)

    def raw(self, addr=None, port=None):
        return RawClient(addr or self.addr, port or self.port)

    def cli(self, *args, **kw):
        """Run a subcommand on this server's database: mailsink CMD --db DB ARGS..."""
        assert self.db, "no database file for this server"
        return cli(self.tmp, args[0], "--db", self.db, *args[1:], env=self.env, **kw)


def cli(tmp, *args, env=None, timeout=30, input=None):
    """Run `mailsink ARGS...` to completion; CompletedProcess with bytes out/err."""
    if env is None:
        env = clean_env(tmp)
    return subprocess.run([mailsink_bin()] + list(args), input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                          cwd=str(tmp), timeout=timeout)


def show(r):
    """A CompletedProcess for an assertion message."""
    return "exit %s\nstdout: %r\nstderr: %r" % (r.returncode, r.stdout[:3000], r.stderr[:3000])


# -- the database ---------------------------------------------------------------------------


class Db:
    """Read-only view of mailsink's SQLite database (table messages)."""

    def __init__(self, path):
        assert os.path.exists(path), "no database at %s" % path
        self.path = path
        self.conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=10)
        self.conn.row_factory = sqlite3.Row
        self.columns = [r[1] for r in self.conn.execute("PRAGMA table_info(messages)")]
        assert self.columns, "no table 'messages' in %s" % path
        assert "id" in self.columns, "messages has no column 'id': %r" % self.columns
        # schema 3 keeps the raw message in message_raw (seq, raw), beside the summary
        raw_cols = [r[1] for r in self.conn.execute("PRAGMA table_info(message_raw)")]
        if "raw" in self.columns:
            self._select = "SELECT * FROM messages WHERE id = ?"
        else:
            assert "raw" in raw_cols and "seq" in self.columns, (
                "no raw column in messages %r or message_raw %r" % (self.columns, raw_cols))
            self._select = ("SELECT m.*, r.raw AS raw FROM messages m "
                            "LEFT JOIN message_raw r ON r.seq = m.seq WHERE m.id = ?")

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def ids(self):
        return [r[0] for r in self.conn.execute("SELECT id FROM messages")]

    def count(self):
        return self.conn.execute("SELECT count(*) FROM messages").fetchone()[0]

    def row(self, mid):
        r = self.conn.execute(self._select, (mid,)).fetchone()
        return dict(r) if r is not None else None

    def raw(self, mid):
        r = self.row(mid)
        if r is None or r["raw"] is None:
            return None
        raw = r["raw"]
        return bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8")

    def body(self, mid):
        """raw[trace_size:]: the message as the client sent it (after unstuffing)."""
        row = self.row(mid)
        if row is None:
            return None
        raw = row["raw"]
        raw = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8")
        if "trace_size" in row:
            return raw[row["trace_size"]:]
        return raw[trace_size(raw):]

    def integrity(self):
        return [r[0] for r in self.conn.execute("PRAGMA integrity_check")]


def db_ids(path):
    with Db(path) as db:
        return db.ids()


def trace_size(raw):
    """Octets of our trace headers at the start of raw: Return-Path, then one Received
    (with its continuation lines). Used only when the table has no trace_size column."""
    assert raw.startswith(b"Return-Path: "), raw[:200]
    pos = raw.find(CRLF) + 2
    assert raw.startswith(b"Received: ", pos), raw[:300]
    end = raw.find(CRLF, pos)
    for _ in range(50):
        if end < 0 or raw[end + 2 : end + 3] not in (b" ", b"\t"):
            break
        end = raw.find(CRLF, end + 2)
    return end + 2


def stop_all(started):
    """Stop every Mailsink (SIGTERM unless it already ended), print its stderr, and
    return what went wrong: an exit status other than ms.expected_exit (None: not
    checked) or a sanitizer report. The fixtures fail the test on a non-empty list."""
    bad = []
    for ms in started:
        already = ms.proc.poll()
        rc = ms.stop() if already is None else already
        err = ms.stderr()
        print("---- %s (exit %s) stderr ----\n%s" % (" ".join(ms.argv), rc, err[-4000:]))
        if ms.expected_exit is not None and (rc != ms.expected_exit or "Sanitizer" in err
                                             or "runtime error:" in err):
            bad.append("%s: exit status %s, expected %s" % (" ".join(ms.argv), rc,
                                                              ms.expected_exit))
    return bad


def binary_has_asan(path):
    """Whether the program at path was built with AddressSanitizer (its runtime's entry
    point is in the binary): sanitizer builds are slower and hold more memory, so the
    suites scale their waits and sizes by this."""
    needle = b"__asan_init"
    tail = b""
    try:
        with open(path, "rb") as f:
            for _ in range(4096):  # at most 4 GiB in 1 MiB reads
                chunk = f.read(1 << 20)
                if not chunk:
                    return False
                if needle in tail + chunk:
                    return True
                tail = chunk[-len(needle):]
    except OSError:
        return False
    return False


def wait_until(pred, timeout=10, interval=0.05):
    """Poll pred() until true or timeout; returns its last value."""
    deadline = time.monotonic() + timeout
    v = pred()
    for _ in range(int(timeout / interval) + 2):
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)
        v = pred()
    return v


# -- the bytes on the wire -------------------------------------------------------------------


def send(ms, sender, rcpts, msg, **kw):
    """sendmail through ms; returns (id from the 250, the content put on the wire)."""
    with ms.smtp() as s:
        assert s.sendmail(sender, rcpts, msg, **kw) == {}
        rid = s.last_id()
        blocks = s.sent_blocks()
    assert len(blocks) == 1
    return rid, blocks[0]


def simple(subject, body="hello\r\n", extra=b""):
    return (b"From: a@x.example\r\nTo: b@y.example\r\nSubject: " + subject.encode("utf-8") +
            b"\r\n" + extra + b"\r\n" + body.encode("utf-8"))


# -- misc --------------------------------------------------------------------------------------


def free_port(host="127.0.0.1"):
    """A port nobody listens on right now (bound and released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def is_listening(port, host="127.0.0.1"):
    try:
        c = socket.create_connection((host, port), timeout=2)
    except OSError:
        return False
    c.close()
    return True


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def json_messages(out):
    """The message objects in `list --json` output: a JSON array, an object holding an
    array (e.g. {"messages": [...]}), or one object per line."""
    text = out.decode("utf-8") if isinstance(out, bytes) else out
    text = text.strip()
    if not text:
        return []
    try:
        doc = json.loads(text)
    except ValueError:
        doc = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        assert len(lists) == 1, "no single list of messages in %r" % doc
        doc = lists[0]
    assert isinstance(doc, list), doc
    for m in doc:
        assert isinstance(m, dict), m
    return doc


def field(obj, *names):
    """obj's value under the first of names present, case-insensitively (KeyError if none)."""
    low = {k.lower(): v for k, v in obj.items()}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    raise KeyError("none of %s in %r" % (names, sorted(obj)))


def write_script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return str(path)
