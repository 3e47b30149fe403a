"""Real clients (smtplib, swaks, curl) against mailsink: every acknowledged message is in
the database, and raw[trace_size:] is exactly the content the client put on the wire
(unstuffed); the id in the 250 is the row's id; the summary columns are decoded."""

import email.policy
import os
import re
import sqlite3
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest

from mslib import (CRLF, Db, RecordingProxy, accepted_id, require_tool, run,
                   send, show, simple)

EML = (b"From: Alice <alice@x.example>\r\n"
       b"To: Bob <bob@y.example>\r\n"
       b"Subject: through a real client\r\n"
       b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
       b"Message-ID: <ms-1@x.example>\r\n"
       b"\r\n"
       b"first line\r\n"
       b".a leading dot\r\n"
       b"..two leading dots\r\n"
       b"\r\n"
       b"\tindented with a tab, trailing space \r\n"
       + b"x" * 900 + b"\r\n"
       b"From the start of a line\r\n"
       b"last line\r\n")


def check_stored(ms, rid, content, sender=None, rcpts=()):
    with Db(ms.db) as db:
        row = db.row(rid)
        assert row is not None, "acknowledged id %s not in the database (ids %r)" % (
            rid, db.ids())
        body = db.body(rid)
        assert body == content, first_difference(body, content)
        raw = db.raw(rid)
        assert raw.startswith(b"Return-Path: <"), raw[:200]
        assert b"Received: from " in raw[: len(raw) - len(content)], raw[:400]
        assert re.search(rb"\bid " + re.escape(rid.encode()) + rb"\b",
                         raw[: len(raw) - len(content)]), raw[:400]
        if sender is not None and "sender" in row:
            assert row["sender"] == sender, row["sender"]
        for r in rcpts:
            rc = [row[k] for k in row if k.lower() in ("rcpts", "recipients", "rcpt")]
            assert rc and r in str(rc[0]), (r, rc, sorted(row))
    return row


def first_difference(got, want):
    if got is None:
        return "nothing stored"
    n = min(len(got), len(want))
    i = next((k for k in range(n) if got[k] != want[k]), n)
    return "stored %d octets, sent %d; first difference at %d: got %r, want %r" % (
        len(got), len(want), i, got[max(0, i - 20) : i + 40], want[max(0, i - 20) : i + 40])


def test_smtplib_sendmail_dots_and_long_lines(ms):
    msg = EML + b".\r\n...\r\n. space\r\nend with dot .\r\n."
    rid, content = send(ms, "alice@x.example", ["bob@y.example", "carol@z.example"], msg)
    assert content == msg + CRLF
    row = check_stored(ms, rid, content, "alice@x.example", ["bob@y.example", "carol@z.example"])
    assert "subject" in row, sorted(row)
    assert row["subject"] == "through a real client"
    # raw prints exactly the stored raw
    r = ms.cli("raw", rid)
    assert r.returncode == 0, show(r)
    with Db(ms.db) as db:
        assert r.stdout == db.raw(rid)


def test_smtplib_str_with_lf_line_ends(ms):
    msg = ("From: a@x.example\nTo: b@y.example\nSubject: lf\nDate: %s\nMessage-ID: %s\n\n"
           "line one\nline two\n" % (formatdate(), make_msgid()))
    rid, content = send(ms, "a@x.example", ["b@y.example"], msg)
    assert content == msg.replace("\n", "\r\n").encode()
    check_stored(ms, rid, content, "a@x.example", ["b@y.example"])


def test_smtplib_send_message_with_attachment(ms):
    blob = os.urandom(60000)
    m = EmailMessage()
    m["From"] = "Sender <sender@x.example>"
    m["To"] = "rcpt@y.example"
    m["Subject"] = "attachment"
    m["Date"] = formatdate()
    m["Message-ID"] = make_msgid(domain="x.example")
    m.set_content("See the attachment.\n.a line with a leading dot\n")
    m.add_attachment(blob, maintype="application", subtype="octet-stream", filename="b.bin")
    m.set_boundary("ms-boundary")
    with ms.smtp() as s:
        assert s.send_message(m) == {}
        rid = s.last_id()
        blocks = s.sent_blocks()
    expected = m.as_bytes(policy=m.policy.clone(linesep="\r\n"))
    assert blocks == [expected]
    check_stored(ms, rid, expected, "sender@x.example", ["rcpt@y.example"])
    with Db(ms.db) as db:
        parsed = email.message_from_bytes(db.body(rid), policy=email.policy.default)
    parts = list(parsed.iter_attachments())
    assert len(parts) == 1 and parts[0].get_content() == blob
    # the summary knows the attachment
    r = ms.cli("show", rid)
    assert r.returncode == 0, show(r)
    assert b"b.bin" in r.stdout, show(r)


