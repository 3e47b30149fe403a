#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/).

Run from anywhere: python3 tests/fuzz/make_corpus.py. The files are checked in; this
script documents how they were made and the input layout of each target.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def session(ctrl=0, drv=0, script=b"\0" * 8, cuts=b"", text=b""):
    """fuzz_session: [ctrl][drv][8 script bytes][2 bytes per cut][client bytes]."""
    assert len(script) == 8 and len(cuts) == 2 * (drv & 7)
    return bytes([ctrl, drv]) + script + cuts + text


MSG = (b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@c.example>\r\n"
       b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hello\r\n\r\n"
       b"Hello,\r\n..a stuffed line\r\n.\r\nbye\r\n.\r\n")

BASIC = (b"EHLO client.example\r\nMAIL FROM:<a@example.com>\r\n"
         b"RCPT TO:<b@example.com>\r\nDATA\r\n" + MSG + b"QUIT\r\n")

write("fuzz_session", "basic", session(text=BASIC))
write("fuzz_session", "basic-cut", session(drv=3, cuts=b"\x00\x05\x00\x30\x00\x60",
                                           text=BASIC))
write("fuzz_session", "helo", session(text=b"HELO client\r\nMAIL FROM:<>\r\n"
                                      b"RCPT TO:<postmaster>\r\nDATA\r\n" + MSG + b"QUIT\r\n"))
write("fuzz_session", "pipelined", session(text=(
    b"EHLO c.example\r\nMAIL FROM:<a@example.com> SIZE=500 BODY=7BIT\r\n"
    b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n"
    b"DATA\r\n" + MSG + b"MAIL FROM:<e@example.com>\r\nRCPT TO:<f@example.com>\r\n"
    b"RSET\r\nNOOP\r\nQUIT\r\n")))
SMUGGLE = (b"EHLO c.example\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
           b"DATA\r\nSubject: x\r\n\r\nbody\n.\nMAIL FROM:<evil@example.com>\n"
           b"x\r.\r\ny\n.\r\nz\r\n.\r\nQUIT\r\n")
for mode in range(3):
    write("fuzz_session", "smuggle-%d" % mode, session(ctrl=mode, text=SMUGGLE))
write("fuzz_session", "utf8", session(text=(
    "EHLO c.example\r\nMAIL FROM:<jörg@exämple.com> SMTPUTF8 BODY=8BITMIME\r\n"
    "RCPT TO:<пример@почта.рф>\r\nDATA\r\nSubject: café\r\n\r\n日本語\r\n.\r\n"
    "MAIL FROM:<jörg@example.com>\r\nQUIT\r\n").encode()))
write("fuzz_session", "errors", session(text=(
    b"MAIL FROM:<a@example.com>\r\nEHLO\r\nEHLO not_a_domain!\r\nRCPT TO:<b@example.com>\r\n"
    b"DATA\r\nBOGUS\r\nVRFY\r\nVRFY someone\r\nEXPN list\r\nHELP\r\nNOOP\nNOOP\r\n"
    b"NO\0OP\r\nNOOP \xc3\r\nMAIL FROM:<a@@b>\r\nMAIL FROM:<a@b.example> FOO=1\r\n"
    b"MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\nMAIL FROM: a@b.example\r\n"
    b"RCPT TO:<>\r\nRCPT TO:<b@c.example> NOTIFY=NEVER\r\nDATA x\r\nRSET x\r\n"
    b"QUIT x\r\n" + b"NOOP " + b"x" * 600 + b"\r\nQUIT\r\n")))
write("fuzz_session", "limits", session(ctrl=4, text=(
    b"EHLO c.example\r\nMAIL FROM:<a@example.com> SIZE=2000\r\n"
    b"MAIL FROM:<a@example.com> SIZE=1000\r\nRCPT TO:<b@example.com>\r\n"
    b"RCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n"
    + (b"y" * 900 + b"\r\n") * 2 + b".\r\nNOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n")))
write("fuzz_session", "pending", session(script=b"\x05\x05\x05\x05\x05\x05\x05\x00",
                                         text=BASIC))
write("fuzz_session", "pending-cut", session(drv=2, script=b"\x05\x00\x05\x02\x05\x01\x05\x03",
                                             cuts=b"\x00\x40\x00\x50", text=BASIC))
write("fuzz_session", "custom-replies", session(script=b"\x06\x41\x0e\x83\x16\x05\x1e\x00",
                                                text=BASIC))
