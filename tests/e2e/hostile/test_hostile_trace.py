"""The trace headers built from client strings (smtp-rules.md 1.5 and rule 7; Mailpit
CVE-2026-23829): whatever the EHLO name, sender and recipient hold, the stored message
starts with exactly one Return-Path line and one Received field (continuation lines
start with a tab), and the EHLO name inside "Received: from ..." carries no control
character and nothing that ends or opens a comment or the date part ("(", ")", ";")."""

import re

import pytest

from hostlib import Case, Client
from mslib import Db

EHLO_NAMES = {
    "del-char": "x\x7f",
    "tab": "\t",
    "angle": "<x>",
    "fake-by-clause": "x) by evil.example (x",
    "fake-date": "x;y Mon, 1 Jan 2000",
    "parens": "((((((",
    "long-300": "a" * 300,
    "utf8": "ü.example",
    "escape-seq": "\x1b[31mred",
}


@pytest.mark.parametrize("name", list(EHLO_NAMES))
def test_trace_headers_stay_well_formed(shared, name):
    """Input: EHLO <name in the table>, MAIL FROM:<"a\\\\b c)(;"@x.example>, RCPT
    TO:<"x\\"y"@y.example>, a small message. Expected: 250 2.0.0 (the name is recorded,
    not refused); the stored trace is one Return-Path line with the sender verbatim in
    angle brackets and one Received field whose from-part is the EHLO name with every
    control character and ( ) ; replaced; the client's content follows unchanged."""
    ms = shared()
    case = Case(ms)
    sender, rcpt = '"a\\\\b c)(;"@x.example', '"x\\"y"@y.example'
    content = b"Subject: trace\r\n\r\nx\r\n"
    with Client(ms) as c:
        c.ehlo(EHLO_NAMES[name])
        c.ok("MAIL FROM:<%s>" % sender)
        c.ok("RCPT TO:<%s>" % rcpt)
        r = c.data(content + b".\r\n")
        assert r.is_(250, "2.0.0"), r
    mid = r.lines[-1].split()[1]
    with Db(ms.db) as db:
        raw, row = db.raw(mid), db.row(mid)
    trace, body = raw[:row["trace_size"]], raw[row["trace_size"]:]
    assert body == content
    lines = trace.split(b"\r\n")
    assert lines[-1] == b"", trace
    lines = lines[:-1]
    assert lines[0] == b"Return-Path: <" + sender.encode() + b">", lines[0]
    assert lines[1].startswith(b"Received: from "), lines[1]
    assert all(ln.startswith(b"\t") for ln in lines[2:]), lines
    assert all(len(ln) <= 998 for ln in lines), [len(ln) for ln in lines]
    helo_part = lines[1][len(b"Received: from "):].rsplit(b" ([127.0.0.1])", 1)
    assert len(helo_part) == 2, lines[1]
    assert not re.search(rb"[\x00-\x1f\x7f();]", helo_part[0]), helo_part[0]
    assert lines[-1].startswith(b"\tfor <" + rcpt.encode() + b">; "), lines[-1]
    case.check(1)
