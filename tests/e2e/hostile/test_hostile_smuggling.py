"""SMTP smuggling (RFC 5321 2.3.8, 4.1.1.4; smtp-rules.md rule 1): data ends only at
CRLF.CRLF. Each case hides a complete second transaction (MAIL, RCPT, DATA, a message)
behind a non-standard end-of-data or a bare CR/LF, in every --bare-lf mode, and checks:

- exactly one end-of-data reply comes (reject: 550 5.5.2; normalize/accept: 250 2.0.0)
  and no stray reply follows before the 221 to QUIT (no hidden command ran);
- at most one message is stored, holding the smuggled text as text, with the original
  envelope only (never the smuggled sender or recipient);
- afterwards a normal client still gets 250 and is stored."""

import re

import pytest

from hostlib import Case, Client, http_json
from mslib import Db, unstuff

MODES = ["reject", "normalize", "accept"]

# name -> the bytes between "hi" and the smuggled transaction
ENDINGS = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CRLF": b"\r.\r\n",
    "CRLF.CR": b"\r\n.\r",
    "bare-LF": b"\nx\n",
    "bare-CR": b"\rx\r",
}

SMUGGLED = (b"MAIL FROM:<evil@evil.example>\r\nRCPT TO:<victim@y.example>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nevil\r\n")
HEAD = b"From: a@x.example\r\nSubject: carrier\r\n\r\nhi"


def expected_body(mode, raw):
    """What the store must hold for the DATA content raw (without the final dot): the
    lines (ended by CRLF only) unstuffed; with normalize every bare CR or LF then CRLF."""
    body = unstuff(raw)
    if mode == "normalize":
        body = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    return body


def check_one_carrier(ms, case, mode, raw, reply):
    if mode == "reject":
        assert reply.is_(550, "5.5.2"), reply
        case.check(0)
        return
    assert reply.is_(250, "2.0.0"), reply
    mid = reply.lines[-1].split()[1]
    with Db(ms.db) as db:
        assert db.body(mid) == expected_body(mode, raw)
    env = http_json(ms, "/api/v1/message/%s/envelope" % mid)
    assert env["Sender"] == "a@x.example" and env["Recipients"] == ["b@y.example"], env
    case.check(1)


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize("mode", MODES)
def test_smuggled_transaction_is_text(shared, mode, ending):
    """Input: EHLO, MAIL, RCPT, DATA, then "hi" + ENDING + a whole second transaction +
    CRLF.CRLF. Expected: one end-of-data reply (reject: 550 5.5.2, else 250 2.0.0), then
    only the 221 to QUIT; nothing or one message holding everything as text."""
    ms = shared("--bare-lf", mode)
    case = Case(ms)
    raw = HEAD + ENDINGS[ending] + SMUGGLED
    with Client(ms) as c:
        c.envelope("a@x.example", ["b@y.example"])
        reply = c.data(raw + b".\r\n")
        assert [r.code for r in c.quit_replies()] == [221], "a smuggled command was answered"
    check_one_carrier(ms, case, mode, raw, reply)


@pytest.mark.parametrize("mode", MODES)
def test_smuggling_in_one_pipelined_write(shared, mode):
    """Input: the whole session (EHLO .. DATA, content with <LF>.<LF> and a smuggled
    transaction, CRLF.CRLF, QUIT) in one write. Expected: exactly the replies EHLO 250,
    MAIL 250, RCPT 250, DATA 354, one end-of-data reply, 221 - no seventh reply."""
    ms = shared("--bare-lf", mode)
    case = Case(ms)
    raw = HEAD + b"\n.\n" + SMUGGLED
    with Client(ms) as c:
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
               b"DATA\r\n" + raw + b".\r\nQUIT\r\n")
        replies = c.replies_until_close(limit=20)
    assert [r.code for r in replies[:4]] == [250, 250, 250, 354], replies
    assert len(replies) == 6 and replies[5].code == 221, replies
    check_one_carrier(ms, case, mode, raw, replies[4])


@pytest.mark.parametrize("mode", MODES)
def test_dot_lf_at_data_start_is_not_an_end(shared, mode):
    """Input: DATA whose first bytes are ".\\n" (a lone dot after the 354 ended by a bare
    LF) then a smuggled transaction and CRLF.CRLF. Expected: as above; the first line
    ".\\nMAIL ..." is one line that loses its stuffed dot."""
    ms = shared("--bare-lf", mode)
    case = Case(ms)
    raw = b".\n" + SMUGGLED
    with Client(ms) as c:
        c.envelope("a@x.example", ["b@y.example"])
        reply = c.data(raw + b".\r\n")
        assert [r.code for r in c.quit_replies()] == [221]
    check_one_carrier(ms, case, mode, raw, reply)