def test_smtputf8_sendmail(ms):
    sender = "jörg@exämple.example"
    rcpt = "δοκιμή@παράδειγμα.example"
    msg = ("From: %s\r\nTo: %s\r\nSubject: ünïcödé\r\n\r\nGrüße, κόσμε\r\n" % (sender, rcpt)
           ).encode("utf-8")
    rid, content = send(ms, sender, [rcpt], msg, mail_options=["SMTPUTF8"])
    assert content == msg
    row = check_stored(ms, rid, content, sender, [rcpt])
    assert row["subject"] == "ünïcödé"


def test_smtputf8_send_message(ms):
    m = EmailMessage()
    m["From"] = "Zoë <zoë@x.example>"
    m["To"] = "andré@y.example"
    m["Subject"] = "café"
    m.set_content("crème brûlée\n")
    with ms.smtp() as s:
        assert s.send_message(m) == {}
        rid = s.last_id()
        blocks = s.sent_blocks()
    expected = m.as_bytes(policy=m.policy.clone(linesep="\r\n", utf8=True))
    assert blocks == [expected]
    check_stored(ms, rid, expected, "zoë@x.example", ["andré@y.example"])


def test_rfc2047_subject_is_decoded_in_summary(ms):
    msg = (b"From: =?utf-8?q?Ren=C3=A9?= <rene@x.example>\r\nTo: b@y.example\r\n"
           b"Subject: =?utf-8?q?caf=C3=A9_au_lait?=\r\n\r\nbody\r\n")
    rid, content = send(ms, "rene@x.example", ["b@y.example"], msg)
    row = check_stored(ms, rid, content)
    assert row["subject"] == "café au lait", row["subject"]
    r = ms.cli("show", rid)
    assert r.returncode == 0, show(r)
    assert "café au lait" in r.stdout.decode("utf-8", "replace"), show(r)


def test_many_messages_one_session(ms):
    ids = []
    with ms.smtp() as s:
        for i in range(25):
            msg = b"Subject: n%d\r\nX-Test-Seq: %d\r\n\r\n" % (i, i) + b"y" * (i * 97) + CRLF
            assert s.sendmail("a@x.example", ["b@y.example"], msg) == {}
            ids.append(s.last_id())
        blocks = s.sent_blocks()
    assert len(set(ids)) == 25
    for rid, content in zip(ids, blocks):
        check_stored(ms, rid, content)


def test_null_sender_and_postmaster(ms):
    rid, content = send(ms, "", ["postmaster"], b"Subject: bounce\r\n\r\nbounced\r\n")
    row = check_stored(ms, rid, content)
    if "sender" in row:
        assert row["sender"] == ""
    with Db(ms.db) as db:
        assert db.raw(rid).startswith(b"Return-Path: <>\r\n")


# -- swaks and curl through a recording proxy ---------------------------------------------------


@pytest.fixture
def proxy(ms):
    p = RecordingProxy(ms.port)
    yield p
    p.close()


def swaks_ids(out):
    return [accepted_id(m) for m in
            re.findall(r"^<-\s+250 (2\.0\.0 \S+ Message accepted for delivery)\s*$", out, re.M)]


def test_swaks_data_file(ms, proxy, tmp_path):
    require_tool("swaks")
    f = tmp_path / "msg.eml"
    f.write_bytes(EML)
    r = run(["swaks", "--server", "127.0.0.1:%d" % proxy.port, "--helo", "swaks.test",
             "--timeout", "20", "--from", "alice@x.example", "--to", "bob@y.example",
             "--data", "@" + str(f)])
    assert r.returncode == 0, r.stdout + r.stderr
    ids = swaks_ids(r.stdout)
    assert len(ids) == 1, r.stdout
    sent = proxy.one_block()
    assert sent == EML + CRLF
    check_stored(ms, ids[0], sent, "alice@x.example", ["bob@y.example"])


def test_swaks_pipelined_body(ms, proxy):
    require_tool("swaks")
    rcpts = ["r%d@y.example" % i for i in range(5)]
    r = run(["swaks", "--server", "127.0.0.1:%d" % proxy.port, "--helo", "swaks.test",
             "--timeout", "20", "--pipeline", "--from", "alice@x.example",
             "--to", ",".join(rcpts), "--body", "Hello from swaks\n.dotted line\nbye"])
    assert r.returncode == 0, r.stdout + r.stderr
    sent = proxy.one_block()
    check_stored(ms, swaks_ids(r.stdout)[0], sent, "alice@x.example", rcpts)
    assert b"\r\n.dotted line\r\n" in sent


def curl_ids(err):
    return [accepted_id(m) for m in
            re.findall(r"^< 250 (2\.0\.0 \S+ Message accepted for delivery)\s*$", err, re.M)]


def test_curl_upload(ms, proxy, tmp_path):
    require_tool("curl")
    f = tmp_path / "msg.eml"
    f.write_bytes(EML)
    r = run(["curl", "-sS", "-v", "--max-time", "20",
             "smtp://127.0.0.1:%d/curl.test" % proxy.port, "--mail-from", "alice@x.example",
             "--mail-rcpt", "bob@y.example", "--mail-rcpt", "carol@z.example",
             "--upload-file", str(f)])
    assert r.returncode == 0, r.stderr
    sent = proxy.one_block()
    assert sent == EML
    check_stored(ms, curl_ids(r.stderr)[0], sent, "alice@x.example",
                 ["bob@y.example", "carol@z.example"])


