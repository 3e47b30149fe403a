"""Long lines, NUL bytes, bad UTF-8 and undeclared 8-bit data (issue 7; replies from
docs/replies.md). Every case ends with the after-checks of hostlib.Case: the server
still serves a normal client, and exactly the expected number of messages was stored."""

import pytest

from hostlib import SLOW, Case, Client, http_json
from mslib import Db

KiB = 1024
MiB = 1024 * 1024
# name -> length in octets of a line of "x" with no CRLF in it
LENGTHS = {"513": 513, "1001": 1001, "64KiB": 64 * KiB, "10MiB": 10 * MiB}


@pytest.fixture
def ms(shared):
    return shared()


@pytest.mark.parametrize("name", list(LENGTHS))
def test_long_command_line(ms, name):
    """Input: "NOOP " + N octets of x, then CRLF, then NOOP. Expected: exactly one
    500 5.5.2 for the long line (the whole line is discarded up to its CRLF), then 250 for
    the NOOP on the same connection; nothing stored."""
    case = Case(ms)
    with Client(ms) as c:
        c.send(b"NOOP " + b"x" * LENGTHS[name])
        c.send(b"\r\nNOOP\r\n")
        r = c.reply()
        assert r.is_(500, "5.5.2"), r
        assert c.reply().is_(250, "2.0.0")
    case.check(0)