write("fuzz_session", "chunks", session(ctrl=0x80, drv=0x80, text=BASIC))
write("fuzz_session", "rejects", session(script=b"\x03\x04\x03\x00\x04\x03\x00\x04",
                                         text=BASIC + BASIC))
write("fuzz_session", "paths", session(ctrl=0x10, text=(
    b"EHLO [IPv6:2001:db8::1]\r\nMAIL FROM:<@a.example,@b.example:u@d.example>\r\n"
    b"RCPT TO:<\"john doe\"@example.com>\r\nRCPT TO:<\"a>b\"@[192.0.2.1]>\r\n"
    b"RCPT TO:<x@[IPv6:::ffff:192.0.2.1]>\r\nRCPT TO:<postmaster@fuzz.example>\r\n"
    b"DATA\r\n" + MSG + b"QUIT\r\n")))
write("fuzz_session", "no-options", session(ctrl=0x78, drv=0x28, text=BASIC))
write("fuzz_session", "busy", session(drv=0x40, text=BASIC))

def parse(sel, outsize, text):
    """fuzz_parse: [what to run][xtext out size][text]."""
    return bytes([sel, outsize]) + text

for i, t in enumerate([
        b"FROM:<a@example.com> SIZE=100 BODY=8BITMIME",
        b"TO:<@a,@b:\"x y\"@[IPv6:2001:db8::1]> NOTIFY=NEVER ORCPT=rfc822;b@c",
        b"FROM: <\"a\\\"b>\"@[192.0.2.1]> SMTPUTF8",
        b"TO:<Postmaster>",
        "FROM:<jörg@exämple.com> SMTPUTF8".encode(),
        b"FROM:a@b.c AUTH=<> X-1=2",
        b"abc+2Bdef+3D+C3+A9",
        b"[IPv6:::ffff:192.0.2.1]",
        b"[x-tag:any.text]",
        b"postmaster@mx.example",
        b"18446744073709551615",
        b"caf\xc3\xa9 \xf0\x9f\x98\x80 \xed\xa0\x80",
        b"yes"]):
    write("fuzz_parse", "seed-%02d" % i, parse(0xff, 64, t))

def body(mode, max_line, data):
    """fuzz_body: [mode | 4 for 8BITMIME][max line - 3][0 cuts][data]."""
    return bytes([mode, max_line - 3, 0]) + data

write("fuzz_body", "message", body(0, 80, MSG))
write("fuzz_body", "stuffed", body(0, 80, b"..a\r\n...\r\n.b\r\n. \r\n.\r\n"))
write("fuzz_body", "bare-reject", body(0, 80, b"a\nb\rc\r\r\n.\n.\r.\r\n\n.\r\nx\r\n.\r\n"))
write("fuzz_body", "bare-normalize", body(1, 80, b"a\nb\rc\r\r\n.\n.\r.\r\n\n.\r\nx\r\n.\r\n"))
write("fuzz_body", "bare-accept", body(2, 80, b"a\nb\rc\r\r\n.\n.\r.\r\n\n.\r\nx\r\n.\r\n"))
write("fuzz_body", "long-line", body(0, 10, b"x" * 100 + b"\r\n" + b"y" * 9 + b"\r\n.\r\n"))
write("fuzz_body", "8bit", body(4, 80, "Subject: café\r\n\r\n日本\r\n.\r\n".encode()))
write("fuzz_body", "empty", body(0, 80, b".\r\n"))

# ---- fuzz_sasl: [ctrl][drv][8 script bytes][2 bytes per cut][client bytes] ----------------
# ctrl bit 5 unset: the harness sends "EHLO fuzz" first; bit 6: on_log (transcript checks).
import base64


def b64(s):
    return base64.b64encode(s).decode().encode()


def sasl(text, ctrl=0x40, drv=0, script=b"\0" * 8, cuts=b""):
    assert len(script) == 8 and len(cuts) == 2 * (drv & 7)
    return bytes([ctrl, drv]) + script + cuts + text


PLAIN = b64(b"\0user\0secret")
write("fuzz_sasl", "plain-initial", sasl(b"AUTH PLAIN " + PLAIN + b"\r\nMAIL FROM:<a@example.com>\r\n"
                                         b"RCPT TO:<b@example.com>\r\nDATA\r\n" + MSG + b"QUIT\r\n",
                                         ctrl=0x48))
