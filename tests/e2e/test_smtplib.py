"""Python's smtplib against examples/catch: what is delivered is exactly what smtplib put
on the wire (after unstuffing), behind a Return-Path and a Received of ours."""

import email.policy
import os
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from e2elib import (CRLF, check_delivery, data_blocks, smtplib_wire_content, stuff)

CLIENT = "client.e2e.test"


def sendmail(ex, sender, rcpts, msg, **kw):
    """Send with smtplib.sendmail; return (delivered message, the id in the 250, smtp)."""
    with ex.smtp(local_hostname=CLIENT) as s:
        refused = s.sendmail(sender, rcpts, msg, **kw)
        assert refused == {}
        rid = s.last_id()
        wire = bytes(s.wire)
    delivered = ex.next_message()
    return delivered, rid, wire


def check_sent(ex, sender, rcpts, msg, with_proto="ESMTP", **kw):
    got, rid, wire = sendmail(ex, sender, rcpts, msg, **kw)
    content = smtplib_wire_content(msg)
    # our model of smtplib agrees with what it really sent
    assert data_blocks(wire) == [content]
    assert stuff(content) + b"." + CRLF in wire
    check_delivery(got, content=content, sender=sender, rcpts=rcpts, reply_id=rid,
                   helo=CLIENT, with_proto=with_proto)
    return got


def test_sendmail_str_with_lf_line_ends(catch):
    # smtplib turns LF into CRLF for str messages
    msg = ("From: a@example.com\nTo: b@example.net\nSubject: lf\n"
           "Date: %s\nMessage-ID: %s\n\nline one\nline two\n" % (formatdate(), make_msgid()))
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg)
    assert got.body.count(CRLF) == 8


def test_sendmail_dot_lines_are_unstuffed(catch):
    msg = ("Subject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\nbetween\r\n"
           "...\r\n. space\r\nend with dot .\r\n.")
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg)
    assert b"\r\n.leading dot\r\n..two dots\r\n.\r\nbetween\r\n...\r\n. space\r\n" in got.body
    assert got.body.endswith(b"end with dot .\r\n.\r\n")


def test_sendmail_bytes_without_final_crlf(catch):
    # bytes go out as they are; smtplib adds the CRLF before the final dot
    msg = b"Subject: no final newline\r\n\r\nlast line"
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg)
    assert got.body == msg + CRLF


def test_send_message_with_attachment(catch):
    blob = os.urandom(50000)
    m = EmailMessage()
    m["From"] = "Sender <sender@example.com>"
    m["To"] = "rcpt@example.net"
    m["Subject"] = "attachment"
    m["Date"] = formatdate()
    m["Message-ID"] = make_msgid(domain="example.com")
    m.set_content("See the attachment.\n.a line with a leading dot\n")
    m.add_attachment(blob, maintype="application", subtype="octet-stream", filename="b.bin")
    m.set_boundary("e2e-boundary")  # else each flattening draws a new random one
    with catch.smtp(local_hostname=CLIENT) as s:
        assert s.send_message(m) == {}
        rid = s.last_id()
        wire = bytes(s.wire)
    got = catch.next_message()
    # what send_message flattens and passes to sendmail (smtplib.py does the same)
    expected = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
    assert data_blocks(wire) == [expected]
    check_delivery(got, content=expected, sender="sender@example.com",
                   rcpts=["rcpt@example.net"], reply_id=rid, helo=CLIENT)
    # and the attachment survives
    parsed = email.message_from_bytes(got.body, policy=email.policy.default)
    parts = [p for p in parsed.iter_attachments()]
    assert len(parts) == 1 and parts[0].get_content() == blob
    # a well-behaved client: nothing to report
    assert got.findings == set(), got.findings


def test_smtputf8_sendmail(catch):
    sender = "jörg@exämple.com"
    rcpt = "δοκιμή@παράδειγμα.δοκιμή"
    msg = ("From: %s\r\nTo: %s\r\nSubject: ünïcödé\r\n\r\nGrüße, κόσμε\r\n" % (sender, rcpt)
           ).encode("utf-8")
    got = check_sent(catch, sender, [rcpt], msg, with_proto="UTF8SMTP",
                     mail_options=["SMTPUTF8"])
    assert got.utf8


