"""The subcommands for test scripts, run while the server is running on the same
database: list [--json] [QUERY], show ID, raw ID, delete ID|--all, wait."""

import base64
import json
import re
import subprocess
import threading
import time

from mslib import (CRLF, TIMEOUT, Db, clean_env, cli, field, json_messages, mailsink_bin,
                   send, show, simple)


def three(ms):
    """Three messages: a subject word, an address and a base64 body word to search for."""
    a = send(ms, "alice@x.example", ["bob@y.example"],
             simple("zebracorn meeting", "nothing to see\r\n"))[0]
    b = send(ms, "carol@x.example", ["dave@walrus.example"],
             simple("second", "plain text\r\n"))[0]
    body = base64.b64encode("the quokkafish is decoded\n".encode()).decode()
    c = send(ms, "erin@x.example", ["frank@y.example"],
             b"From: erin@x.example\r\nTo: frank@y.example\r\nSubject: third\r\n"
             b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
             b"Content-Transfer-Encoding: base64\r\n\r\n" + body.encode() + CRLF)[0]
    return a, b, c


def list_json(ms, *args):
    r = ms.cli("list", "--json", *args)
    assert r.returncode == 0, show(r)
    return json_messages(r.stdout)


def test_list_plain_and_json(ms):
    a, b, c = three(ms)
    r = ms.cli("list")
    assert r.returncode == 0, show(r)
    out = r.stdout.decode("utf-8", "replace")
    for mid, subj in ((a, "zebracorn meeting"), (b, "second"), (c, "third")):
        assert mid in out and subj in out, out
    # newest first
    assert out.index(c) < out.index(b) < out.index(a), out
    msgs = list_json(ms)
    assert [field(m, "id") for m in msgs] == [c, b, a]
    assert field(msgs[2], "subject") == "zebracorn meeting"
    assert "bob@y.example" in str(msgs[2])
    assert "alice@x.example" in str(msgs[2])


def test_list_query_full_text(ms):
    a, b, c = three(ms)
    assert [field(m, "id") for m in list_json(ms, "zebracorn")] == [a]
    assert [field(m, "id") for m in list_json(ms, "walrus")] == [b]
    # the body was base64: the index holds the decoded text
    assert [field(m, "id") for m in list_json(ms, "quokkafish")] == [c]
    assert list_json(ms, "nosuchwordanywhere") == []


def test_list_empty_database(ms):
    # the server created the database; nothing in it yet
    assert list_json(ms) == []
    r = ms.cli("list")
    assert r.returncode == 0, show(r)


def test_show(ms):
    a, b, c = three(ms)
    r = ms.cli("show", a)
    assert r.returncode == 0, show(r)
    out = r.stdout.decode("utf-8", "replace")
    for want in (a, "zebracorn meeting", "alice@x.example", "bob@y.example", "127.0.0.1",
                 "client.test"):
        assert want in out, out
    assert "quokkafish" not in out


def test_show_and_raw_unknown_id_fail(ms):
    three(ms)
    for cmd in ("show", "raw", "delete"):
        r = ms.cli(cmd, "no-such-id")
        assert r.returncode == 1, show(r)
        assert r.stdout == b"", show(r)
        assert b"no-such-id" in r.stderr, show(r)


def test_raw_is_byte_exact(ms):
    blob = bytes(range(1, 256)).replace(b"\r", b"").replace(b"\n", b"")
    msg = b"Subject: eight bit\r\n\r\n" + blob + b"\r\n\xff\xfe\x00?\r\n"
    with ms.smtp() as s:
        assert s.sendmail("a@x.example", ["b@y.example"], msg,
                          mail_options=["BODY=8BITMIME"]) == {}
        rid = s.last_id()
    r = ms.cli("raw", rid)
    assert r.returncode == 0, show(r)
    with Db(ms.db) as db:
        assert r.stdout == db.raw(rid)
        assert db.body(rid) == msg