write("fuzz_sasl", "plain-authzid", sasl(b"AUTH PLAIN " + b64(b"admin\0user\0secret") + b"\r\n"))
write("fuzz_sasl", "plain-continue", sasl(b"AUTH PLAIN\r\n" + PLAIN + b"\r\nQUIT\r\n"))
write("fuzz_sasl", "plain-empty", sasl(b"AUTH PLAIN =\r\nAUTH PLAIN\r\n=\r\n"))
write("fuzz_sasl", "plain-nul-password", sasl(b"AUTH PLAIN " + b64(b"\0user\0sec\0ret") + b"\r\n"))
write("fuzz_sasl", "login", sasl(b"AUTH LOGIN\r\n" + b64(b"user") + b"\r\n" + b64(b"secret") +
                                 b"\r\nMAIL FROM:<a@example.com>\r\n", ctrl=0x49))
write("fuzz_sasl", "login-initial", sasl(b"AUTH LOGIN " + b64(b"user") + b"\r\n" + b64(b"secret") +
                                         b"\r\n"))
write("fuzz_sasl", "login-cancel", sasl(b"AUTH LOGIN\r\n*\r\nAUTH LOGIN\r\n" + b64(b"u") + b"\r\n*\r\n"))
write("fuzz_sasl", "cram-md5", sasl(b"AUTH CRAM-MD5\r\n" +
                                    b64(b"user 0123456789abcdef0123456789abcdef") + b"\r\n",
                                    ctrl=0x42))
write("fuzz_sasl", "cram-initial", sasl(b"AUTH CRAM-MD5 " + b64(b"x") + b"\r\n"))
write("fuzz_sasl", "bad-base64", sasl(b"AUTH PLAIN AHVz=ZXI\r\nAUTH LOGIN\r\n!!!!\r\n"
                                      b"AUTH LOGIN\r\n" + b64(b"user") + b"\r\nc2Vj\r\n"))
write("fuzz_sasl", "pending", sasl(b"AUTH PLAIN " + PLAIN + b"\r\nAUTH LOGIN\r\n",
                                   script=b"\x04\x02\0\0\0\0\0\0"))
write("fuzz_sasl", "pending-late", sasl(b"AUTH LOGIN\r\n" + b64(b"user") + b"\r\n" + b64(b"pw") +
                                        b"\r\n", drv=0x08, script=b"\x05\x01\x01\x01\x01\x01\x01\x01"))
write("fuzz_sasl", "rejected-then-ok", sasl(b"AUTH PLAIN " + PLAIN + b"\r\nAUTH PLAIN " + PLAIN +
                                            b"\r\nAUTH PLAIN " + PLAIN + b"\r\n",
                                            script=b"\x02\x03\x00\0\0\0\0\0"))
write("fuzz_sasl", "no-tls", sasl(b"AUTH PLAIN " + PLAIN + b"\r\n", ctrl=0x44))
write("fuzz_sasl", "tls", sasl(b"AUTH PLAIN " + PLAIN + b"\r\n", ctrl=0xc4))
write("fuzz_sasl", "before-ehlo", sasl(b"AUTH PLAIN " + PLAIN + b"\r\nHELO c\r\nAUTH LOGIN\r\n",
                                       ctrl=0x60))
write("fuzz_sasl", "cut", sasl(b"AUTH LOGIN\r\n" + b64(b"user") + b"\r\n" + b64(b"secret") + b"\r\n",
                               drv=2, cuts=b"\x00\x07\x00\x10"))
write("fuzz_sasl", "long-response", sasl(b"AUTH PLAIN\r\n" + b"QUFB" * 3500 + b"\r\nNOOP\r\n"))


# ---- fuzz_cli: NUL-separated argv[1..], an empty string, then environment entries --------
def cli(args, env=()):
    data = b"\0".join(args)
    if env:
        data += b"\0\0" + b"\0".join(env)
    return data


write("fuzz_cli", "serve", cli([b"--smtp", b"127.0.0.1:1025", b"--smtp", b"[::1]:2525",
                                b"--http", b"127.0.0.1:8025", b"--db", b"/tmp/m.db"]))
write("fuzz_cli", "limits", cli([b"--max-message-size=10M", b"--max-recipients", b"5",
                                 b"--max-age", b"1h30m", b"--max-messages", b"100",
                                 b"--command-timeout=5m", b"--bare-lf", b"normalize", b"-vv"]))
