"""The HTTP server itself (src/mailsink/http/server.c, events.c, wait.c, static.c) and its
settings: listening (port 0, none, port in use), basic auth, HTTPS, --webroot, CORS, the
router's 404/405/413 and limits, malformed requests, the live events stream
(/api/events) and GET /api/v1/wait.

Self-contained: its own fixture starts mailsink through tests/mailsink/mslib.py (SMTP and
HTTP on 127.0.0.1:0) and requires exit 0 on SIGTERM with no sanitizer report. Every
socket has a timeout, every loop a bound; only 127.0.0.1 is used.
"""

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mailsink"))
import mslib  # noqa: E402

T = 10  # seconds for any single network wait


@pytest.fixture
def run(tmp_path):
    """run(*args, db=True, env=None, http="127.0.0.1:0") starts mailsink; all are stopped
    afterwards and must exit 0 (or ms.expected_exit) without sanitizer output."""
    started = []

    def _run(*args, env=None, http="127.0.0.1:0"):
        argv = ["--smtp", "127.0.0.1:0", "--db", str(tmp_path / "mail.db"),
                "--hostname", mslib.HOSTNAME] + list(args)
        ms = mslib.Mailsink(argv, tmp_path, env=env, db=str(tmp_path / "mail.db"),
                            name="srv-%d" % len(started), http=http)
        started.append(ms)
        return ms

    yield _run
    bad = []
    for ms in started:
        rc = ms.stop() if ms.proc.poll() is None else ms.proc.poll()
        err = ms.stderr()
        print("---- %s (exit %s) ----\n%s" % (" ".join(ms.argv), rc, err[-3000:]))
        if rc != ms.expected_exit or "Sanitizer" in err or "runtime error:" in err:
            bad.append("exit %s, expected %s" % (rc, ms.expected_exit))
    if bad:
        pytest.fail("mailsink did not end cleanly: " + "; ".join(bad))


def request(ms, method, path, body=None, headers=None, base=None, context=None):
    """(status, headers dict with lower-case names, body bytes); one connection each."""
    url = urllib.parse.urlsplit(base or ms.http_url)
    if url.scheme == "https":
        conn = http.client.HTTPSConnection(url.hostname, url.port, timeout=T, context=context)
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=T)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def get(ms, path, **kw):
    return request(ms, "GET", path, **kw)


