"""Hostile reverse- and forward-paths (RFC 5321 4.1.2, 4.5.3.1, smtp-rules.md 1.4;
replies from docs/replies.md). Each row is tried as MAIL FROM (then a normal RCPT and
DATA) and as RCPT TO (after a normal MAIL): the reply to each, and for accepted paths
the address the stored envelope holds. Afterwards exactly the accepted transactions are
stored and a normal client still gets 250."""

import pytest

from hostlib import Case, Client, http_json

L300 = "l" * 300
BAD_MAIL = (501, "5.1.7")
BAD_RCPT = (501, "5.1.3")
BAD = (BAD_MAIL, BAD_RCPT)

# id: (path as sent after "FROM:"/"TO:", (MAIL reply, RCPT reply), stored address or None)
# A stored address of None: the path is refused both ways.
PATHS = {
    "no-brackets": ("a@x.example", (250, 250), "a@x.example"),
    "open-bracket-only": ("<a@x.example", BAD, None),
    "close-bracket-only": ("a@x.example>", BAD, None),
    "nested-brackets": ("<<a@x.example>>", BAD, None),
    "unbalanced-quote": ('<"unbalanced@x.example>', BAD, None),
    "escaped-closing-quote": ('<"a\\"@x.example>', BAD, None),
    "quote-inside-atom": ('<a"b@x.example>', BAD, None),
    "quoted-space": ('<"a b"@x.example>', (250, 250), '"a b"@x.example'),
    "space-in-atom": ("<a b@x.example>", BAD, None),
    "control-char": ("<a\x01b@x.example>", BAD, None),
    "local-300": ("<%s@x.example>" % L300, BAD, None),
    "local-64": ("<%s@x.example>" % ("l" * 64), (250, 250), "%s@x.example" % ("l" * 64)),
    "local-65": ("<%s@x.example>" % ("l" * 65), BAD, None),
    "domain-over-255": ("<a@%s.example>" % ("d" * 250), BAD, None),
    "percent-hack": ("<a%b@c.example>", (250, 250), "a%b@c.example"),
    "bang-in-local": ("<a!b@c.example>", (250, 250), "a!b@c.example"),
    "bang-path-no-domain": ("<c.example!a>", BAD, None),
    "source-route-2": ("<@r1.example,@r2.example:a@x.example>", (250, 250), "a@x.example"),
    "source-route-1": ("<@r1.example:a@x.example>", (250, 250), "a@x.example"),
    "source-route-empty": ("<@:a@x.example>", BAD, None),
    "literal-ipv4": ("<a@[127.0.0.1]>", (250, 250), "a@[127.0.0.1]"),
    "literal-ipv6": ("<a@[IPv6:::1]>", (250, 250), "a@[IPv6:::1]"),
    "literal-general": ("<a@[tag:xyz]>", (250, 250), "a@[tag:xyz]"),
    "literal-bad-ipv4": ("<a@[999.1.1.1]>", BAD, None),
    "literal-bad-ipv6": ("<a@[IPv6:zz]>", BAD, None),
    "literal-empty": ("<a@[]>", BAD, None),
    "empty-domain": ("<a@>", BAD, None),
    "empty-local": ("<@x.example>", BAD, None),
    "double-dot-domain": ("<a@x..example>", BAD, None),
    "leading-dot-local": ("<.a@x.example>", BAD, None),
    "two-paths": ("<a@x.example> <b@x.example>", ((501, "5.5.4"), (501, "5.5.4")), None),
    "nothing": ("", ((501, "5.5.4"), (501, "5.5.4")), None),
    "postmaster-mixed-case": ("<POSTMASTER>", (BAD_MAIL, 250), "POSTMASTER"),
    "postmaster-our-domain-odd-case": ("<pOsTmAsTeR@MAILSINK.TEST>", (250, 250),
                                       "pOsTmAsTeR@MAILSINK.TEST"),
    "postmaster-trailing-space": ("<postmaster >", BAD, None),
    "postmaster-empty-domain": ("<postmaster@>", BAD, None),
    "null-path": ("<>", (250, BAD_RCPT), ""),
}


def _matches(reply, want):
    return reply.code == want if isinstance(want, int) else reply == want