def test_smtputf8_send_message(catch):
    # send_message finds the non-ASCII address itself and adds SMTPUTF8 and BODY=8BITMIME
    m = EmailMessage()
    m["From"] = "Zoë <zoë@example.com>"
    m["To"] = "andré@example.net"
    m["Subject"] = "café"
    m.set_content("crème brûlée\n")
    with catch.smtp(local_hostname=CLIENT) as s:
        assert s.send_message(m) == {}
        rid = s.last_id()
        wire = bytes(s.wire)
    got = catch.next_message()
    expected = m.as_bytes(policy=m.policy.clone(linesep="\r\n", utf8=True))
    assert data_blocks(wire) == [expected]
    assert got.utf8 and got.bit8
    check_delivery(got, content=expected, sender="zoë@example.com",
                   rcpts=["andré@example.net"], reply_id=rid, helo=CLIENT,
                   with_proto="UTF8SMTP")


def test_several_recipients(catch):
    rcpts = ["r%d@example.net" % i for i in range(7)] + ["Postmaster"]
    check_sent(catch, "a@example.com", rcpts, "Subject: many\r\n\r\nhello all\r\n")


def test_null_sender(catch):
    check_sent(catch, "", ["b@example.net"], "Subject: bounce\r\n\r\nundeliverable\r\n")


def test_helo_client_gets_with_smtp(catch):
    msg = b"Subject: helo\r\n\r\nold client\r\n"
    with catch.smtp(local_hostname=CLIENT) as s:
        code, _ = s.helo(CLIENT)
        assert code == 250
        assert s.sendmail("a@example.com", ["b@example.net"], msg) == {}
        rid = s.last_id()
    got = catch.next_message()
    check_delivery(got, content=msg, sender="a@example.com", rcpts=["b@example.net"],
                   reply_id=rid, helo=CLIENT, with_proto="SMTP")


def test_several_messages_in_one_session(catch):
    ids = []
    with catch.smtp(local_hostname=CLIENT) as s:
        for i in range(5):
            msg = b"Subject: %d\r\n\r\nmessage %d\r\n" % (i, i)
            assert s.sendmail("a%d@example.com" % i, ["b%d@example.net" % i], msg) == {}
            ids.append(s.last_id())
            if i == 2:
                assert s.rset()[0] == 250
    assert len(set(ids)) == 5
    for i in range(5):
        got = catch.next_message()
        check_delivery(got, content=b"Subject: %d\r\n\r\nmessage %d\r\n" % (i, i),
                       sender="a%d@example.com" % i, rcpts=["b%d@example.net" % i],
                       reply_id=ids[i], helo=CLIENT)


def test_message_of_several_megabytes(catch):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!?"
    body = b"".join(b"%07d " % i + line + CRLF for i in range(70000))  # ~5.7 MB
    body += b".dot at the start of the last line" + CRLF
    msg = b"Subject: big\r\n\r\n" + body
    assert 5_000_000 < len(msg) < 10_240_000
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg)
    assert len(got.body) == len(msg)


def test_size_limit_from_option(start):
    ex = start("catch", "-o", "max-message-size=2000")
    with ex.smtp(local_hostname=CLIENT) as s:
        s.ehlo()
        assert s.esmtp_features.get("size") == "2000"
        # smtplib declares SIZE=, so the server refuses at MAIL already
        try:
            s.sendmail("a@example.com", ["b@example.net"], b"x" * 3000)
            raise AssertionError("accepted a message over max-message-size")
        except smtplib.SMTPSenderRefused as e:
            assert e.smtp_code == 552 and e.smtp_error.startswith(b"5.3.4"), e
        assert s.noop()[0] == 250
        # within the limit it still works
        assert s.sendmail("a@example.com", ["b@example.net"], b"small\r\n") == {}
    ex.next_message()
    ex.assert_no_message()


def test_eight_bit_and_nul_octets(catch):
    octets = bytes(b for b in range(256) if b not in (10, 13))
    msg = b"Subject: octets\r\n\r\n" + octets + b"\r\n" + octets[::-1] + b"\r\n"
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg,
                     mail_options=["BODY=8BITMIME"])
    assert got.bit8 and "8bit-undeclared" not in got.findings
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg)
    assert not got.bit8 and "8bit-undeclared" in got.findings


def test_long_lines(catch):
    # over 1000 octets is a finding but delivered; over 8 times that fails the message
    msg = b"Subject: long\r\n\r\n" + b"l" * 5000 + b"\r\nshort\r\n"
    got = check_sent(catch, "a@example.com", ["b@example.net"], msg)
    assert "long-line" in got.findings
    with catch.smtp(local_hostname=CLIENT) as s:
        try:
            s.sendmail("a@example.com", ["b@example.net"], b"x" * 9000 + b"\r\n")
            raise AssertionError("accepted a 9000-octet line")
        except smtplib.SMTPDataError as e:
            assert e.smtp_code == 552 and e.smtp_error.startswith(b"5.3.4"), e
        assert s.noop()[0] == 250
    catch.assert_no_message()