write("fuzz_cli", "execs", cli([b"--deliver-exec", b"/usr/bin/env FOO='a b' \"c\\\"d\" e\\ f",
                                b"--validate-recipient-exec=/bin/true", b"--exec-timeout", b"30s"]))
write("fuzz_cli", "rules", cli([b"--accept-rcpt", b"*@example.com", b"--reject-sender",
                                b"spam@*", b"--allow-host", b"192.0.2.0/24", b"--deny-host",
                                b"2001:db8::/32"]))
write("fuzz_cli", "tls-auth", cli([b"--smtps", b"127.0.0.1:1465", b"--tls-self-signed",
                                   b"--allow-insecure-auth", b"--auth-accept-any",
                                   b"--auth-required", b"--require-tls", b"--hostname", b"mx.example"]))
write("fuzz_cli", "http", cli([b"--http", b"none", b"--webroot", b"/mail/", b"--api-cors", b"*",
                               b"--ui-label", b"dev", b"--max-send-size", b"1M",
                               b"--log-format", b"json"]))
write("fuzz_cli", "list", cli([b"list", b"--json", b"subject:hello from:alice"]))
write("fuzz_cli", "show", cli([b"show", b"latest"]))
write("fuzz_cli", "delete", cli([b"delete", b"--all", b"--db", b":memory:"]))
write("fuzz_cli", "wait", cli([b"wait", b"--to", b"bob@example.com", b"--subject", b"hi",
                               b"--count", b"3", b"--timeout", b"10"]))
write("fuzz_cli", "help", cli([b"--help"]))
write("fuzz_cli", "version", cli([b"--version", b"--bogus"]))
write("fuzz_cli", "env", cli([b"list"], [b"MAX_RECIPIENTS:5", b"SMTP:127.0.0.1:25, [::1]:26",
                                         b"BARE_LF:accept", b"VERBOSE:2", b"XDG_DATA_HOME=/var/x",
                                         b"REQUIRE_TLS:yes", b"MAX_AGE:30d"]))
write("fuzz_cli", "errors", cli([b"--max-recipients", b"x", b"--smtp", b"nope", b"--", b"-x"]))


# ---- fuzz_config: [which command line][file bytes] --------------------------------------
CONFIG = (b"# mailsink.conf\n"
          b"smtp = 127.0.0.1:1025\n"
          b"smtp = [::1]:1025\n"
          b"http = 127.0.0.1:8025\n"
          b"db = /var/lib/mailsink/mailsink.db\n"
          b"hostname = mx.example\n"
          b"max-message-size = 25M\n"
          b"max-recipients = 50\n"
          b"max-age = 7d\n"
          b"bare-lf = normalize\n"
          b"verbose = yes\n"
          b"  accept-rcpt = *@example.com  \n"
          b"reject-sender=spam@*\r\n"
          b"allow-host = 10.0.0.0/8\n"
          b"deliver-exec = /usr/local/bin/hook --flag 'quoted arg'\n"
          b"allow-insecure-auth = yes\n"
          b"auth-accept-any = no\n"
          b"log-format = json\n"
          b"webroot = /mail\n")
write("fuzz_config", "full", b"\0" + CONFIG)
write("fuzz_config", "list", b"\1" + CONFIG)
write("fuzz_config", "override", b"\2max-recipients = 9\nsmtp = 0.0.0.0:25\n")
write("fuzz_config", "env", b"\3# only comments\n\n   \n\t# indented\n")
write("fuzz_config", "errors", b"\0smtp = nowhere\n")
write("fuzz_config", "unknown", b"\0foo = bar\n")
write("fuzz_config", "no-equals", b"\0max-recipients 5\n")
write("fuzz_config", "config-key", b"\0config = /etc/other\n")
write("fuzz_config", "durations", b"\0command-timeout = 1h30m\ndata-timeout = 90s\nstop-grace = 0\n"
      b"exec-timeout = 1d\nmax-age = 18446744073709551615\n")
write("fuzz_config", "sizes", b"\0max-message-size = 1G\nmax-send-size = 1024k\n")
write("fuzz_config", "tls", b"\0tls-cert = /nonexistent/cert.pem\ntls-key = /nonexistent/key.pem\n"
      b"smtps = 127.0.0.1:1465\n")


