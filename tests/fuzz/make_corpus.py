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