def test_curl_bare_lf_refused_by_default_and_not_stored(ms, proxy, tmp_path):
    require_tool("curl")
    f = tmp_path / "msg.eml"
    f.write_bytes(b"Subject: bare\n\nline one\nline two\n")
    r = run(["curl", "-sS", "-v", "--max-time", "20",
             "smtp://127.0.0.1:%d/curl.test" % proxy.port, "--mail-from", "alice@x.example",
             "--mail-rcpt", "bob@y.example", "--upload-file", str(f)])
    assert r.returncode != 0
    assert re.search(r"^< 550 5\.5\.2 ", r.stderr, re.M), r.stderr
    with Db(ms.db) as db:
        assert db.count() == 0


def test_bare_lf_normalize_flag(start, tmp_path):
    require_tool("curl")
    ms = start("--bare-lf", "normalize")
    p = RecordingProxy(ms.port)
    try:
        f = tmp_path / "msg.eml"
        f.write_bytes(b"Subject: bare\n\nline one\nline two\n")
        r = run(["curl", "-sS", "-v", "--max-time", "20",
                 "smtp://127.0.0.1:%d/curl.test" % p.port, "--mail-from", "alice@x.example",
                 "--mail-rcpt", "bob@y.example", "--upload-file", str(f)])
        assert r.returncode == 0, r.stderr
        sent = p.one_block()
    finally:
        p.close()
    normalized = re.sub(rb"(?<!\r)\n", CRLF, sent)
    check_stored(ms, curl_ids(r.stderr)[0], normalized)


def test_bare_lf_accept_flag_stores_as_sent(start):
    ms = start("--bare-lf", "accept")
    content = b"Subject: bare\r\n\r\nline one\nline two\r\nthree\rfour\r\n"
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(content + b".\r\n")
        code, text = c.reply()
        assert code == 250, text
        rid = accepted_id(text[0])
    check_stored(ms, rid, content)


def test_large_message_near_the_limit(start):
    ms = start("--max-message-size", "12M")
    line = b"".join(bytes([65 + (i % 26)]) for i in range(998)) + CRLF
    msg = b"Subject: large\r\n\r\n" + line * 11000  # about 11 MB
    rid, content = send(ms, "a@x.example", ["b@y.example"], msg)
    assert content == msg
    check_stored(ms, rid, content)


def test_dot_and_quit_in_one_write(ms):
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        c.send(b"MAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\nDATA\r\n")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 354]
        c.send(b"Subject: dot quit\r\n\r\nbye\r\n.\r\nQUIT\r\n")
        code, text = c.reply()
        assert code == 250, text
        rid = accepted_id(text[0])
        assert c.reply()[0] == 221
    check_stored(ms, rid, b"Subject: dot quit\r\n\r\nbye\r\n")


def test_envelope_is_per_transaction(ms):
    with ms.smtp() as s:
        s.sendmail("first@x.example", ["a@y.example", "b@y.example"], simple("one"))
        one = s.last_id()
        s.sendmail("second@x.example", ["c@y.example"], simple("two"))
        two = s.last_id()
    with Db(ms.db) as db:
        r1, r2 = db.row(one), db.row(two)
    rc = [k for k in r1 if k.lower() in ("rcpts", "recipients")]
    assert rc, sorted(r1)
    assert "a@y.example" in r1[rc[0]] and "b@y.example" in r1[rc[0]]
    assert "c@y.example" not in r1[rc[0]]
    assert "c@y.example" in r2[rc[0]] and "a@y.example" not in r2[rc[0]], r2[rc[0]]
    assert r2["sender"] == "second@x.example"


def test_no_250_while_the_database_is_locked(ms):
    """Another process holds the write lock: the 250 may only come after it lets go (the
    message then stored), or the client gets a 4xx and nothing is stored."""
    lock = sqlite3.connect(ms.db, timeout=10, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")
    released = None
    try:
        with ms.raw() as c:
            assert c.reply()[0] == 220
            assert c.cmd("EHLO client.test")[0] == 250
            assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
            assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: locked\r\n\r\nwaiting\r\n.\r\n")
            c.sock.settimeout(2.0)
            try:
                early = c.reply()
            except OSError:  # socket.timeout: no reply while locked, as it should be
                early = None
            assert early is None or 400 <= early[0] < 500, "reply while locked: %r" % (early,)
            lock.execute("ROLLBACK")
            released = time.monotonic()
            if early is None:
                c.sock.settimeout(30)
                code, text = c.reply()
                assert code == 250 or 400 <= code < 500, text
            else:
                code, text = early
    finally:
        if released is None:
            lock.execute("ROLLBACK")
        lock.close()
    with Db(ms.db) as db:
        if code == 250:
            check_stored(ms, accepted_id(text[0]), b"Subject: locked\r\n\r\nwaiting\r\n")
        else:
            assert db.count() == 0