def raw_http(port, data, read_limit=65536):
    """Send raw bytes, return what comes back until close or timeout (bounded)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    got = b""
    try:
        s.sendall(data)
        for _ in range(100):
            try:
                chunk = s.recv(4096)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            got += chunk
            if len(got) > read_limit:
                break
    finally:
        s.close()
    return got


def open_get(port, target):
    """A socket that has sent "GET target" and is left open (the caller closes it)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    s.sendall(b"GET " + target.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    return s


def http_port(ms):
    return urllib.parse.urlsplit(ms.http_url).port


def send_mail(ms, subject, to="b@y.example"):
    with ms.smtp() as s:
        assert s.sendmail("a@x.example", [to], mslib.simple(subject)) == {}


def bad_config(tmp_path, *args, env_extra=None):
    """Run the server with settings that must be refused: exit 2 and one message."""
    env = mslib.clean_env(tmp_path, env_extra)
    r = subprocess.run([mslib.mailsink_bin(), "--smtp", "127.0.0.1:0", "--db",
                        str(tmp_path / "bad.db")] + list(args), env=env, cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 2, mslib.show(r)
    assert b"listening on" not in r.stderr, mslib.show(r)
    return r.stderr.decode("utf-8", "replace")


# -- listening -------------------------------------------------------------------------------


def test_tests_get_their_own_port_and_the_url_line(run):
    ms = run()
    assert ms.http_url.startswith("http://127.0.0.1:")
    assert http_port(ms) not in (0, 8025)
    assert ms.http_base == ms.http_url + "/"
    status, hdrs, body = get(ms, "/livez")
    assert status == 200, body
    assert hdrs["x-content-type-options"] == "nosniff"
    assert hdrs["referrer-policy"] == "no-referrer"


def test_http_none_turns_it_off(run):
    ms = run(http="none")
    assert ms.http_url is None
    assert "HTTP on" not in ms.stderr()


def test_http_from_environment_and_config_file(run, tmp_path):
    env = mslib.clean_env(tmp_path, {"MAILSINK_HTTP": "127.0.0.1:0"})
    ms = run(env=env, http=None)
    assert ms.http_url and http_port(ms) != 8025
    conf = tmp_path / "ms.conf"
    conf.write_text("http = none\nwebroot = /x\nui-label = hello\nmax-send-size = 2M\n")
    ms2 = run("--config", str(conf), http=None)
    assert ms2.http_url is None


def test_http_settings_from_config_file_apply(run, tmp_path):
    conf = tmp_path / "ms.conf"
    conf.write_text("webroot = box\nui-label = Lab 1\napi-cors = *\n")
    ms = run("--config", str(conf))
    assert ms.http_base.endswith(":%d/box/" % http_port(ms))
    status, hdrs, body = get(ms, "/box/api/v1/webui")
    assert status == 200 and json.loads(body)["Label"] == "Lab 1"
    assert hdrs["access-control-allow-origin"] == "*"


def test_memory_database_is_served_too(run):
    ms = run("--db", ":memory:")
    send_mail(ms, "in memory")
    status, _, body = get(ms, "/api/v1/messages")
    assert status == 200 and json.loads(body)["total"] == 1


def test_ipv6_listener(run):
    if not mslib.have_ipv6():
        pytest.skip("no IPv6 loopback")
    ms = run(http="[::1]:0")
    assert ms.http_url.startswith("http://[::1]:")
    port = http_port(ms)
    conn = http.client.HTTPConnection("::1", port, timeout=T)
    conn.request("GET", "/livez")
    assert conn.getresponse().status == 200
    conn.close()


def test_port_in_use_exits_2(tmp_path):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        err = bad_config(tmp_path, "--http", "127.0.0.1:%d" % port)
        assert "--http 127.0.0.1:%d" % port in err and "in use" in err, err
    finally:
        blocker.close()


@pytest.mark.parametrize("args, words", [
    (["--http", "nonsense"], "--http"),
    (["--http", "127.0.0.1:99999"], "--http"),
    (["--webroot", "a/../b"], "--webroot"),
    (["--webroot", "a b"], "--webroot"),
    (["--webroot", "x<y"], "--webroot"),
    (["--http-tls-cert", "/nonexistent.pem"], "--http-tls-key"),
    (["--http-tls-key", "/nonexistent.pem"], "--http-tls-cert"),
    (["--http-tls-cert", "/nonexistent.pem", "--http-tls-key", "/nonexistent.pem"],
     "/nonexistent.pem"),
    (["--http-auth-file", "/nonexistent-users"], "--http-auth-file"),
    (["--max-send-size", "12X"], "--max-send-size"),
    (["--max-send-size", "10"], "--max-send-size"),
    (["--ui-label", "a\x1bb"], "--ui-label"),
    (["--api-cors", "x\ny"], "--api-cors"),
])
def test_bad_http_settings_exit_2(tmp_path, args, words):
    err = bad_config(tmp_path, *args)
    assert words in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_bad_http_setting_from_environment(tmp_path):
    err = bad_config(tmp_path, env_extra={"MAILSINK_WEBROOT": "../up"})
    assert "MAILSINK_WEBROOT" in err, err


def test_auth_file_with_bad_line_exits_2(tmp_path):
    users = tmp_path / "users"
    users.write_text("no-colon-here\n")
    err = bad_config(tmp_path, "--http-auth-file", str(users))
    assert "--http-auth-file " in err and "line 1" in err and "--auth-file " not in err, err


def test_help_and_man_page_name_the_options(tmp_path):
    r = mslib.cli(tmp_path, "--help")
    assert r.returncode == 0
    man = open(os.path.join(mslib.REPO, "docs", "mailsink.1")).read()
    for opt in ("--http", "--http-auth-file", "--http-tls-cert", "--http-tls-key",
                "--webroot", "--api-cors", "--ui-label", "--max-send-size"):
        assert opt.encode() in r.stdout, opt
        assert opt.replace("-", "\\-") in man, opt


# -- basic auth ------------------------------------------------------------------------------


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


def test_basic_auth(run, tmp_path):
    users = tmp_path / "users"
    digest = hashlib.sha256(b"hashed pw").hexdigest()
    users.write_text("alice:s3cret\nbob:{SHA256}%s\n" % digest)
    ms = run("--http-auth-file", str(users))
    status, hdrs, body = get(ms, "/api/v1/info")
    assert status == 401
    assert hdrs["www-authenticate"].startswith('Basic realm="mailsink"')
    assert b"alice" not in body and b"s3cret" not in body
    for who, pw in [("alice", "wrong"), ("alice", "s3cret "), ("nobody", "s3cret"),
                    ("bob", digest), ("", "")]:
        assert get(ms, "/api/v1/messages", headers=basic(who, pw))[0] == 401, (who, pw)
    for bad in ["Basic", "Basic !!!!", "Basic " + "A" * 5000, "Bearer x", "Basic YWxpY2U="]:
        assert get(ms, "/api/v1/messages", headers={"Authorization": bad})[0] == 401, bad
    assert get(ms, "/", headers=basic("alice", "s3cret"))[0] == 200
    assert get(ms, "/api/v1/messages", headers=basic("alice", "s3cret"))[0] == 200
    assert get(ms, "/api/v1/messages", headers=basic("bob", "hashed pw"))[0] == 200
    assert get(ms, "/")[0] == 401
    # health checks stay open
    assert get(ms, "/livez")[0] == 200
    assert get(ms, "/readyz")[0] == 200


# -- HTTPS -----------------------------------------------------------------------------------


def make_cert(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("no openssl tool")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    assert r.returncode == 0, r.stderr
    return str(cert), str(key)


def test_https(run, tmp_path):
    cert, key = make_cert(tmp_path)
    ms = run("--http-tls-cert", cert, "--http-tls-key", key)
    assert ms.http_url.startswith("https://127.0.0.1:")
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False
    status, hdrs, body = get(ms, "/livez", context=ctx)
    assert status == 200 and body == b"ok"
    # plain HTTP on the HTTPS port gets no HTTP answer, and the server lives on
    got = raw_http(http_port(ms), b"GET /livez HTTP/1.0\r\n\r\n")
    assert b"200 OK" not in got
    # TLS 1.2 or later only (the client's own library may refuse older versions too,
    # so what is checked is what a default client gets)
    with socket.create_connection(("127.0.0.1", http_port(ms)), timeout=T) as raw:
        with ctx.wrap_socket(raw) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    assert get(ms, "/livez", context=ctx)[0] == 200


def test_https_key_not_matching_exits_2(tmp_path):
    cert, _ = make_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, key2 = make_cert(other)
    err = bad_config(tmp_path, "--http-tls-cert", cert, "--http-tls-key", key2)
    assert "--http-tls-key" in err, err


# -- webroot, static files, security headers -------------------------------------------------


def test_webroot(run):
    ms = run("--webroot", "mail//box")
    assert ms.http_base.endswith("/mail/box/"), ms.stderr()
    assert get(ms, "/mail/box/livez")[0] == 200
    assert get(ms, "/livez")[0] == 404
    assert get(ms, "/api/v1/messages")[0] == 404
    assert get(ms, "/mail/boxer/livez")[0] == 404
    status, hdrs, _ = get(ms, "/mail/box")
    assert status in (301, 302, 307, 308) and hdrs["location"] == "/mail/box/"
    status, hdrs, body = get(ms, "/mail/box/")
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    assert b"{{WEBROOT}}" not in body
    assert get(ms, "/mail/box/api/v1/messages")[0] == 200


def test_ui_files_and_headers(run):
    ms = run()
    status, hdrs, body = get(ms, "/")
    assert status == 200 and hdrs["content-type"].startswith("text/html")
    assert b"{{WEBROOT}}" not in body
    csp = hdrs["content-security-policy"]
    for part in ("default-src 'self'", "script-src 'self'", "object-src 'none'",
                 "frame-ancestors 'self'"):
        assert part in csp
    assert hdrs["cache-control"] == "no-cache"
    etag = hdrs["etag"]
    status, hdrs2, body2 = get(ms, "/", headers={"If-None-Match": etag})
    assert status == 304 and body2 == b""
    assert get(ms, "/index.html")[0] == 200
    # a client-side route gets the page; a missing file does not
    status, _, body3 = get(ms, "/some/ui/route")
    assert status == 200 and body3 == body
    assert get(ms, "/missing.js")[0] == 404
    assert get(ms, "/../../etc/passwd")[0] in (400, 404)
    status, hdrs, _ = request(ms, "HEAD", "/")
    assert status == 200


def test_head_sends_no_body_on_a_keep_alive_connection(run):
    """A HEAD answer has the GET's headers and length but no body: a body would be read
    as the start of the next reply on the same connection (libevent sends whatever it
    is given). Raw socket, so nothing in a client library hides stray bytes."""
    ms = run()
    with socket.create_connection(("127.0.0.1", http_port(ms)), timeout=T) as s:
        s.sendall(b"HEAD /api/v1/messages HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    replies = data.split(b"HTTP/1.1 ")
    assert replies[0] == b"" and len(replies) == 4, data[:600]
    head1, head2, last = replies[1:]
    for head in (head1, head2):
        assert head.startswith(b"200"), head[:200]
        top, _, rest = head.partition(b"\r\n\r\n")
        assert rest == b"", "a HEAD reply carried a body: %r" % rest[:200]
        assert b"content-length: " in top.lower()
    assert last.startswith(b"200") and last.endswith(b"\r\n\r\nok")


def test_keep_alive_replies_do_not_stall(run):
    """TCP_NODELAY: without it, the end of a multi-segment reply on a keep-alive
    connection waits ~40 ms for the client's delayed ACK."""
    web = os.path.join(mslib.REPO, "src", "mailsink", "web")
    name = max(os.listdir(web), key=lambda n: os.path.getsize(os.path.join(web, n)))
    if os.path.getsize(os.path.join(web, name)) < 20000:
        pytest.skip("no large enough UI file")
    ms = run()
    conn = http.client.HTTPConnection("127.0.0.1", http_port(ms), timeout=T)
    times = []
    try:
        for _ in range(9):
            t0 = time.monotonic()
            conn.request("GET", "/" + name)
            r = conn.getresponse()
            assert r.status == 200 and len(r.read()) > 20000
            times.append(time.monotonic() - t0)
    finally:
        conn.close()
    assert sorted(times)[4] < 0.025, times


# -- the router ------------------------------------------------------------------------------


def test_unknown_api_route_is_404(run):
    ms = run()
    assert get(ms, "/api/v1/nothing")[0] == 404
    assert get(ms, "/api/v2/messages")[0] == 404
    assert get(ms, "/api/v1/message/x%2Fy")[0] == 404


def test_wrong_method_is_405_with_allow(run):
    ms = run()
    status, hdrs, _ = request(ms, "POST", "/api/v1/messages", body=b"{}")
    assert status == 405
    allow = [m.strip() for m in hdrs["allow"].split(",")]
    assert {"GET", "PUT", "DELETE"} <= set(allow) and "POST" not in allow
    status, hdrs, _ = request(ms, "DELETE", "/api/v1/info")
    assert status == 405 and "GET" in hdrs["allow"]
    status, hdrs, _ = request(ms, "GET", "/api/v1/send")
    assert status == 405 and hdrs["allow"] == "POST"
    assert request(ms, "PATCH", "/api/v1/messages")[0] in (405, 501)
    assert request(ms, "PUT", "/index.html", body=b"x")[0] == 405


def test_bad_query_string_is_400(run):
    ms = run()
    assert get(ms, "/api/v1/messages?limit=%00")[0] == 400
    assert get(ms, "/api/v1/messages?" + "&".join("p%d=1" % i for i in range(100)))[0] == 400
    assert get(ms, "/api/v1/messages?flag")[0] == 200


def test_cors(run):
    ms = run("--api-cors", "http://app.example:3000")
    status, hdrs, _ = request(ms, "OPTIONS", "/api/v1/messages", headers={
        "Origin": "http://app.example:3000", "Access-Control-Request-Method": "DELETE"})
    assert status == 200
    assert hdrs["access-control-allow-origin"] == "http://app.example:3000"
    assert "DELETE" in hdrs["access-control-allow-methods"]
    assert "content-type" in hdrs["access-control-allow-headers"].lower()
    status, hdrs, _ = get(ms, "/api/v1/messages", headers={"Origin": "http://app.example:3000"})
    assert status == 200 and hdrs["access-control-allow-origin"] == "http://app.example:3000"
    assert "access-control-allow-origin" not in get(ms, "/")[1]


def test_no_cors_by_default(run):
    ms = run()
    status, hdrs, _ = get(ms, "/api/v1/messages", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in hdrs
    assert request(ms, "OPTIONS", "/api/v1/messages")[0] != 200


def test_huge_post_is_413(run):
    ms = run("--max-send-size", "2k")
    body = json.dumps({"From": {"Email": "a@x.example"}, "Text": "x" * 50000}).encode()
    status = None
    try:
        status = request(ms, "POST", "/api/v1/send", body=body,
                         headers={"Content-Type": "application/json"})[0]
    except (ConnectionError, http.client.HTTPException):
        pass  # the server may close before reading it all; then it must still serve
    assert status in (413, None)
    got = raw_http(http_port(ms), b"POST /api/v1/send HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Length: 99999999\r\n\r\n")
    assert b" 413 " in got.split(b"\r\n")[0]
    assert get(ms, "/livez")[0] == 200


def test_huge_headers_and_malformed_requests(run):
    ms = run()
    port = http_port(ms)
    got = raw_http(port, b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200000 +
                   b"\r\n\r\n")
    assert got == b"" or got.split(b" ")[1][:1] == b"4", got[:200]
    got = raw_http(port, b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n")
    assert got == b"" or got.split(b" ")[1][:1] == b"4", got[:200]
    for junk in [b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\r\n\r\n",
                 b"GET / HTTP/9.9\r\n\r\n", b"GET http://[::1 HTTP/1.1\r\n\r\n",
                 b"POST /api/v1/send HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                 b"POST /api/v1/send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"]:
        got = raw_http(port, junk)
        assert got == b"" or b" 200 " not in got.split(b"\r\n")[0], (junk, got[:200])
    # a client that sends half a request and goes away
    s = socket.create_connection(("127.0.0.1", port), timeout=T)
    s.sendall(b"GET /livez HTTP/1.1\r\nHost:")
    s.close()
    assert get(ms, "/livez")[0] == 200


# -- live events -----------------------------------------------------------------------------


class EventStream:
    """A raw /api/events client: parses the stream into (event, data) pairs."""

    def __init__(self, ms, path="/api/events"):
        self.sock = socket.create_connection(("127.0.0.1", http_port(ms)), timeout=T)
        self.sock.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: x\r\n\r\n")
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ")[1])
        self.headers = head.decode("latin-1").lower()

    def _until(self, sep, deadline=None):
        deadline = deadline or time.monotonic() + T
        for _ in range(10000):
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            if time.monotonic() > deadline:
                break
            self.sock.settimeout(max(0.05, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        raise AssertionError("no %r in time; have %r" % (sep, self.buf[:500]))

    def next_event(self, want, timeout=T):
        """The data (parsed JSON) of the next event named want; others are skipped."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            block = self._until(b"\n\n", deadline).decode("utf-8")
            name, data = None, None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
            if name == want:
                return json.loads(data)
        raise AssertionError("no %s event" % want)

    def close(self):
        self.sock.close()


def test_events_stream_new_message(run):
    ms = run()
    ev = EventStream(ms)
    try:
        assert ev.status == 200
        assert "content-type: text/event-stream" in ev.headers
        assert ev._until(b"\n\n") == b"retry: 2000"
        send_mail(ms, "live one")
        data = ev.next_event("new")
        assert data["Subject"] == "live one"
        assert data["To"] == [{"Name": "", "Address": "b@y.example"}]
        stats = ev.next_event("stats")
        assert stats["Total"] == 1 and stats["Unread"] == 1
        request(ms, "DELETE", "/api/v1/messages")
        assert ev.next_event("stats")["Total"] == 0
    finally:
        ev.close()


def test_events_streams_closed_abruptly_leave_nothing(run):
    ms = run()
    port = http_port(ms)
    # more than the 256-stream cap, one after another: each closed stream must be freed
    for i in range(300):
        s = open_get(port, "/api/events")
        head = s.recv(4096)
        assert b" 200 " in head.split(b"\r\n")[0], (i, head[:200])
        if i % 2:  # RST instead of FIN
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    # many at once, then a mail while some are half-gone
    socks = []
    for _ in range(40):
        s = open_get(port, "/api/events")
        socks.append(s)
    for s in socks[:20]:
        s.close()
    send_mail(ms, "while closing")
    for s in socks[20:]:
        s.close()
    ev = EventStream(ms)
    assert ev.status == 200
    send_mail(ms, "after")
    # "while closing" may still be on its way to the HTTP thread: skip it
    subjects = [ev.next_event("new")["Subject"]]
    if subjects[0] != "after":
        subjects.append(ev.next_event("new")["Subject"])
    assert subjects[-1] == "after" and set(subjects) <= {"while closing", "after"}
    ev.close()
    assert get(ms, "/livez")[0] == 200


def test_events_slow_reader_is_disconnected(run):
    """A client that never reads: once more than about 1 MiB waits for it, the server
    closes its stream (and nothing else suffers)."""
    ms = run()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(T)
    s.connect(("127.0.0.1", http_port(ms)))
    s.sendall(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
    folded = b"\r\n ".join([b"x" * 70] * 900)  # a 63 KB subject, folded
    msg = b"From: a@x.example\r\nTo: b@y.example\r\nSubject: " + folded + b"\r\n\r\nhi\r\n"
    with ms.smtp() as c:
        for _ in range(120):  # about 7.5 MB of "new" events
            assert c.sendmail("a@x.example", ["b@y.example"], msg) == {}
    assert get(ms, "/livez")[0] == 200
    # drain: the stream must end (EOF) instead of going on for ever
    total, deadline, eof = 0, time.monotonic() + 30, False
    for _ in range(100000):
        if time.monotonic() > deadline:
            break
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            eof = True
            break
        if not chunk:
            eof = True
            break
        total += len(chunk)
    s.close()
    assert eof, "stream still open after %d octets" % total
    assert total < 7000000, total
    ev = EventStream(ms)
    assert ev.status == 200
    ev.close()


def test_events_cap_answers_503(run):
    ms = run()
    streams = []
    try:
        for _ in range(256):
            streams.append(EventStream(ms))
        extra = EventStream(ms)
        assert extra.status == 503
        extra.close()
        streams.pop().close()
        ok = mslib.wait_until(lambda: _stream_status(ms) == 200, timeout=T, interval=0.1)
        assert ok
    finally:
        for s in streams:
            s.close()


def _stream_status(ms):
    s = EventStream(ms)
    s.close()
    return s.status


# -- wait --------------------------------------------------------------------------------------


def test_wait_answers_at_once_when_matching(run):
    ms = run()
    send_mail(ms, "already here")
    t0 = time.monotonic()
    status, hdrs, body = get(ms, "/api/v1/wait?query=" + urllib.parse.quote(
        'subject:"already here"') + "&timeout=20")
    assert status == 200, body
    assert time.monotonic() - t0 < 5
    doc = json.loads(body)
    assert doc["messages_count"] == 1
    assert doc["messages"][0]["Subject"] == "already here"


def test_wait_returns_after_a_send(run):
    ms = run()
    result = {}

    def waiter():
        result["r"] = get(ms, "/api/v1/wait?query=to:later%40y.example&count=2&timeout=30")
        result["t"] = time.monotonic()

    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.5)
    send_mail(ms, "first", to="later@y.example")
    send_mail(ms, "unrelated", to="other@y.example")
    time.sleep(0.3)
    assert "r" not in result  # one of two is not enough
    t_send = time.monotonic()
    send_mail(ms, "second", to="later@y.example")
    th.join(T + 5)
    assert not th.is_alive()
    status, _, body = result["r"]
    assert status == 200, body
    assert result["t"] - t_send < 5
    assert json.loads(body)["messages_count"] == 2


def test_wait_times_out_with_408(run):
    ms = run()
    t0 = time.monotonic()
    status, hdrs, body = get(ms, "/api/v1/wait?query=subject:never&timeout=1")
    assert status == 408 and hdrs["content-type"].startswith("text/plain")
    assert 0.8 < time.monotonic() - t0 < 8
    assert get(ms, "/api/v1/wait?timeout=0")[0] == 408  # nothing stored yet


@pytest.mark.parametrize("qs", ["timeout=301", "timeout=-1", "timeout=x", "count=abc",
                                "query=before:notadate"])
def test_wait_bad_parameters_are_400(run, qs):
    ms = run()
    assert get(ms, "/api/v1/wait?" + qs)[0] == 400


def test_wait_client_gone_and_stop_with_waiters(run):
    ms = run()
    port = http_port(ms)
    for _ in range(50):  # waiters whose clients vanish
        s = open_get(port, "/api/v1/wait?timeout=60")
        s.close()
    held = []
    for _ in range(5):  # waiters still there at SIGTERM get an answer, not a hang
        s = open_get(port, "/api/v1/wait?timeout=60")
        held.append(s)
    time.sleep(0.3)
    send_mail(ms, "wakes everyone")  # the vanished ones must not be answered
    for s in held:
        assert b" 200 " in s.recv(4096).split(b"\r\n")[0]
        s.close()
    held = []
    for _ in range(3):
        s = open_get(port, "/api/v1/wait?query=subject:never&timeout=60")
        held.append(s)
    time.sleep(0.3)
    assert ms.stop() == 0
    for s in held:
        got = s.recv(4096)
        assert got == b"" or b" 503 " in got.split(b"\r\n")[0]
        s.close()
