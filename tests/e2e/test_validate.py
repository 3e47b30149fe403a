"""examples/validate: sender patterns, a custom reply, recipients answered later by a
worker thread (SMTPD_PENDING + smtpd_server_complete), and the postmaster."""

import re
import smtplib
import threading

import pytest

from e2elib import HOSTNAME, check_delivery, data_blocks
from test_clients import CURL_HELO, SWAKS_HELO, curl, curl_ids, swaks, swaks_ids

CLIENT = "client.e2e.test"
REJECTED = "5.7.1 Requested action not taken: mailbox name not allowed"
INVALID = "5.1.8 Sender address rejected: domain .invalid cannot receive mail"


def session(ex):
    c = ex.raw()
    code, lines = c.reply()
    assert code == 220 and lines[0].startswith(HOSTNAME), lines
    code, _ = c.cmd("EHLO " + CLIENT)
    assert code == 250
    return c


@pytest.mark.parametrize("sender", ["alice@example.com", "x.y+z@example.org",
                                    "Mixed@EXAMPLE.COM", ""])
def test_sender_accepted(validate, sender):
    c = session(validate)
    assert c.cmd("MAIL FROM:<%s>" % sender) == (250, ["2.1.0 Ok"])
    c.close()


@pytest.mark.parametrize("sender", ["alice@example.net", "alice@sub.example.com",
                                    "example.com@evil.test", "alice@example.com.evil.test"])
def test_sender_rejected_with_seed_553(validate, sender):
    c = session(validate)
    assert c.cmd("MAIL FROM:<%s>" % sender) == (553, [REJECTED])
    # the transaction did not start; a good sender may try next
    assert c.cmd("RCPT TO:<alice@example.com>")[0] == 503
    assert c.cmd("MAIL FROM:<bob@example.org>") == (250, ["2.1.0 Ok"])
    c.close()


def test_sender_rejected_with_custom_reply(validate):
    c = session(validate)
    assert c.cmd("MAIL FROM:<someone@nowhere.invalid>") == (550, [INVALID])
    c.close()


def test_recipients_pending_and_completed(validate):
    c = session(validate)
    assert c.cmd("MAIL FROM:<sender@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.com>") == (250, ["2.1.5 Ok"])
    assert c.cmd("RCPT TO:<bob@EXAMPLE.com>") == (250, ["2.1.5 Ok"])  # domains fold case
    assert c.cmd("RCPT TO:<BOB@example.com>") == (553, [REJECTED])  # local parts do not
    assert c.cmd("RCPT TO:<mallory@example.com>") == (553, [REJECTED])
    assert c.cmd("RCPT TO:<carol@example.org>") == (250, ["2.1.5 Ok"])
    assert c.cmd("DATA")[0] == 354
    c.send(b"Subject: v\r\n\r\nhi\r\n.\r\n")
    code, lines = c.reply()
    assert code == 250, lines
    assert c.cmd("QUIT")[0] == 221
    got = validate.next_message()
    assert got.rcpts == ["alice@example.com", "bob@EXAMPLE.com", "carol@example.org"]
    assert got.id == lines[0].split()[1]


@pytest.mark.parametrize("rcpt", ["postmaster", "Postmaster", "POSTMASTER@" + HOSTNAME.upper(),
                                  "postmaster@" + HOSTNAME])
def test_postmaster_always_accepted(validate, rcpt):
    c = session(validate)
    assert c.cmd("MAIL FROM:<sender@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<%s>" % rcpt) == (250, ["2.1.5 Ok"])
    c.close()


def test_postmaster_elsewhere_is_asked(validate):
    c = session(validate)
    assert c.cmd("MAIL FROM:<sender@example.com>")[0] == 250
    assert c.cmd("RCPT TO:<postmaster@other.test>") == (553, [REJECTED])
    c.close()


def test_smtplib_some_recipients_refused(validate):
    msg = b"Subject: partly\r\n\r\nto whom it may concern\r\n"
    with validate.smtp(local_hostname=CLIENT) as s:
        refused = s.sendmail("sender@example.org",
                             ["alice@example.com", "nobody@example.com", "postmaster"], msg)
        assert refused == {"nobody@example.com": (553, REJECTED.encode())}
        rid = s.last_id()
    got = validate.next_message()
    check_delivery(got, content=msg, sender="sender@example.org",
                   rcpts=["alice@example.com", "postmaster"], reply_id=rid, helo=CLIENT)


def test_smtplib_all_recipients_refused(validate):
    with validate.smtp(local_hostname=CLIENT) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("sender@example.org", ["x@example.com", "y@example.com"], b"x\r\n")
        # smtplib sent RSET after the refusal; the session goes on
        assert s.noop()[0] == 250
    validate.assert_no_message()


def test_smtplib_sender_refused(validate):
    with validate.smtp(local_hostname=CLIENT) as s:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            s.sendmail("x@example.net", ["alice@example.com"], b"x\r\n")
        assert e.value.smtp_code == 553