# ---- fuzz_http: the bytes of one connection ---------------------------------------------
def http(method, target, body=b"", headers=()):
    h = [b"%s %s HTTP/1.1" % (method, target), b"Host: 127.0.0.1"] + list(headers)
    if body:
        h += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    return b"\r\n".join(h) + b"\r\n\r\n" + body


write("fuzz_http", "list", http(b"GET", b"/api/v1/messages?start=0&limit=50"))
write("fuzz_http", "search", http(b"GET", b"/api/v1/search?query=from%3Aalice%20subject%3A%22plain%20hello%22%20-is%3Aread&limit=10&tz=Europe%2FBerlin"))
write("fuzz_http", "search-tags", http(b"GET", b"/api/v1/search?query=tag%3AWork%20has%3Aattachment%20before%3A2024-01-01"))
write("fuzz_http", "latest", http(b"GET", b"/api/v1/message/latest"))
write("fuzz_http", "message", http(b"GET", b"/api/v1/message/FuzzSeed000002") +
      http(b"GET", b"/api/v1/message/FuzzSeed000002/headers") +
      http(b"GET", b"/api/v1/message/FuzzSeed000002/raw") +
      http(b"GET", b"/api/v1/message/FuzzSeed000002/envelope"))
write("fuzz_http", "part", http(b"GET", b"/api/v1/message/FuzzSeed000002/part/2") +
      http(b"GET", b"/api/v1/message/FuzzSeed000002/part/1.2"))
write("fuzz_http", "view", http(b"GET", b"/view/FuzzSeed000002.html") +
      http(b"GET", b"/view/latest.txt"))
write("fuzz_http", "read", http(b"PUT", b"/api/v1/messages",
                                b'{"IDs":["FuzzSeed000001","FuzzSeed000003"],"Read":true}'))
write("fuzz_http", "unread-all", http(b"PUT", b"/api/v1/messages", b'{"Read":false}'))
write("fuzz_http", "tags", http(b"PUT", b"/api/v1/tags",
                                b'{"IDs":["FuzzSeed000001"],"Tags":["Work","caf\xc3\xa9"]}') +
      http(b"GET", b"/api/v1/tags"))
write("fuzz_http", "delete", http(b"DELETE", b"/api/v1/messages", b'{"IDs":["FuzzSeed000003"]}'))
write("fuzz_http", "delete-search", http(b"DELETE", b"/api/v1/search?query=subject%3Anothing"))
write("fuzz_http", "send", http(b"POST", b"/api/v1/send",
                                b'{"From":{"Email":"a@example.com","Name":"A"},'
                                b'"To":[{"Email":"b@example.com","Name":"B"}],'
                                b'"Cc":[{"Email":"c@example.com"}],"Subject":"hi",'
                                b'"Text":"hello","HTML":"<p>hello</p>","Tags":["sent"],'
                                b'"Headers":{"X-Test":"1"},"Attachments":[{"Content":'
                                b'"aGVsbG8=","Filename":"h.txt","ContentType":"text/plain"}]}'))
write("fuzz_http", "info", http(b"GET", b"/api/v1/info") + http(b"GET", b"/api/v1/webui") +
      http(b"HEAD", b"/api/v1/openapi") + http(b"GET", b"/livez"))
write("fuzz_http", "ui", http(b"GET", b"/") + http(b"GET", b"/index.html", headers=[b"Accept-Encoding: gzip"]))
write("fuzz_http", "options", http(b"OPTIONS", b"/api/v1/messages",
                                   headers=[b"Origin: https://ui.example",
                                            b"Access-Control-Request-Method: PUT"]))
write("fuzz_http", "wait", http(b"GET", b"/api/v1/wait?to=bob%40example.com&timeout=1"))
write("fuzz_http", "events", http(b"GET", b"/api/events", headers=[b"Accept: text/event-stream"]))
write("fuzz_http", "bad", b"GET /api/v1/message/..%2f..%2fetc HTTP/1.1\r\nHost: x\r\n\r\n"
      b"GET /../x HTTP/1.0\r\n\r\nPOST /api/v1/send HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":")
write("fuzz_http", "chunked", b"PUT /api/v1/tags HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      b"5\r\n{\"IDs\r\n0\r\n\r\n")
write("fuzz_http", "keepalive-1.0", b"GET /api/v1/messages HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
      b"GET /api/v1/tags HTTP/1.0\r\n\r\n")
