"""Hostile ESMTP parameters on MAIL and RCPT (RFC 5321 4.1.2, RFC 1870 SIZE, RFC 6152
BODY, RFC 6531 SMTPUTF8, RFC 4954 5 AUTH= xtext; replies from docs/replies.md): unknown,
duplicated, malformed, bad xtext, SIZE that is not a number or is huge. A refused
parameter refuses the whole command (no transaction starts); an accepted one is taken
through a whole transaction. Afterwards exactly those are stored and a normal client
still gets 250."""

import pytest

from hostlib import Case, Client

BAD = (501, "5.5.4")
TOO_BIG = (552, "5.3.4")


UNKNOWN = (555, "5.5.4")


# id: (parameters after "MAIL FROM:<a@x.example> ", expected reply)
MAIL_PARAMS = {
    "unknown-flag": ("XFOO", UNKNOWN),
    "unknown-value": ("XFOO=bar", UNKNOWN),
    "dsn-not-offered": ("RET=FULL ENVID=a+2Bb", UNKNOWN),
    "dup-size": ("SIZE=100 SIZE=100", BAD),
    "dup-body": ("BODY=7BIT BODY=8BITMIME", BAD),
    "dup-smtputf8": ("SMTPUTF8 SMTPUTF8", BAD),
    "smtputf8-with-value": ("SMTPUTF8=yes", BAD),
    "body-unknown": ("BODY=BINARYMIME", BAD),
    "body-empty": ("BODY=", BAD),
    "size-letters": ("SIZE=abc", BAD),
    "size-empty": ("SIZE=", BAD),
    "size-no-value": ("SIZE", BAD),
    "size-negative": ("SIZE=-1", BAD),
    "size-plus": ("SIZE=+5", BAD),
    "size-hex": ("SIZE=0x10", BAD),
    "size-exponent": ("SIZE=1e9", BAD),
    "size-space-before-value": ("SIZE= 100", BAD),
    "size-21-digits": ("SIZE=100000000000000000000", BAD),
    "size-2^64": ("SIZE=18446744073709551616", BAD),
    "size-2^64-1": ("SIZE=18446744073709551615", TOO_BIG),
    "size-limit+1": ("SIZE=10240001", TOO_BIG),
    "size-at-limit": ("SIZE=10240000", 250),
    "keyword-empty": ("=x", BAD),
    "keyword-leading-dash": ("-X=1", BAD),
    "value-with-equals": ("X=a=b", BAD),
    "value-with-del": ("X=a\x7fb", BAD),
    "tab-separator": ("SIZE=1\tBODY=7BIT", BAD),
    "keyword-case": ("body=8bitmime size=10", 250),
    "double-space": ("SIZE=1  BODY=7BIT", 250),
}


def _want(reply, want):
    return reply.code == want if isinstance(want, int) else reply == want


def _finish_or_refused(ms, c, reply, want):
    if reply.code == 250:
        c.ok("RCPT TO:<b@y.example>")
        assert c.data(b"Subject: params\r\n\r\nx\r\n.\r\n").is_(250, "2.0.0")
        return 1
    assert c.cmd("RCPT TO:<b@y.example>").is_(503, "5.5.1"), "a refused MAIL started one"
    return 0


@pytest.mark.parametrize("name", list(MAIL_PARAMS))
def test_mail_parameter(shared, name):
    """Input: EHLO, MAIL FROM:<a@x.example> PARAMS. Expected: the reply in the table;
    on 250 RCPT and DATA complete and one message is stored, otherwise RCPT gets 503
    (no transaction) and nothing is stored."""
    ms = shared()
    params, want = MAIL_PARAMS[name]
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@x.example> " + params)
        assert _want(r, want), r
        if want == UNKNOWN:  # the reply names the keyword
            assert params.split("=")[0].split()[0] in r.lines[-1], r
        n = _finish_or_refused(ms, c, r, want)
    case.check(n)


@pytest.mark.parametrize("params", ["XFOO", "NOTIFY=NEVER", "ORCPT=rfc822;a+ZZ@x",
                                    "SIZE=100", "BODY=8BITMIME", "SMTPUTF8"])
def test_rcpt_parameter_is_unsupported(shared, params):
    """Input: a valid MAIL, then RCPT TO:<b@y.example> PARAMS (MAIL-only or DSN
    parameters). Expected: 555 5.5.4 Unsupported option; no recipient (DATA gets 503)."""
    ms = shared()
    case = Case(ms)
    with Client(ms) as c:
        c.envelope("a@x.example", [])
        r = c.cmd("RCPT TO:<b@y.example> " + params)
        assert r == (555, "5.5.4"), r
        assert c.cmd("DATA").is_(503, "5.5.1")
    case.check(0)


# AUTH= takes xtext (RFC 3461 4): "+" and two UPPER-case hex digits; decoded NUL, CR or
# LF must never reach the envelope.
AUTH_PARAMS = {
    "null": ("AUTH=<>", 250),
    "mailbox": ("AUTH=a@x.example", 250),
    "hex-escape": ("AUTH=a+40x.example", 250),
    "plus-escaped": ("AUTH=a+2B", 250),
    "not-hex": ("AUTH=a+ZZ", BAD),
    "one-digit": ("AUTH=a+2", BAD),
    "dangling-plus": ("AUTH=a+", BAD),
    "lower-hex": ("AUTH=a+2b", BAD),
    "nul": ("AUTH=a+00b", BAD),
    "crlf": ("AUTH=a+0D+0Ab", BAD),
    "empty": ("AUTH=", BAD),
    "no-value": ("AUTH", BAD),
    "duplicate": ("AUTH=<> AUTH=<>", BAD),
}


@pytest.mark.parametrize("name", list(AUTH_PARAMS))
def test_mail_auth_xtext(shared, name):
    """Input: with AUTH offered (--auth-accept-any --allow-insecure-auth), MAIL
    FROM:<a@x.example> AUTH=XTEXT. Expected: the reply in the table (bad xtext, and an
    xtext decoding to NUL/CR/LF: 501 5.5.4); accepted ones complete a transaction."""
    ms = shared("--auth-accept-any", "--allow-insecure-auth")
    params, want = AUTH_PARAMS[name]
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@x.example> " + params)
        assert _want(r, want), r
        n = _finish_or_refused(ms, c, r, want)
    case.check(n)


@pytest.mark.parametrize("declared", ["1", "10240000"])
def test_size_declaration_does_not_decide(shared, declared):
    """Input (--max-message-size 4096): a 2 KiB message declared SIZE=1, or a 6 KiB
    message declared SIZE=4096 (after SIZE=10240000 got 552 5.3.4). Expected: the real
    size decides, not the declaration: the first is stored (250 2.0.0), the second is
    refused at the final dot with 552 5.3.4 and not stored."""
    ms = shared("--max-message-size", "4096")
    case = Case(ms)
    with Client(ms) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:<a@x.example> SIZE=" + declared)
        if declared != "1":
            assert r == TOO_BIG, r  # over this server's 4096
            c.ok("MAIL FROM:<a@x.example> SIZE=4096")
        else:
            assert r.is_(250, "2.1.0"), r
        c.ok("RCPT TO:<b@y.example>")
        small = b"Subject: s\r\n\r\n" + b"k" * 2048 + b"\r\n"
        big = b"Subject: s\r\n\r\n" + (b"k" * 998 + b"\r\n") * 6
        d = c.data((small if declared == "1" else big) + b".\r\n")
        want = (250, "2.0.0") if declared == "1" else TOO_BIG
        assert d == want, d
    case.check(1 if declared == "1" else 0)