@pytest.mark.parametrize("name", list(PATHS))
def test_path(shared, name):
    """Input: MAIL FROM:PATH (+ RCPT, DATA) on one connection, RCPT TO:PATH (after a
    normal MAIL, + DATA) on another. Expected: the replies in the table; accepted paths
    are stored with the address in the table; refused ones leave no transaction."""
    ms = shared()
    path, (want_mail, want_rcpt), stored_as = PATHS[name]
    case = Case(ms)
    accepted = 0
    with Client(ms) as c:
        c.ehlo()
        r = c.cmd("MAIL FROM:" + path)
        assert _matches(r, want_mail), r
        if r.code == 250:
            c.ok("RCPT TO:<b@y.example>")
            d = c.data(b"Subject: path\r\n\r\nx\r\n.\r\n")
            assert d.is_(250, "2.0.0"), d
            env = http_json(ms, "/api/v1/message/%s/envelope" % d.lines[-1].split()[1])
            assert env["Sender"] == stored_as, env
            accepted += 1
        else:
            assert c.cmd("RCPT TO:<b@y.example>").is_(503, "5.5.1")
    with Client(ms) as c:
        c.envelope("s@x.example", [])
        r = c.cmd("RCPT TO:" + path)
        assert _matches(r, want_rcpt), r
        if r.code == 250:
            d = c.data(b"Subject: path\r\n\r\nx\r\n.\r\n")
            assert d.is_(250, "2.0.0"), d
            env = http_json(ms, "/api/v1/message/%s/envelope" % d.lines[-1].split()[1])
            assert env["Recipients"] == [stored_as], env
            accepted += 1
        else:
            assert c.cmd("DATA").is_(503, "5.5.1")
    case.check(accepted)


@pytest.mark.parametrize("limit", [None, 1000], ids=["default-100", "max-1000"])
def test_thousand_recipients_in_one_write(shared, limit):
    """Input: MAIL and 1000 distinct RCPTs pipelined in one write, then DATA. Expected:
    250 2.1.5 up to --max-recipients (default 100), 452 4.5.3 for every one beyond it
    (earlier ones stay), one message stored with exactly the accepted recipients in
    order."""
    ms = shared(*(["--max-recipients", str(limit)] if limit else []))
    keep = limit or 100
    case = Case(ms)
    rcpts = ["r%04d@y.example" % i for i in range(1000)]
    with Client(ms) as c:
        c.ehlo()
        c.send(b"MAIL FROM:<a@x.example>\r\n" +
               b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts))
        assert c.reply().is_(250, "2.1.0")
        got = [c.reply() for _ in rcpts]
        assert all(r.is_(250, "2.1.5") for r in got[:keep]), got[:keep]
        assert all(r.is_(452, "4.5.3") for r in got[keep:]), got[keep:][:3]
        d = c.data(b"Subject: many\r\n\r\nx\r\n.\r\n")
        assert d.is_(250, "2.0.0"), d
    env = http_json(ms, "/api/v1/message/%s/envelope" % d.lines[-1].split()[1])
    assert env["Recipients"] == rcpts[:keep]
    case.check(1)


@pytest.mark.parametrize("rcpt,code", [
    ("<PostMaster>", 250), ("<postMASTER@mailsink.test>", 250),
    ("<postmaster@other.example>", 553), ("<someone@only.example>", 250),
    ("<someone@else.example>", 553),
], ids=["bare-odd-case", "our-domain-odd-case", "other-domain", "allowed", "refused"])
def test_postmaster_passes_recipient_rules(shared, rcpt, code):
    """Input: with --accept-rcpt '*@only.example', RCPT TO:RCPT. Expected: postmaster
    (bare or at our hostname, any case) is accepted whatever the rules say (RFC 5321
    4.5.1); other addresses follow the rule (553 5.7.1 when refused)."""
    ms = shared("--accept-rcpt", "*@only.example")
    case = Case(ms, rcpt="ok@only.example")
    with Client(ms) as c:
        c.envelope("a@x.example", [])
        r = c.cmd("RCPT TO:" + rcpt)
        assert r.code == code, r
        if code == 250:
            assert c.data(b"Subject: pm\r\n\r\nx\r\n.\r\n").is_(250, "2.0.0")
        else:
            assert r.enh == "5.7.1", r
    case.check(1 if code == 250 else 0)