def pipelined_transaction(ex, n, tag):
    """MAIL, n RCPTs (every other one unknown) and DATA in one write, as PIPELINING
    allows; every reply must come in order with the worker's verdict."""
    rcpts = [("alice@example.com", "bob@example.com", "carol@example.org")[i % 3]
             if i % 2 == 0 else "unknown%d@example.com" % i for i in range(n)]
    c = session(ex)
    cmds = ["MAIL FROM:<%s@example.com>" % tag] + ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]
    c.send("".join(x + "\r\n" for x in cmds).encode())
    assert c.reply() == (250, ["2.1.0 Ok"])
    for i in range(n):
        want = (250, ["2.1.5 Ok"]) if i % 2 == 0 else (553, [REJECTED])
        assert c.reply() == want, (i, rcpts[i])
    assert c.reply()[0] == 354
    body = b"Subject: %s\r\n\r\n.pipelined\r\n" % tag.encode()
    c.send(body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    code, lines = c.reply()
    assert code == 250, lines
    assert c.cmd("QUIT")[0] == 221
    c.close()
    return [r for i, r in enumerate(rcpts) if i % 2 == 0], body, lines[0].split()[1]


def test_pipelined_pending_recipients(start):
    ex = start("validate", "-d", "20")
    accepted, body, rid = pipelined_transaction(ex, 9, "pipe")
    got = ex.next_message()
    check_delivery(got, content=body, sender="pipe@example.com", rcpts=accepted,
                   reply_id=rid, helo=CLIENT)


def test_concurrent_sessions_with_pending_recipients(start):
    ex = start("validate", "-d", "5")
    results, errors = {}, []

    def one(k):
        try:
            results[k] = pipelined_transaction(ex, 7, "s%d" % k)
        except Exception as e:  # reported below
            errors.append((k, e))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(results) == 6
    by_id = {rid: (k, accepted, body) for k, (accepted, body, rid) in results.items()}
    for _ in range(6):
        got = ex.next_message()
        k, accepted, body = by_id.pop(got.id)
        check_delivery(got, content=body, sender="s%d@example.com" % k, rcpts=accepted,
                       helo=CLIENT)
    assert not by_id


def test_client_gone_while_pending(start):
    # the worker's answer comes after the session closed: it must be dropped, and the
    # server must go on
    ex = start("validate", "-d", "300")
    c = session(ex)
    c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<alice@example.com>\r\n")
    assert c.reply()[0] == 250
    c.close()
    for _ in range(2):
        with ex.smtp(local_hostname=CLIENT) as s:
            assert s.sendmail("a@example.com", ["alice@example.com"], b"later\r\n") == {}
        ex.next_message()


def test_recipients_from_command_line(start):
    ex = start("validate", "-r", "only@example.net", "-s", "*@sender.test")
    c = session(ex)
    assert c.cmd("MAIL FROM:<alice@example.com>")[0] == 553  # the defaults are replaced
    assert c.cmd("MAIL FROM:<x@sender.test>")[0] == 250
    assert c.cmd("RCPT TO:<alice@example.com>")[0] == 553
    assert c.cmd("RCPT TO:<only@example.net>")[0] == 250
    c.close()


def test_curl_with_a_refused_recipient(validate, proxy_for, tmp_path):
    f = tmp_path / "msg.eml"
    f.write_bytes(b"Subject: curl\r\n\r\nsome refused\r\n")
    proxy = proxy_for(validate)
    base = ["--mail-from", "sender@example.com", "--mail-rcpt", "alice@example.com",
            "--mail-rcpt", "nobody@example.com", "--mail-rcpt", "carol@example.org",
            "--upload-file", str(f)]
    # curl gives up at the first refused recipient unless told otherwise
    r = curl(proxy, *base)
    assert r.returncode != 0
    assert re.search(r"^< 553 %s" % re.escape(REJECTED), r.stderr, re.M), r.stderr
    validate.assert_no_message()
    r = curl(proxy, "--mail-rcpt-allowfails", *base)
    assert r.returncode == 0, r.stderr
    got = validate.next_message()
    proxy.wait_closed()
    sent = data_blocks(bytes(proxy.conns[-1]["c2s"]))
    assert sent == [b"Subject: curl\r\n\r\nsome refused\r\n"]
    check_delivery(got, content=sent[0], sender="sender@example.com",
                   rcpts=["alice@example.com", "carol@example.org"],
                   reply_id=curl_ids(r.stderr)[0], helo=CURL_HELO)


def test_swaks_refused_sender(validate, proxy_for):
    r = swaks(proxy_for(validate), "--from", "x@example.net", "--to", "alice@example.com")
    assert r.returncode != 0
    assert re.search(r"^<\*\*\s+553 %s" % re.escape(REJECTED), r.stdout, re.M), r.stdout
    r = swaks(proxy_for(validate), "--from", "x@host.invalid", "--to", "alice@example.com")
    assert r.returncode != 0
    assert re.search(r"^<\*\*\s+550 %s" % re.escape(INVALID), r.stdout, re.M), r.stdout
    validate.assert_no_message()


def test_swaks_pipeline_with_pending_recipients(start, proxy_for):
    ex = start("validate", "-d", "20")
    proxy = proxy_for(ex)
    r = swaks(proxy, "--pipeline", "--from", "sender@example.org",
              "--to", "alice@example.com,nobody@example.com,bob@example.com,postmaster")
    # swaks reports the refused recipient, and still sends to the others
    assert re.search(r"^<\*\*\s+553 %s" % re.escape(REJECTED), r.stdout, re.M), r.stdout
    ids = swaks_ids(r.stdout)
    assert len(ids) == 1, r.stdout
    got = ex.next_message()
    proxy.wait_closed()
    c2s = bytes(proxy.conns[0]["c2s"])
    assert re.search(rb"MAIL FROM:[^\r]*\r\n(RCPT TO:[^\r]*\r\n){4}DATA\r\n", c2s), c2s[:500]
    check_delivery(got, content=data_blocks(c2s)[0], sender="sender@example.org",
                   rcpts=["alice@example.com", "bob@example.com", "postmaster"],
                   reply_id=ids[0], helo=SWAKS_HELO)