def test_delete_one_and_all(ms):
    a, b, c = three(ms)
    r = ms.cli("delete", b)
    assert r.returncode == 0, show(r)
    with Db(ms.db) as db:
        assert sorted(db.ids()) == sorted([a, c])
    assert ms.cli("raw", b).returncode != 0
    assert [field(m, "id") for m in list_json(ms)] == [c, a]
    # deleted from the full-text index too
    assert list_json(ms, "walrus") == []
    r = ms.cli("delete", "--all")
    assert r.returncode == 0, show(r)
    with Db(ms.db) as db:
        assert db.count() == 0
    assert list_json(ms) == []
    # the server goes on storing
    d = send(ms, "a@x.example", ["b@y.example"], simple("after delete"))[0]
    assert [field(m, "id") for m in list_json(ms)] == [d]


def test_db_from_environment(ms):
    a = send(ms, "a@x.example", ["b@y.example"], simple("env db"))[0]
    env = dict(ms.env, MAILSINK_DB=ms.db)
    r = cli(ms.tmp, "list", "--json", env=env)
    assert r.returncode == 0, show(r)
    assert [field(m, "id") for m in json_messages(r.stdout)] == [a]


def test_list_while_server_is_storing(ms):
    """Readers while the writer commits: every list succeeds and parses."""
    errors = []
    sent = []

    def load():
        try:
            with ms.smtp() as s:
                for i in range(40):
                    s.sendmail("a@x.example", ["b@y.example"], simple("load %d" % i))
                    sent.append(s.last_id())
        except Exception as e:  # reported below
            errors.append(repr(e))

    t = threading.Thread(target=load, daemon=True)
    t.start()
    seen = 0
    for _ in range(15):
        r = ms.cli("list", "--json")
        assert r.returncode == 0, show(r)
        n = len(json_messages(r.stdout))
        assert n >= seen
        seen = n
    t.join(TIMEOUT * 3)
    assert not t.is_alive() and not errors, errors
    assert len(list_json(ms)) == 40


# -- wait ------------------------------------------------------------------------------------


def wait_proc(ms, *args):
    return subprocess.Popen([mailsink_bin(), "wait", "--db", ms.db] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ms.env, cwd=ms.tmp)


def test_wait_returns_soon_after_matching_mail(ms):
    w = wait_proc(ms, "--to", "bob@y.example", "--subject", "wake up", "--count", "1",
                  "--timeout", "30")
    try:
        time.sleep(1.0)
        assert w.poll() is None, "wait returned before any mail: %r" % (w.communicate(),)
        # mail that does not match keeps it waiting
        send(ms, "a@x.example", ["other@y.example"], simple("wake up"))
        send(ms, "a@x.example", ["bob@y.example"], simple("something else"))
        time.sleep(1.0)
        assert w.poll() is None, "wait returned for non-matching mail"
        send(ms, "a@x.example", ["bob@y.example"], simple("please wake up now"))
        acked = time.monotonic()
        out, err = w.communicate(timeout=TIMEOUT)
        took = time.monotonic() - acked
    finally:
        if w.poll() is None:
            w.kill()
            w.wait(TIMEOUT)
    assert w.returncode == 0, (w.returncode, out, err)
    assert took < 2.0, "wait returned %.2f s after the 250" % took


def test_wait_count(ms):
    w = wait_proc(ms, "--to", "BOB@Y.EXAMPLE", "--count", "2", "--timeout", "30")
    try:
        send(ms, "a@x.example", ["bob@y.example"], simple("one"))
        time.sleep(1.0)
        assert w.poll() is None, "wait --count 2 returned after one message"
        send(ms, "a@x.example", ["carol@y.example", "bob@y.example"], simple("two"))
        acked = time.monotonic()
        out, err = w.communicate(timeout=TIMEOUT)
        took = time.monotonic() - acked
    finally:
        if w.poll() is None:
            w.kill()
            w.wait(TIMEOUT)
    assert w.returncode == 0, (w.returncode, out, err)
    assert took < 2.0, took


