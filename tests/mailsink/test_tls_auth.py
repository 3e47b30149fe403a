"""TLS and AUTH end to end, with real clients: swaks (--tls, --tls-on-connect, --auth
PLAIN/LOGIN/CRAM-MD5), curl (--ssl-reqd smtp://, smtps://, --user), Python's smtplib
(starttls(), SMTP_SSL, login()) and openssl s_client (-starttls smtp, protocol versions).

The certificates are made at test time with `openssl req` in the test's temporary
directory; no key is ever kept. Every client runs with a timeout, on 127.0.0.1 only.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import select
import smtplib
import socket
import ssl
import subprocess
import threading
import time
import warnings

import pytest

from mslib import (CRLF, HOSTNAME, TIMEOUT, Db, clean_env, cli, field, json_messages,
                   require_tool, run, show, simple, wait_until)

PASSWORD = "pa55-Wqz-7x!"  # distinctive (smtplib sends only ASCII passwords)
UTF8_PASSWORD = "pa55-Wörd-7x!"  # a non-ASCII letter: UTF-8 on the wire (raw client)
ASCII_PASSWORD = "s3cret-Pw-91"
FP_RE = re.compile(r"\b((?:[0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}|[0-9A-Fa-f]{64})\b")
ABORTED_CLIENTHELLO = bytes.fromhex("160301020001" "0001fc0303") + os.urandom(20)


# -- certificates ---------------------------------------------------------------------------


def make_cert(dirpath, name, cn):
    """A P-256 key and self-signed certificate for CN (2 days) in dirpath."""
    openssl = require_tool("openssl")
    key = os.path.join(str(dirpath), name + ".key")
    crt = os.path.join(str(dirpath), name + ".crt")
    r = run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn,
             "-days", "2", "-keyout", key, "-out", crt], timeout=60)
    assert r.returncode == 0, r.stderr
    return crt, key


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "certs"
    d.mkdir()
    crt, key = make_cert(d, "server", HOSTNAME)
    ccrt, ckey = make_cert(d, "client", "client.test")
    return {"cert": crt, "key": key, "client_cert": ccrt, "client_key": ckey}


def fingerprint_of_pem(pem_path):
    """openssl x509 -fingerprint -sha256, as 64 upper-case hex digits."""
    r = run([require_tool("openssl"), "x509", "-noout", "-fingerprint", "-sha256", "-in",
             pem_path])
    assert r.returncode == 0, r.stderr
    m = re.search(r"=\s*([0-9A-Fa-f:]+)", r.stdout)
    assert m, r.stdout
    return m.group(1).replace(":", "").upper()


def norm_fp(fp):
    return fp.replace(":", "").upper()


# -- clients --------------------------------------------------------------------------------


def client_ctx(minimum=ssl.TLSVersion.TLSv1_2, maximum=None, cert=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    if cert:
        ctx.load_cert_chain(*cert)
    return ctx


def smtp_plain(ms, port=None):
    return smtplib.SMTP("127.0.0.1", port or ms.port, local_hostname="client.test",
                        timeout=TIMEOUT)


def smtp_tls(ms, port=None, ctx=None):
    s = smtp_plain(ms, port)
    s.ehlo()
    assert s.has_extn("starttls"), s.esmtp_features
    code, text = s.starttls(context=ctx or client_ctx())
    assert code == 220 and text == b"2.0.0 Ready to start TLS", (code, text)
    s.ehlo()
    assert not s.has_extn("starttls"), "STARTTLS offered again over TLS: %r" % s.esmtp_features
    return s


def smtp_ssl(ms, port, ctx=None):
    return smtplib.SMTP_SSL("127.0.0.1", port, local_hostname="client.test",
                            timeout=TIMEOUT, context=ctx or client_ctx())


def send_one(s, subject, sender="from@x.example", rcpt="to@y.example"):
    """sendmail over an open smtplib session; the id from the 250."""
    msg = simple(subject)
    s.mail(sender)
    code, text = s.rcpt(rcpt)
    assert code == 250, (code, text)
    code, text = s.data(msg)
    assert code == 250, (code, text)
    m = re.match(r"^2\.0\.0 (\S+) Message accepted for delivery$", text.decode())
    assert m, text
    return m.group(1)


def auth_exchange(s, mech, user, password):
    """AUTH with one mechanism through smtplib; (code, text)."""
    s.user, s.password = user, password
    obj = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login, "CRAM-MD5": s.auth_cram_md5}[mech]
    try:
        return s.auth(mech, obj, initial_response_ok=(mech != "LOGIN"))
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code, e.smtp_error


class Raw:
    """A socket SMTP client that can switch to TLS in the middle."""

    def __init__(self, port, tls=False):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""
        if tls:
            self.starttls()

    def starttls(self, ctx=None):
        assert not self.buf, "bytes before the handshake: %r" % self.buf
        self.sock = (ctx or client_ctx()).wrap_socket(self.sock, server_hostname=HOSTNAME)

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        for _ in range(10000):
            i = self.buf.find(CRLF)
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln.decode("utf-8", "replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed; unread %r" % self.buf)
            self.buf += chunk
        raise AssertionError("no line")

    def reply(self):
        lines = []
        for _ in range(100):
            ln = self.line()
            assert re.match(r"^[2-5]\d\d([ -]|$)", ln), ln
            lines.append(ln)
            if len(ln) == 3 or ln[3] == " ":
                return int(ln[:3]), lines
        raise AssertionError("reply too long")

    def cmd(self, text):
        self.send(text.encode("utf-8") + CRLF)
        return self.reply()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def b64(s):
    return base64.b64encode(s.encode("utf-8") if isinstance(s, str) else s).decode()


# -- servers --------------------------------------------------------------------------------


def classify_ports(ms):
    """(plain ports, implicit-TLS ports) of ms: a plain listener greets at once, an
    implicit TLS one says nothing until the handshake."""
    plain, tls = [], []
    for _, port in ms.listeners:
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        try:
            r, _, _ = select.select([c], [], [], 1.5)
            data = c.recv(100) if r else b""
        finally:
            c.close()
        (plain if data.startswith(b"220") else tls).append(port)
    return plain, tls


def start_tls(start, certs, *args, smtps=False, plain=True, **kw):
    """mailsink with the test certificate; with smtps also an implicit TLS listener.
    Sets ms.smtps_port (or None)."""
    argv = ["--tls-cert", certs["cert"], "--tls-key", certs["key"]] + list(args)
    listeners = 1 if plain else 0
    if smtps:
        argv += ["--smtps", "127.0.0.1:0"]
        listeners += 1
    ms = start(*argv, smtp=plain, listeners=listeners, **kw)
    # every listening line comes before the database line
    assert ms.wait_for_line(r"database ", timeout=10), ms.stderr()
    ms.listeners = ms.wait_listening(listeners)
    assert len(ms.listeners) == listeners, "listeners %r, want %d" % (ms.listeners, listeners)
    ms.smtps_port = None
    if smtps:
        p, t = classify_ports(ms)
        assert len(t) == 1, "implicit TLS listener not found among %r" % ms.listeners
        ms.smtps_port = t[0]
        if plain:
            assert len(p) == 1, ms.listeners
            ms.port = p[0]
    return ms


def show_json(ms, mid):
    r = ms.cli("show", "--json", mid)
    if r.returncode != 0:
        r = ms.cli("show", mid, "--json")
    assert r.returncode == 0, show(r)
    doc = json.loads(r.stdout.decode("utf-8"))
    if isinstance(doc, list):
        assert len(doc) == 1, doc
        doc = doc[0]
    assert isinstance(doc, dict), doc
    return doc


def latest_id(ms):
    r = ms.cli("list", "--json")
    assert r.returncode == 0, show(r)
    msgs = json_messages(r.stdout)
    assert msgs, "nothing stored"
    return field(msgs[0], "id")


def fact(obj, name):
    """A TLS/AUTH fact of a stored message ('' or None when absent)."""
    try:
        v = field(obj, name)
    except KeyError:
        raise AssertionError("show --json has no %s: %r" % (name, sorted(obj)))
    return v


def received(ms, mid):
    with Db(ms.db) as db:
        raw = db.raw(mid)
    m = re.search(rb"(?m)^Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*", raw)
    assert m, raw[:500]
    return re.sub(r"\s+", " ", m.group(0).decode("utf-8", "replace"))


def with_keyword(recv):
    m = re.search(r"\bwith ([A-Z0-9]*SMTP[A-Z]*)\b", recv)
    assert m, recv
    return m.group(1)


def count_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# ==========================================================================================
# STARTTLS with smtplib; the stored facts and the Received header
# ==========================================================================================


def test_smtplib_starttls_records_tls(start, certs):
    ms = start_tls(start, certs)
    with smtp_plain(ms) as s:
        s.ehlo()
        assert s.has_extn("starttls")
        assert not s.has_extn("auth"), "AUTH offered without an auth mode"
    with smtp_tls(ms) as s:
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        mid = send_one(s, "over starttls")
    assert version == "TLSv1.3"
    obj = show_json(ms, mid)
    assert fact(obj, "tls_version") == version
    assert fact(obj, "tls_cipher") == cipher
    assert not fact(obj, "auth_user")
    recv = received(ms, mid)
    assert with_keyword(recv) == "ESMTPS", recv
    assert version in recv and cipher in recv, recv


def test_plaintext_message_has_no_tls_facts(start, certs):
    ms = start_tls(start, certs)
    with smtp_plain(ms) as s:
        s.ehlo()
        mid = send_one(s, "plain")
    obj = show_json(ms, mid)
    assert not fact(obj, "tls_version")
    assert not fact(obj, "tls_cipher")
    assert not fact(obj, "auth_user")
    assert with_keyword(received(ms, mid)) == "ESMTP"


def test_tls12_client_recorded_as_tls12(start, certs):
    ms = start_tls(start, certs)
    with smtp_tls(ms, ctx=client_ctx(maximum=ssl.TLSVersion.TLSv1_2)) as s:
        assert s.sock.version() == "TLSv1.2"
        cipher = s.sock.cipher()[0]
        mid = send_one(s, "tls12")
    obj = show_json(ms, mid)
    assert fact(obj, "tls_version") == "TLSv1.2"
    assert fact(obj, "tls_cipher") == cipher
    assert "TLSv1.2" in received(ms, mid)


def test_client_certificate_subject_recorded(start, certs):
    ms = start_tls(start, certs)
    ctx = client_ctx(cert=(certs["client_cert"], certs["client_key"]))
    with smtp_tls(ms, ctx=ctx) as s:
        mid = send_one(s, "with a client certificate")
    obj = show_json(ms, mid)
    assert "client.test" in str(fact(obj, "tls_peer")), obj


def test_no_certificate_no_starttls(ms):
    with smtp_plain(ms) as s:
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.docmd("STARTTLS") == (502, b"5.5.1 Error: command not implemented")


def test_starttls_injection_discarded(start, certs):
    """STARTTLS\\r\\nRSET\\r\\n in one write: the RSET is never answered (CVE-2011-0411)."""
    ms = start_tls(start, certs, "-v")
    c = Raw(ms.port)
    try:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        c.send(b"STARTTLS\r\nRSET\r\n")
        code, lines = c.reply()
        assert (code, lines) == (220, ["220 2.0.0 Ready to start TLS"])
        c.starttls()
        code, lines = c.cmd("EHLO client.test")
        assert code == 250 and lines[0].startswith("250-" + HOSTNAME), lines
        assert c.cmd("NOOP") == (250, ["250 2.0.0 Ok"])
        assert c.cmd("QUIT")[0] == 221
    finally:
        c.close()
    # in the -v transcript no RSET was ever read as a command
    assert ms.wait_for_line(r"QUIT", timeout=5)
    assert not re.search(r"(?im)\bRSET\b", ms.stderr()), ms.stderr()


def test_session_starts_over_after_starttls(start, certs):
    ms = start_tls(start, certs)
    c = Raw(ms.port)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls()
        assert c.cmd("MAIL FROM:<a@x.example>") == (
            503, ["503 5.5.1 Error: send HELO/EHLO first"])
        assert c.cmd("STARTTLS") == (554, ["554 5.5.1 Error: TLS already active"])
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
    finally:
        c.close()


# ==========================================================================================
# Implicit TLS (--smtps)
# ==========================================================================================


def test_smtps_smtplib_and_no_plaintext_greeting(start, certs):
    ms = start_tls(start, certs, smtps=True)
    # nothing in plaintext before the handshake
    c = socket.create_connection(("127.0.0.1", ms.smtps_port), timeout=TIMEOUT)
    try:
        r, _, _ = select.select([c], [], [], 1.0)
        assert not r or c.recv(100) == b"", "the implicit TLS port spoke in plaintext"
    finally:
        c.close()
    with smtp_ssl(ms, ms.smtps_port) as s:
        code, _ = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls")
        version, cipher = s.sock.version(), s.sock.cipher()[0]
        mid = send_one(s, "over smtps")
    obj = show_json(ms, mid)
    assert fact(obj, "tls_version") == version
    assert fact(obj, "tls_cipher") == cipher
    assert with_keyword(received(ms, mid)) == "ESMTPS"


def test_smtps_without_certificate_refused(tmp_path):
    r = cli(tmp_path, "--smtps", "127.0.0.1:0", "--db", str(tmp_path / "m.db"), timeout=30)
    assert r.returncode == 2, show(r)
    assert r.stderr.strip(), show(r)


def test_missing_certificate_file_refused(tmp_path, certs):
    missing = str(tmp_path / "nope" / "cert.pem")
    r = cli(tmp_path, "--smtp", "127.0.0.1:0", "--db", str(tmp_path / "m.db"),
            "--tls-cert", missing, "--tls-key", certs["key"], timeout=30)
    assert r.returncode == 2, show(r)
    assert missing.encode() in r.stderr, show(r)


def test_key_not_matching_certificate_refused(tmp_path, certs):
    r = cli(tmp_path, "--smtp", "127.0.0.1:0", "--db", str(tmp_path / "m.db"),
            "--tls-cert", certs["cert"], "--tls-key", certs["client_key"], timeout=30)
    assert r.returncode == 2, show(r)
    assert r.stderr.strip(), show(r)


@pytest.mark.parametrize("args,names", [
    (["--tls-cert", "{cert}"], "--tls-key"),
    (["--tls-key", "{key}"], "--tls-cert"),
    (["--require-tls"], "--require-tls"),
    (["--tls-self-signed", "--tls-cert", "{cert}", "--tls-key", "{key}"], "--tls-"),
    (["--auth-accept-any", "--auth-file", "{users}"], "--auth-"),
    (["--auth-file", "{missing}"], "{missing}"),
    (["--auth-file", "{badusers}"], "line 2"),
])
def test_tls_auth_configuration_errors(tmp_path, certs, args, names):
    """Documented configuration errors: exit status 2 and a message naming the problem,
    and never a password from the file."""
    users = tmp_path / "users"
    users.write_text("alice:%s\n" % PASSWORD)
    bad = tmp_path / "badusers"
    bad.write_text("alice:%s\nno-colon-here\n" % PASSWORD)
    sub = {"cert": certs["cert"], "key": certs["key"], "users": str(users),
           "badusers": str(bad), "missing": str(tmp_path / "nope")}
    argv = [a.format(**sub) for a in args]
    r = cli(tmp_path, "--smtp", "127.0.0.1:0", "--db", str(tmp_path / "m.db"), *argv,
            timeout=30)
    assert r.returncode == 2, show(r)
    assert names.format(**sub).encode() in r.stderr, show(r)
    assert PASSWORD.encode() not in r.stderr + r.stdout, show(r)


def test_tls_and_auth_from_environment(start, certs, tmp_path):
    """MAILSINK_TLS_CERT, MAILSINK_TLS_KEY, MAILSINK_SMTPS, MAILSINK_AUTH_ACCEPT_ANY and
    MAILSINK_REQUIRE_TLS work like the flags."""
    env = clean_env(tmp_path, {"MAILSINK_TLS_CERT": certs["cert"],
                               "MAILSINK_TLS_KEY": certs["key"],
                               "MAILSINK_SMTPS": "127.0.0.1:0",
                               "MAILSINK_AUTH_ACCEPT_ANY": "yes",
                               "MAILSINK_REQUIRE_TLS": "yes"})
    ms = start(env=env, listeners=2)
    plain, tls = classify_ports(ms)
    assert len(plain) == 1 and len(tls) == 1, ms.listeners
    with smtp_plain(ms, plain[0]) as s:
        s.ehlo()
        assert s.docmd("MAIL", "FROM:<a@x.example>")[0] == 530
    with smtp_ssl(ms, tls[0]) as s:
        s.ehlo()
        s.login("env-user", "pw")
        mid = send_one(s, "from the environment")
    assert fact(show_json(ms, mid), "auth_user") == "env-user"


def test_configured_cert_fingerprint_logged(start, certs):
    ms = start_tls(start, certs)
    line = ms.wait_for_line(r"(?i)fingerprint", timeout=10)
    assert line, ms.stderr()
    assert certs["cert"] in line, line
    m = FP_RE.search(line)
    assert m and norm_fp(m.group(1)) == fingerprint_of_pem(certs["cert"]), line


# ==========================================================================================
# swaks
# ==========================================================================================


_SWAKS_TLS = []


def swaks(port, *args, timeout=60):
    if any(a.startswith("--tls") for a in args) and not _SWAKS_TLS:
        r = run([require_tool("swaks"), "--support"], timeout=30)
        assert "TLS supported" in r.stdout + r.stderr, (
            "swaks cannot do TLS here (it needs Net::SSLeay: libnet-ssleay-perl): %s"
            % (r.stdout + r.stderr))
        _SWAKS_TLS.append(True)
    return run([require_tool("swaks"), "--server", "127.0.0.1:%d" % port, "--helo",
                "client.test", "--from", "alice@x.example", "--to", "bob@y.example",
                "--timeout", "20"] + list(args), timeout=timeout)


def test_swaks_starttls(start, certs):
    ms = start_tls(start, certs)
    r = swaks(ms.port, "--tls", "--header", "Subject: swaks tls")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "220 2.0.0 Ready to start TLS" in r.stdout, r.stdout
    obj = show_json(ms, latest_id(ms))
    assert fact(obj, "tls_version") in ("TLSv1.2", "TLSv1.3")
    assert fact(obj, "subject") == "swaks tls"


def test_swaks_tls_on_connect(start, certs):
    ms = start_tls(start, certs, smtps=True)
    r = swaks(ms.smtps_port, "--tls-on-connect", "--header", "Subject: swaks smtps")
    assert r.returncode == 0, r.stdout + r.stderr
    obj = show_json(ms, latest_id(ms))
    assert fact(obj, "tls_version") in ("TLSv1.2", "TLSv1.3")


def write_auth_file(tmp_path, text):
    path = tmp_path / "users"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_auth_over_starttls(start, certs, tmp_path, mech):
    users = write_auth_file(tmp_path, "alice:%s\nbob:other\n" % ASCII_PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    r = swaks(ms.port, "--tls", "--auth", mech, "--auth-user", "alice", "--auth-password",
              ASCII_PASSWORD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0 Authentication successful" in r.stdout, r.stdout
    mid = latest_id(ms)
    obj = show_json(ms, mid)
    assert fact(obj, "auth_user") == "alice"
    assert with_keyword(received(ms, mid)) == "ESMTPSA"


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_swaks_wrong_password_535(start, certs, tmp_path, mech):
    users = write_auth_file(tmp_path, "alice:%s\n" % ASCII_PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    r = swaks(ms.port, "--tls", "--auth", mech, "--auth-user", "alice", "--auth-password",
              "not-" + ASCII_PASSWORD)
    assert r.returncode != 0, r.stdout
    assert "535 5.7.8 Authentication credentials invalid" in r.stdout, r.stdout
    with Db(ms.db) as db:
        assert db.count() == 0


def test_swaks_auth_on_connect(start, certs):
    ms = start_tls(start, certs, "--auth-accept-any", smtps=True)
    r = swaks(ms.smtps_port, "--tls-on-connect", "--auth", "LOGIN", "--auth-user",
              "carol@x.example", "--auth-password", "whatever")
    assert r.returncode == 0, r.stdout + r.stderr
    assert fact(show_json(ms, latest_id(ms)), "auth_user") == "carol@x.example"


def test_swaks_require_tls(start, certs):
    ms = start_tls(start, certs, "--require-tls")
    r = swaks(ms.port)
    assert r.returncode != 0, r.stdout
    assert "530 5.7.0 Must issue a STARTTLS command first" in r.stdout, r.stdout
    r = swaks(ms.port, "--tls")
    assert r.returncode == 0, r.stdout + r.stderr
    with Db(ms.db) as db:
        assert db.count() == 1


# ==========================================================================================
# curl
# ==========================================================================================


def curl(url, *args, msg=b"Subject: curl\r\n\r\nhello from curl\r\n", tmp=None):
    path = os.path.join(str(tmp), "curl-msg.eml")
    with open(path, "wb") as f:
        f.write(msg)
    return run([require_tool("curl"), "-sS", "--max-time", "30", "--mail-from",
                "alice@x.example", "--mail-rcpt", "bob@y.example", "--upload-file", path,
                url] + list(args), timeout=60)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_curl_ssl_reqd_with_user(start, certs, tmp_path, mech):
    users = write_auth_file(tmp_path, "dave:%s\n" % ASCII_PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    r = curl("smtp://127.0.0.1:%d" % ms.port, "--ssl-reqd", "-k", "--user",
             "dave:" + ASCII_PASSWORD, "--login-options", "AUTH=" + mech, tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    mid = latest_id(ms)
    obj = show_json(ms, mid)
    assert fact(obj, "auth_user") == "dave"
    assert fact(obj, "tls_version") in ("TLSv1.2", "TLSv1.3")
    assert with_keyword(received(ms, mid)) == "ESMTPSA"


def test_curl_smtps_with_user(start, certs, tmp_path):
    ms = start_tls(start, certs, "--auth-accept-any", smtps=True)
    r = curl("smtps://127.0.0.1:%d" % ms.smtps_port, "-k", "--user", "erin:anything",
             tmp=tmp_path)
    assert r.returncode == 0, r.stderr
    obj = show_json(ms, latest_id(ms))
    assert fact(obj, "auth_user") == "erin"
    assert fact(obj, "tls_version") in ("TLSv1.2", "TLSv1.3")


def test_curl_wrong_password(start, certs, tmp_path):
    users = write_auth_file(tmp_path, "dave:%s\n" % ASCII_PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    r = curl("smtp://127.0.0.1:%d" % ms.port, "--ssl-reqd", "-k", "--user", "dave:wrong",
             tmp=tmp_path)
    assert r.returncode != 0, r.stderr
    with Db(ms.db) as db:
        assert db.count() == 0


def test_curl_ssl_reqd_without_certificate_fails(ms, tmp_path):
    """No certificate: no STARTTLS, and a client that requires TLS gives up."""
    r = curl("smtp://127.0.0.1:%d" % ms.port, "--ssl-reqd", "-k", tmp=tmp_path)
    assert r.returncode != 0, r.stderr
    with Db(ms.db) as db:
        assert db.count() == 0


# ==========================================================================================
# openssl s_client: protocol versions and the certificate
# ==========================================================================================


def s_client(port, *args, starttls=True, stdin=b"QUIT\r\n", env=None):
    argv = [require_tool("openssl"), "s_client", "-connect", "127.0.0.1:%d" % port]
    if starttls:
        argv += ["-starttls", "smtp"]
    argv += list(args)
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, env=env)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def negotiated(out):
    """(version, cipher) from s_client's "New, TLSv1.3, Cipher is X" line; a failed
    handshake says "New, (NONE), Cipher is (NONE)"."""
    m = re.search(r"New, (\S+), Cipher is (\S+)", out)
    return (m.group(1), m.group(2)) if m else (None, None)


@pytest.mark.parametrize("flag,version", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_s_client_tls12_and_13(start, certs, flag, version):
    ms = start_tls(start, certs, smtps=True)
    for port, starttls in ((ms.port, True), (ms.smtps_port, False)):
        rc, out = s_client(port, flag, starttls=starttls)
        assert rc == 0, out
        got, cipher = negotiated(out)
        assert got == version, out
        assert cipher and cipher != "(NONE)", out


def tls11_capable_client(flag, tmp_path):
    """Does this openssl s_client, with security level 0, do the old version at all?
    Checked against a Python server that allows it, so that a refusal by mailsink means
    something. True, False, or None when the check itself cannot run."""
    crt, key = make_cert(tmp_path, "old", "old.test")
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.load_cert_chain(crt, key)
    except (ssl.SSLError, ValueError):
        return None
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(TIMEOUT)
    seen = []

    def serve():
        try:
            c, _ = ls.accept()
            c.settimeout(TIMEOUT)
            with ctx.wrap_socket(c, server_side=True) as t:
                seen.append(t.version())
        except (OSError, ssl.SSLError):
            pass

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    s_client(ls.getsockname()[1], flag, "-cipher", "DEFAULT:@SECLEVEL=0", starttls=False,
             stdin=b"")
    th.join(TIMEOUT)
    ls.close()
    return bool(seen)


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_s_client_old_versions_refused(start, certs, tmp_path, flag):
    capable = tls11_capable_client(flag, tmp_path)
    ms = start_tls(start, certs, smtps=True)
    for port, starttls in ((ms.port, True), (ms.smtps_port, False)):
        rc, out = s_client(port, flag, "-cipher", "DEFAULT:@SECLEVEL=0", starttls=starttls)
        _, cipher = negotiated(out)
        assert rc != 0 and cipher in (None, "(NONE)"), (
            "%s was accepted (the client %s do it): %s"
            % (flag, "can" if capable else "may not", out))
    # the server is still fine
    with smtp_tls(ms) as s:
        send_one(s, "after old clients")


def test_self_signed_fingerprint_matches_served_cert(start, tmp_path):
    ms = start("--tls-self-signed")
    line = ms.wait_for_line(r"(?i)fingerprint", timeout=10)
    assert line, "no fingerprint line in the log:\n" + ms.stderr()
    m = FP_RE.search(line)
    assert m, line
    logged = norm_fp(m.group(1))
    # the certificate the server presents, as openssl sees it
    rc, out = s_client(ms.port, "-showcerts")
    assert rc == 0, out
    pem = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
    assert pem, out
    served = tmp_path / "served.pem"
    served.write_text(pem.group(0) + "\n")
    assert fingerprint_of_pem(str(served)) == logged, (line, out)
    # for our hostname
    r = run([require_tool("openssl"), "x509", "-noout", "-text", "-in", str(served)])
    assert HOSTNAME in r.stdout, r.stdout
    # kept on disk: the private key readable by the owner only
    keys = []
    for root, _, files in os.walk(str(tmp_path)):
        for f in files:
            p = os.path.join(root, f)
            try:
                with open(p, "rb") as fh:
                    head = fh.read(200000)
            except OSError:
                continue
            if b"PRIVATE KEY-----" in head:
                keys.append(p)
    keys = [k for k in keys if "/certs/" not in k]
    assert keys, "no private key kept under %s" % tmp_path
    # where the man page says: beside the database
    assert os.path.exists(str(tmp_path / "tls-self-signed.crt")), os.listdir(str(tmp_path))
    assert str(tmp_path / "tls-self-signed.key") in keys, keys
    for k in keys:
        mode = os.stat(k).st_mode & 0o777
        assert mode & 0o077 == 0, "%s has mode %o" % (k, mode)
    # made once: a restart on the same data presents the same certificate
    assert ms.stop() == 0
    ms2 = start("--tls-self-signed")
    line2 = ms2.wait_for_line(r"(?i)fingerprint", timeout=10)
    assert line2 and norm_fp(FP_RE.search(line2).group(1)) == logged, (line, line2)


# ==========================================================================================
# AUTH modes with smtplib
# ==========================================================================================


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "CRAM-MD5"])
def test_smtplib_auth_file_mechanisms(start, certs, tmp_path, mech):
    users = write_auth_file(tmp_path, "# users\n\nalice:%s\nbob:other\n" % PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    with smtp_tls(ms) as s:
        assert s.has_extn("auth")
        assert set(s.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN",
                                                                 "CRAM-MD5"}
        assert auth_exchange(s, mech, "alice", "wrong") == (
            535, b"5.7.8 Authentication credentials invalid")
        code, text = auth_exchange(s, mech, "alice", PASSWORD)
        assert (code, text) == (235, b"2.7.0 Authentication successful")
        assert s.docmd("AUTH", "PLAIN " + b64("\0alice\0" + PASSWORD)) == (
            503, b"5.5.1 Error: already authenticated")
        mid = send_one(s, "auth " + mech)
    assert fact(show_json(ms, mid), "auth_user") == "alice"


def test_smtplib_login_picks_a_mechanism(start, certs, tmp_path):
    users = write_auth_file(tmp_path, "alice:%s\n" % PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    with smtp_tls(ms) as s:
        assert s.login("alice", PASSWORD)[0] == 235
        mid = send_one(s, "login()")
    assert fact(show_json(ms, mid), "auth_user") == "alice"


def test_smtplib_ssl_login(start, certs, tmp_path):
    users = write_auth_file(tmp_path, "alice:%s\n" % PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users, smtps=True)
    with smtp_ssl(ms, ms.smtps_port) as s:
        s.ehlo()
        assert s.login("alice", PASSWORD)[0] == 235
        mid = send_one(s, "SMTP_SSL login()")
    obj = show_json(ms, mid)
    assert fact(obj, "auth_user") == "alice"
    assert with_keyword(received(ms, mid)) == "ESMTPSA"


def test_auth_file_unknown_user_and_hashed_entries(start, certs, tmp_path):
    digest = hashlib.sha256(PASSWORD.encode("utf-8")).hexdigest()
    users = write_auth_file(tmp_path, "hashed:{SHA256}%s\nplain:%s\n" % (digest, PASSWORD))
    ms = start_tls(start, certs, "--auth-file", users)
    with smtp_tls(ms) as s:
        assert auth_exchange(s, "PLAIN", "nobody", PASSWORD)[0] == 535
        # CRAM-MD5 cannot check a hashed entry
        assert auth_exchange(s, "CRAM-MD5", "hashed", PASSWORD)[0] == 535
        assert auth_exchange(s, "LOGIN", "hashed", "wrong")[0] == 535
        assert auth_exchange(s, "LOGIN", "hashed", PASSWORD)[0] == 235
    with smtp_tls(ms) as s:
        assert auth_exchange(s, "PLAIN", "hashed", PASSWORD)[0] == 235


def test_auth_accept_any_records_user(start, certs):
    ms = start_tls(start, certs, "--auth-accept-any")
    with smtp_plain(ms) as s:
        s.ehlo()
        assert not s.has_extn("auth"), "AUTH offered on plaintext"
        code, _ = s.docmd("AUTH", "PLAIN " + b64("\0x\0y"))
        assert code == 538
    with smtp_tls(ms) as s:
        assert s.login("anyone@z.example", "whatever")[0] == 235
        mid = send_one(s, "accept any")
    assert fact(show_json(ms, mid), "auth_user") == "anyone@z.example"


def test_plaintext_auth_refused_538(start, certs):
    ms = start_tls(start, certs, "--auth-accept-any")
    c = Raw(ms.port)
    try:
        c.reply()
        code, lines = c.cmd("EHLO client.test")
        assert not any("AUTH" in ln for ln in lines), lines
        for mech in ("PLAIN " + b64("\0a\0b"), "LOGIN", "CRAM-MD5"):
            assert c.cmd("AUTH " + mech) == (
                538, ["538 5.7.11 Encryption required for requested authentication mechanism"])
    finally:
        c.close()


def test_allow_insecure_auth_esmtpa(start):
    ms = start("--auth-accept-any", "--allow-insecure-auth")
    with smtp_plain(ms) as s:
        s.ehlo()
        assert s.has_extn("auth")
        assert s.login("frank", "pw")[0] == 235
        mid = send_one(s, "insecure")
    obj = show_json(ms, mid)
    assert fact(obj, "auth_user") == "frank"
    assert not fact(obj, "tls_version")
    assert with_keyword(received(ms, mid)) == "ESMTPA"


def test_auth_required(start, certs):
    ms = start_tls(start, certs, "--auth-accept-any", "--auth-required")
    with smtp_tls(ms) as s:
        assert s.docmd("MAIL", "FROM:<a@x.example>") == (
            530, b"5.7.0 Authentication required")
        s.login("gina", "pw")
        mid = send_one(s, "after auth")
    assert fact(show_json(ms, mid), "auth_user") == "gina"
    with Db(ms.db) as db:
        assert db.count() == 1


def test_require_tls(start, certs):
    ms = start_tls(start, certs, "--require-tls")
    with smtp_plain(ms) as s:
        s.ehlo()
        assert s.docmd("MAIL", "FROM:<a@x.example>") == (
            530, b"5.7.0 Must issue a STARTTLS command first")
    with smtp_tls(ms) as s:
        send_one(s, "required tls")


def test_auth_exchange_errors(start, certs):
    """Cancel, bad base64, unknown mechanism, no mechanism, AUTH in a transaction,
    the MAIL AUTH= parameter, over a real TLS session."""
    ms = start_tls(start, certs, "--auth-accept-any")
    c = Raw(ms.port)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        c.starttls()
        c.cmd("EHLO client.test")
        assert c.cmd("AUTH PLAIN")[0] == 334
        assert c.cmd("*") == (501, ["501 5.7.0 Authentication cancelled"])
        assert c.cmd("AUTH LOGIN") == (334, ["334 VXNlcm5hbWU6"])
        assert c.cmd(b64("u")) == (334, ["334 UGFzc3dvcmQ6"])
        assert c.cmd("*") == (501, ["501 5.7.0 Authentication cancelled"])
        assert c.cmd("AUTH PLAIN %%%") == (501, ["501 5.5.2 Error: invalid base64 data"])
        assert c.cmd("AUTH GSSAPI") == (504, ["504 5.5.4 Unrecognized authentication type"])
        assert c.cmd("AUTH") == (501, ["501 5.5.4 Syntax: AUTH mechanism"])
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("AUTH PLAIN " + b64("\0u\0p")) == (
            503, ["503 5.5.1 Error: MAIL transaction in progress"])
        assert c.cmd("RSET")[0] == 250
        assert c.cmd("AUTH PLAIN " + b64("\0hank\0p")) == (
            235, ["235 2.7.0 Authentication successful"])
        assert c.cmd("MAIL FROM:<a@x.example> AUTH=<>")[0] == 250
        assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: auth param\r\n\r\nhi\r\n.\r\n")
        assert c.reply()[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example> AUTH=bad+xtext")[0] == 501
        assert c.cmd("QUIT")[0] == 221
    finally:
        c.close()
    assert fact(show_json(ms, latest_id(ms)), "auth_user") == "hank"


def test_utf8_password(start, certs, tmp_path):
    users = write_auth_file(tmp_path, "uma:%s\n" % UTF8_PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    c = Raw(ms.port)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        c.cmd("STARTTLS")
        c.starttls()
        c.cmd("EHLO client.test")
        assert c.cmd("AUTH PLAIN " + b64("\0uma\0pa55-Word-7x!"))[0] == 535
        assert c.cmd("AUTH LOGIN " + b64("uma")) == (334, ["334 UGFzc3dvcmQ6"])
        assert c.cmd(b64(UTF8_PASSWORD))[0] == 235
        assert c.cmd("QUIT")[0] == 221
    finally:
        c.close()


def test_password_with_nul_refused(start, certs, tmp_path):
    """A password with a NUL and more after it is not the password (RFC 4616: no NUL in
    passwd): PLAIN and LOGIN must not authenticate with the part before the NUL, for
    plain and {SHA256} entries alike."""
    digest = hashlib.sha256(ASCII_PASSWORD.encode()).hexdigest()
    users = write_auth_file(tmp_path, "kim:%s\nlee:{SHA256}%s\n" % (ASCII_PASSWORD, digest))
    ms = start_tls(start, certs, "--auth-file", users)
    for user in ("kim", "lee"):
        c = Raw(ms.port)
        try:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("STARTTLS")
            c.starttls()
            c.cmd("EHLO client.test")
            got = c.cmd("AUTH PLAIN " + b64("\0%s\0%s\0junk" % (user, ASCII_PASSWORD)))
            assert got[0] == 535, (user, got)
            assert c.cmd("AUTH LOGIN " + b64(user))[0] == 334
            got = c.cmd(b64(ASCII_PASSWORD + "\0junk"))
            assert got[0] == 535, (user, got)
            assert c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (user, ASCII_PASSWORD)))[0] == 235
        finally:
            c.close()


def test_cram_md5_challenges_unique(start, certs, tmp_path):
    users = write_auth_file(tmp_path, "ivy:%s\n" % ASCII_PASSWORD)
    ms = start_tls(start, certs, "--auth-file", users)
    seen = set()
    for _ in range(5):
        c = Raw(ms.port)
        try:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("STARTTLS")
            c.starttls()
            c.cmd("EHLO client.test")
            code, lines = c.cmd("AUTH CRAM-MD5")
            assert code == 334, lines
            chal = base64.b64decode(lines[0][4:], validate=True)
            assert re.fullmatch(rb"<[^<>\s]+@[^<>\s]+>", chal), chal
            assert chal not in seen, "challenge repeated: %r" % chal
            seen.add(chal)
            digest = hmac.new(ASCII_PASSWORD.encode(), chal, hashlib.md5).hexdigest()
            assert c.cmd(b64("ivy " + digest))[0] == 235
        finally:
            c.close()


def test_passwords_never_logged(start, certs):
    ms = start_tls(start, certs, "-v", "--auth-accept-any")
    plain_blob = b64("\0judy\0" + PASSWORD)
    with smtp_tls(ms) as s:
        assert s.docmd("AUTH", "PLAIN " + plain_blob)[0] == 235
    with smtp_tls(ms) as s:
        assert auth_exchange(s, "LOGIN", "judy", PASSWORD)[0] == 235
    with smtp_tls(ms) as s:
        assert auth_exchange(s, "CRAM-MD5", "judy", PASSWORD)[0] == 235
        send_one(s, "logged?")
    assert ms.wait_for_line(r"Message accepted|250 2\.0\.0", timeout=10)
    err = ms.stderr()
    for secret in (PASSWORD, plain_blob, b64(PASSWORD), "pa55-"):
        assert secret not in err, "%r in the log:\n%s" % (secret, err)
    assert "***" in err, err


# ==========================================================================================
# Failed handshakes cost only their own session
# ==========================================================================================


def aborted_starttls(port):
    c = Raw(port)
    try:
        c.reply()
        c.cmd("EHLO client.test")
        assert c.cmd("STARTTLS")[0] == 220
        c.send(ABORTED_CLIENTHELLO)
    finally:
        c.close()


def aborted_smtps(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        c.sendall(ABORTED_CLIENTHELLO)
    finally:
        c.close()


def test_aborted_handshakes_leave_server_serving(start, certs):
    ms = start_tls(start, certs, smtps=True)
    # one client stalls in the middle of its handshake and stays connected
    stalled = socket.create_connection(("127.0.0.1", ms.smtps_port), timeout=TIMEOUT)
    stalled.sendall(ABORTED_CLIENTHELLO)
    try:
        with smtp_tls(ms) as s:
            send_one(s, "while one stalls")
        with smtp_ssl(ms, ms.smtps_port) as s:
            s.ehlo()
            send_one(s, "smtps while one stalls")
    finally:
        stalled.close()
    time.sleep(0.5)
    base = count_fds(ms.proc.pid)
    for _ in range(60):
        aborted_starttls(ms.port)
        aborted_smtps(ms.smtps_port)
    # garbage instead of a ClientHello, and a plaintext client on the TLS port
    c = Raw(ms.port)
    c.reply()
    c.cmd("EHLO client.test")
    c.cmd("STARTTLS")
    c.send(b"MAIL FROM:<x@x.example>\r\n" * 4)
    c.close()
    p = socket.create_connection(("127.0.0.1", ms.smtps_port), timeout=TIMEOUT)
    p.sendall(b"EHLO client.test\r\n")
    p.close()
    with smtp_tls(ms) as s:
        send_one(s, "after the aborted ones")
    with smtp_ssl(ms, ms.smtps_port) as s:
        s.ehlo()
        send_one(s, "smtps after the aborted ones")
    assert ms.proc.poll() is None
    # every aborted session was closed: no descriptor left behind
    assert wait_until(lambda: count_fds(ms.proc.pid) <= base + 1, timeout=15), (
        "fds %d before, %d after" % (base, count_fds(ms.proc.pid)))
    with Db(ms.db) as db:
        assert db.count() == 4


def test_handshake_refused_client_then_others(start, certs):
    """A client whose handshake fails (only TLS 1.1) ends only its own session."""
    ms = start_tls(start, certs, smtps=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = client_ctx(minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1)
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, OSError)):
        with smtp_ssl(ms, ms.smtps_port, ctx=old) as s:
            s.ehlo()
    with smtp_ssl(ms, ms.smtps_port) as s:
        s.ehlo()
        send_one(s, "next one")
