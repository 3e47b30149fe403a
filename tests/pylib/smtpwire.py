"""smtpwire - what the end-to-end suites (tests/e2e for the library's examples,
tests/mailsink for the program) share about SMTP on the wire: dot-stuffing, the DATA
contents of a recorded byte stream, an smtplib client that records what it sent, a raw
socket client for what real clients will not do, and a recording TCP proxy for clients
we cannot instrument (swaks, curl). Standard library only; loopback only; every wait
bounded."""

import re
import select
import shutil
import smtplib
import socket
import subprocess
import threading
import time

TIMEOUT = 20  # seconds for any single wait
CRLF = b"\r\n"
_ACCEPTED = re.compile(r"^2\.0\.0 (\S+) Message accepted for delivery$")


def stuff(content):
    """Dot-stuff message content (RFC 5321 4.5.2) as a client does."""
    return re.sub(rb"(?m)^\.", b"..", content)


def unstuff(content):
    """Undo dot-stuffing: lines (ended by CRLF) starting with '.' lose that dot."""
    lines = content.split(CRLF)
    return CRLF.join(l[1:] if l.startswith(b".") else l for l in lines)


def data_blocks(c2s):
    """The DATA contents in a client-to-server byte stream, unstuffed, in order (a 354
    is assumed for every DATA)."""
    blocks = []
    pos = 0
    for _ in range(100000):
        eol = c2s.find(CRLF, pos)
        if eol < 0:
            break
        line = c2s[pos:eol]
        pos = eol + 2
        if line.upper() != b"DATA":
            continue
        if c2s.startswith(b"." + CRLF, pos):
            blocks.append(b"")
            pos += 3
            continue
        end = c2s.find(CRLF + b"." + CRLF, pos)
        assert end >= 0, "unterminated DATA on the wire"
        blocks.append(unstuff(c2s[pos : end + 2]))
        pos = end + 5
    return blocks


def accepted_id(text):
    m = _ACCEPTED.match(text.strip())
    assert m, "not an end-of-data 250 text: %r" % text
    return m.group(1)


class RecordingSMTP(smtplib.SMTP):
    """smtplib.SMTP that keeps every byte it sends and every final DATA reply."""

    def __init__(self, *a, **kw):
        self.wire = bytearray()
        self.data_replies = []
        super().__init__(*a, **kw)

    def send(self, s):
        if isinstance(s, str):
            s = s.encode(self.command_encoding)
        self.wire += s
        super().send(s)

    def data(self, msg):
        reply = super().data(msg)
        self.data_replies.append(reply)
        return reply

    def last_id(self):
        code, text = self.data_replies[-1]
        assert code == 250, (code, text)
        return accepted_id(text.decode("utf-8"))

    def sent_blocks(self):
        return data_blocks(bytes(self.wire))


class RawClient:
    """A plain socket SMTP client."""

    def __init__(self, host, port):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, port))
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line.encode("utf-8") + CRLF)
        return self.reply()

    def _line(self):
        for _ in range(100000):
            i = self.buf.find(CRLF)
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line.decode("utf-8", "replace")
            assert len(self.buf) < 65536, "reply line too long"
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server; unread: %r" % self.buf)
            self.buf += chunk
        raise AssertionError("no reply line")

    def reply(self):
        """One reply: (code, [text lines])."""
        lines = []
        for _ in range(100):
            line = self._line()
            assert re.match(r"^[2-5]\d\d([ -]|$)", line), line
            lines.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return int(line[:3]), lines
        raise AssertionError("reply with too many lines")

    def closed_by_peer(self, timeout=TIMEOUT):
        self.sock.settimeout(timeout)
        try:
            for _ in range(1000):
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return False

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def run(argv, timeout=60, **kw):
    """Run a client program with a deadline; return CompletedProcess (text output)."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, text=True,
                          errors="replace", **kw)


def require_tool(name):
    path = shutil.which(name)
    assert path, "%s is not installed (scripts/deps.sh installs it)" % name
    return path


class RecordingProxy:
    """Listens on 127.0.0.1:0 and relays each connection to the example, keeping the
    client-to-server (c2s) and server-to-client (s2c) bytes of every connection."""

    def __init__(self, port, host="127.0.0.1"):
        self.target = (host, port)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self._stop = threading.Event()
        self._threads = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self):
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            rec = {"c2s": bytearray(), "s2c": bytearray(), "done": threading.Event()}
            self.conns.append(rec)
            t = threading.Thread(target=self._relay, args=(c, rec), daemon=True)
            t.start()
            self._threads.append(t)

    def _relay(self, c, rec):
        s = socket.create_connection(self.target, timeout=TIMEOUT)
        peers = {c: (s, rec["c2s"]), s: (c, rec["s2c"])}
        open_dirs = 2
        deadline = time.monotonic() + 120
        try:
            while open_dirs and time.monotonic() < deadline and not self._stop.is_set():
                rd, _, _ = select.select(list(peers), [], [], 0.2)
                for src in rd:
                    dst, log = peers[src]
                    try:
                        chunk = src.recv(65536)
                    except OSError:
                        chunk = b""
                    if chunk:
                        log += chunk
                        dst.sendall(chunk)
                    else:
                        # pass the half-close on, stop watching this direction
                        try:
                            dst.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                        del peers[src]
                        open_dirs -= 1
        finally:
            c.close()
            s.close()
            rec["done"].set()

    def wait_closed(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        for rec in list(self.conns):
            assert rec["done"].wait(max(0.0, deadline - time.monotonic())), "proxy still open"

    def close(self):
        self._stop.set()
        self.lsock.close()
        for t in self._threads:
            t.join(timeout=TIMEOUT)

    def one_block(self):
        """The single DATA content of the single connection so far."""
        deadline = time.monotonic() + TIMEOUT
        while self.conns and not self.conns[0]["done"].is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.conns) == 1, len(self.conns)
        blocks = data_blocks(bytes(self.conns[0]["c2s"]))
        assert len(blocks) == 1, blocks
        return blocks[0]