def test_wait_already_there_is_immediate(ms):
    send(ms, "a@x.example", ["bob@y.example"], simple("early bird"))
    t0 = time.monotonic()
    r = ms.cli("wait", "--subject", "early", "--timeout", "20")
    assert r.returncode == 0, show(r)
    assert time.monotonic() - t0 < 2.0


def test_wait_times_out_with_1(ms):
    send(ms, "a@x.example", ["bob@y.example"], simple("not this one"))
    t0 = time.monotonic()
    r = ms.cli("wait", "--to", "nobody@y.example", "--timeout", "1")
    took = time.monotonic() - t0
    assert r.returncode == 1, show(r)
    assert 0.9 <= took < 5, took
    t0 = time.monotonic()
    r = ms.cli("wait", "--subject", "x", "--count", "5", "--timeout", "1")
    assert r.returncode == 1, show(r)
    assert time.monotonic() - t0 < 5


def test_wait_bad_arguments_exit_2(ms):
    for args in (["--timeout", "soon"], ["--count", "-3"], ["--count", "x"], ["--bogus"]):
        r = ms.cli("wait", *args)
        assert r.returncode == 2, (args, show(r))
        assert r.stderr.strip(), (args, show(r))


def test_raw_and_show_latest(ms):
    a, b, c = three(ms)
    r = ms.cli("raw", "latest")
    assert r.returncode == 0, show(r)
    with Db(ms.db) as db:
        assert r.stdout == db.raw(c)
    r = ms.cli("show", "--json", "latest")
    assert r.returncode == 0, show(r)
    obj = json.loads(r.stdout)
    if isinstance(obj, list):
        assert len(obj) == 1, obj
        obj = obj[0]
    assert field(obj, "id") == c
    assert field(obj, "subject") == "third"