@pytest.mark.parametrize("name", ["64KiB", "10MiB"])
def test_long_line_then_close(ms, name):
    """Input: N octets with no CRLF at all, then the client closes its side. Expected: no
    reply before the close (or a 500), the server survives; nothing stored."""
    case = Case(ms)
    with Client(ms) as c:
        try:
            c.send(b"MAIL FROM:<" + b"a" * LENGTHS[name])
            c.sock.shutdown(1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close first: allowed
        got = c.recv_all(timeout=10 * SLOW)
        assert got == b"" or got.startswith(b"500 5.5.2"), got[:200]
    case.check(0)


@pytest.mark.parametrize("name,code", [("513", 250), ("1001", 250), ("64KiB", 552),
                                       ("10MiB", 552)])
def test_long_data_line(ms, name, code):
    """Input: a message whose body is one line of N octets then CRLF.CRLF. Expected:
    lines up to the hard cap (8 x 1000) are kept (250, stored byte-exact, a finding
    long-line over 1000); longer ones fail the message with 552 5.3.4 at the final dot
    and nothing is stored."""
    case = Case(ms)
    content = b"Subject: long\r\n\r\n" + b"y" * LENGTHS[name] + b"\r\n"
    with Client(ms) as c:
        c.envelope()
        r = c.data(content + b".\r\n")
        assert r.code == code, r
        c.quit_replies()
    if code == 552:
        assert r.enh == "5.3.4"
        case.check(0)
        return
    mid = r.lines[-1].split()[1]
    with Db(ms.db) as db:
        assert db.body(mid) == content
    env = http_json(ms, "/api/v1/message/%s/envelope" % mid)
    assert ("long-line" in env["Findings"]) == (LENGTHS[name] + 2 > 1000), env["Findings"]
    case.check(1)


def test_data_line_with_no_crlf_then_close(ms):
    """Input: DATA, then 1 MiB with no CRLF, then the client closes. Expected: the
    transaction is dropped, nothing stored (no partial message)."""
    case = Case(ms)
    with Client(ms) as c:
        c.envelope()
        c.ok("DATA", 354)
        c.send(b"Subject: cut\r\n\r\n" + b"z" * MiB)
    case.check(0)


@pytest.mark.parametrize("line", [
    b"NOOP\x00",
    b"\x00",
    b"EHLO cli\x00ent.test",
    b"MAIL FROM:<a\x00b@x.example>",
    b"RCPT TO:<b@y.example>\x00",
    b"DA\x00TA",
], ids=["noop", "only-nul", "ehlo", "mail", "rcpt", "data"])
def test_nul_in_command(ms, line):
    """Input: a command line holding a NUL (inside a transaction where MAIL/RCPT/DATA
    would be valid). Expected: 500 5.5.2 (bad character in command); the transaction
    state is unchanged (RSET-free retry of the clean command works); nothing stored by
    the bad line."""
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        if line.startswith(b"RCPT"):
            c.ok("MAIL FROM:<a@x.example>")
        r = c.cmd(line)
        assert r.is_(500, "5.5.2"), r
        c.ok("NOOP")
    case.check(0)


def test_nul_in_data_is_kept(ms):
    """Input: a message with NUL octets in a header and in the body. Expected: 250 2.0.0
    and stored byte-exact (data is octets; only CR and LF are special)."""
    case = Case(ms)
    content = b"Subject: nul\x00here\r\n\r\na\x00b\x00\x00c\r\n\x00\r\n"
    with Client(ms) as c:
        c.envelope()
        r = c.data(content + b".\r\n")
        assert r.is_(250, "2.0.0"), r
        c.quit_replies()
    with Db(ms.db) as db:
        assert db.body(r.lines[-1].split()[1]) == content
    case.check(1)


BAD_UTF8 = {
    "lone-ff": b"\xff",
    "continuation": b"\x80",
    "overlong-slash": b"\xc0\xaf",
    "overlong-3": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "over-10ffff": b"\xf4\x90\x80\x80",
    "truncated": b"\xe2\x82",
}


@pytest.mark.parametrize("smtputf8", [False, True], ids=["plain", "smtputf8"])
@pytest.mark.parametrize("bad", list(BAD_UTF8))
def test_invalid_utf8_in_sender(ms, bad, smtputf8):
    """Input: MAIL FROM:<us<bad octets>er@x.example> with or without SMTPUTF8.
    Expected: 500 5.5.2 (bad UTF-8 syntax) either way; no transaction starts (RCPT then
    gets 503)."""
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        r = c.cmd(b"MAIL FROM:<us" + BAD_UTF8[bad] + b"er@x.example>" +
                  (b" SMTPUTF8" if smtputf8 else b""))
        assert r.is_(500, "5.5.2"), r
        assert c.cmd("RCPT TO:<b@y.example>").is_(503, "5.5.1")
    case.check(0)


@pytest.mark.parametrize("smtputf8", [False, True], ids=["plain", "smtputf8"])
def test_invalid_utf8_in_recipient(ms, smtputf8):
    """Input: a valid MAIL, then RCPT TO:<\\xc3\\x28@y.example> (a broken 2-octet
    sequence). Expected: 500 5.5.2; the transaction has no recipient (DATA gets 503);
    nothing stored."""
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        c.ok("MAIL FROM:<a@x.example>" + (" SMTPUTF8" if smtputf8 else ""))
        r = c.cmd(b"RCPT TO:<\xc3\x28@y.example>")
        assert r.is_(500, "5.5.2"), r
        assert c.cmd("DATA").is_(503, "5.5.1")
    case.check(0)


def test_valid_utf8_address_needs_smtputf8(ms):
    """Input: MAIL FROM:<josé@x.example> without SMTPUTF8, then with it. Expected:
    553 5.6.7 first, then 250 and the message is stored with the UTF-8 sender."""
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        assert c.cmd("MAIL FROM:<josé@x.example>").is_(553, "5.6.7")
        c.ok("MAIL FROM:<josé@x.example> SMTPUTF8")
        c.ok("RCPT TO:<zoë@y.example>")
        r = c.data(b"Subject: utf8\r\n\r\nhi\r\n.\r\n")
        assert r.is_(250, "2.0.0"), r
    env = http_json(ms, "/api/v1/message/%s/envelope" % r.lines[-1].split()[1])
    assert env["Sender"] == "josé@x.example" and env["Recipients"] == ["zoë@y.example"]
    case.check(1)


def test_8bit_data_without_8bitmime(ms):
    """Input: MAIL without BODY=8BITMIME, then content with 8-bit octets (valid and
    invalid UTF-8) in a header and the body. Expected: 250 2.0.0, stored byte-exact,
    finding 8bit-undeclared."""
    case = Case(ms)
    content = b"Subject: caf\xc3\xa9 \xff\r\n\r\n\xe9t\xe9 \x80\x81\xfe\r\n"
    with Client(ms) as c:
        c.envelope()
        r = c.data(content + b".\r\n")
        assert r.is_(250, "2.0.0"), r
    mid = r.lines[-1].split()[1]
    with Db(ms.db) as db:
        assert db.body(mid) == content
    assert "8bit-undeclared" in http_json(ms, "/api/v1/message/%s/envelope" % mid)["Findings"]
    case.check(1)