def test_wait_before_the_database_exists(start, tmp_path):
    db = str(tmp_path / "later.db")
    w = subprocess.Popen([mailsink_bin(), "wait", "--db", db, "--subject", "late",
                          "--timeout", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=clean_env(tmp_path), cwd=str(tmp_path))
    try:
        time.sleep(1.0)
        assert w.poll() is None, w.communicate()
        ms = start(db=db)
        send(ms, "a@x.example", ["b@y.example"], simple("late arrival"))
        acked = time.monotonic()
        out, err = w.communicate(timeout=TIMEOUT)
        took = time.monotonic() - acked
    finally:
        if w.poll() is None:
            w.kill()
            w.wait(TIMEOUT)
    assert w.returncode == 0, (w.returncode, out, err)
    assert took < 2.0, took


def test_list_json_fields_as_documented(ms):
    """The man page's field list for list --json (and show --json)."""
    m = (b"From: Alice Example <alice@x.example>\r\nTo: Bob <bob@y.example>\r\n"
         b"Cc: carol@z.example\r\nReply-To: replies@x.example\r\nSubject: fields\r\n"
         b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <fields-1@x.example>\r\n"
         b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BB\r\n\r\n"
         b"--BB\r\nContent-Type: text/plain\r\n\r\nThe snippet text is here.\r\n"
         b"--BB\r\nContent-Type: application/octet-stream\r\n"
         b"Content-Disposition: attachment; filename=report.pdf\r\n"
         b"Content-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--BB--\r\n")
    rid, content = send(ms, "alice@x.example", ["bob@y.example", "carol@z.example"], m)
    msgs = list_json(ms)
    assert len(msgs) == 1
    o = msgs[0]
    want = ["id", "received", "sender", "recipients", "client", "helo", "from", "to", "cc",
            "reply_to", "subject", "date", "message_id", "size", "read", "findings",
            "attachments", "attachment_names", "snippet"]
    assert not [k for k in want if k not in o], sorted(o)
    assert o["id"] == rid
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", o["received"]), o
    assert o["sender"] == "alice@x.example"
    assert o["recipients"] == ["bob@y.example", "carol@z.example"]
    assert o["client"] == "127.0.0.1" and o["helo"] == "client.test"
    assert "alice@x.example" in o["from"] and "Alice Example" in o["from"]
    assert "bob@y.example" in o["to"] and "carol@z.example" in o["cc"]
    assert "replies@x.example" in o["reply_to"]
    assert o["subject"] == "fields"
    assert o["message_id"] == "fields-1@x.example"
    assert o["attachments"] == 1 and o["attachment_names"] == ["report.pdf"]
    assert "The snippet text is here." in o["snippet"]
    assert o["read"] in (False, 0)
    assert isinstance(o["findings"], list)
    with Db(ms.db) as db:
        assert o["size"] in (len(db.raw(rid)), len(content))


def test_findings_listed(ms):
    good = (b"From: a@x.example\r\nTo: b@y.example\r\nSubject: proper\r\n"
            b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <p-1@x.example>\r\n\r\nok\r\n")
    g = send(ms, "a@x.example", ["b@y.example"], good)[0]
    b = send(ms, "a@x.example", ["b@y.example"], b"Subject: sloppy\r\n\r\nno date\r\n")[0]
    by_id = {field(m, "id"): m for m in list_json(ms)}
    assert by_id[g]["findings"] == [], by_id[g]
    assert any("date" in f for f in by_id[b]["findings"]), by_id[b]
    assert any("message-id" in f.lower() or "msgid" in f.lower() or "message_id" in f.lower()
               for f in by_id[b]["findings"]), by_id[b]


def test_text_output_has_no_control_characters(ms):
    rid = send(ms, "a@x.example", ["b@y.example"],
               b"Subject: evil\x1b]0;title\x07\x1b[31mred\r\nX-A: =?utf-8?q?x?=\r\n\r\n"
               b"body \x1b[2J clear\r\n")[0]
    rid2 = send(ms, "a@x.example", ["b@y.example"],
                b"Subject: =?utf-8?q?enc=1B[31mred=07?=\r\n\r\nbody\r\n")[0]
    for args in (["list"], ["show", rid], ["show", rid2]):
        r = ms.cli(*args)
        assert r.returncode == 0, show(r)
        bad = [c for c in r.stdout if c < 0x20 and c not in (0x0a, 0x09)]
        assert not bad, (args, r.stdout)
    # raw stays byte-exact, control characters included
    r = ms.cli("raw", rid)
    assert b"\x1b[31m" in r.stdout


def test_subcommands_never_create_a_database(tmp_path):
    missing = tmp_path / "none" / "none.db"
    for args in (["list"], ["show", "x"], ["raw", "x"], ["delete", "--all"]):
        r = cli(tmp_path, *args[:1], "--db", str(missing), *args[1:])
        assert r.returncode == 1, (args, show(r))
        assert r.stderr.strip(), (args, show(r))
    assert not missing.exists() and not missing.parent.exists()


def test_options_before_or_after_the_command_word(ms):
    a = send(ms, "a@x.example", ["b@y.example"], simple("order"))[0]
    r1 = cli(ms.tmp, "--db", ms.db, "list", "--json", env=ms.env)
    r2 = cli(ms.tmp, "list", "--json", "--db", ms.db, env=ms.env)
    assert r1.returncode == 0 and r2.returncode == 0, (show(r1), show(r2))
    assert [field(m, "id") for m in json_messages(r1.stdout)] == [a]
    assert json_messages(r1.stdout) == json_messages(r2.stdout)


def test_list_bad_query_is_a_clean_error(ms):
    three(ms)
    for q in ('"unbalanced', "AND OR", "subject:"):
        r = ms.cli("list", q)
        assert r.returncode in (0, 1, 2), (q, show(r))
        if r.returncode != 0:
            assert r.stderr.strip() and r.stdout == b"", (q, show(r))
