"""Built-in rules without any program: --accept-rcpt/--reject-rcpt, --accept-sender/
--reject-sender (globs, case-insensitive, repeatable; a matching reject always wins) and
--allow-host/--deny-host CIDR (550 Access denied at connect)."""

import pytest

from mslib import Db, accepted_id, clean_env


def session(ms, sender, rcpts):
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        mail = c.cmd("MAIL FROM:<%s>" % sender)
        rc = [c.cmd("RCPT TO:<%s>" % r) for r in rcpts] if mail[0] == 250 else []
        data = None
        if any(code == 250 for code, _ in rc):
            assert c.cmd("DATA")[0] == 354
            c.send(b"Subject: rules\r\n\r\nx\r\n.\r\n")
            data = c.reply()
        c.cmd("QUIT")
    return mail, rc, data


def test_accept_rcpt(start):
    ms = start("--accept-rcpt", "*@ok.example")
    mail, rc, data = session(ms, "a@x.example",
                             ["a@ok.example", "b@other.example", "C@OK.EXAMPLE", "d@ok.example.evil"])
    assert [c for c, _ in rc] == [250, 553, 250, 553], rc
    assert rc[1][1][0].startswith("5.7.1 "), rc
    assert data[0] == 250
    with Db(ms.db) as db:
        row = db.row(accepted_id(data[1][0]))
    rcpts = str([row[k] for k in row if k.lower() in ("rcpts", "recipients")])
    assert "b@other.example" not in rcpts and "a@ok.example" in rcpts, rcpts


def test_accept_rcpt_repeatable_and_reject_wins(start):
    ms = start("--accept-rcpt", "*@ok.example", "--accept-rcpt", "*@fine.example",
               "--reject-rcpt", "root@*")
    _, rc, _ = session(ms, "a@x.example",
                       ["a@ok.example", "b@fine.example", "root@ok.example", "c@no.example"])
    assert [c for c, _ in rc] == [250, 250, 553, 553], rc


def test_reject_sender(start):
    ms = start("--reject-sender", "*@bad.example")
    mail, _, _ = session(ms, "spammer@bad.example", ["b@y.example"])
    assert mail[0] == 553, mail
    mail, _, _ = session(ms, "Spammer@BAD.Example", ["b@y.example"])
    assert mail[0] == 553, mail
    mail, _, data = session(ms, "friend@good.example", ["b@y.example"])
    assert mail[0] == 250 and data[0] == 250
    with Db(ms.db) as db:
        assert db.count() == 1


def test_accept_sender(start):
    ms = start("--accept-sender", "*@app.example")
    assert session(ms, "noreply@app.example", ["b@y.example"])[0][0] == 250
    assert session(ms, "other@x.example", ["b@y.example"])[0][0] == 553


def test_rules_from_environment_are_lists(start, tmp_path):
    env = clean_env(tmp_path, {"MAILSINK_REJECT_SENDER": "*@bad.example,*@worse.example"})
    ms = start(env=env)
    assert session(ms, "a@bad.example", ["b@y.example"])[0][0] == 553
    assert session(ms, "a@worse.example", ["b@y.example"])[0][0] == 553
    assert session(ms, "a@fine.example", ["b@y.example"])[0][0] == 250


def denied(ms):
    with ms.raw() as c:
        code, text = c.reply()
        if code == 220:
            return None
        assert code == 550, text
        assert text[0].startswith("Access denied"), text
        assert c.cmd("EHLO client.test")[0] == 503
        assert c.cmd("QUIT")[0] == 221
        return text[0]


def test_deny_host(start):
    ms = start("--deny-host", "127.0.0.0/8")
    assert denied(ms) is not None
    with Db(ms.db) as db:
        assert db.count() == 0


@pytest.mark.parametrize("args,refused", [
    (["--allow-host", "10.0.0.0/8"], True),
    (["--allow-host", "127.0.0.1/32"], False),
    (["--allow-host", "10.0.0.0/8", "--allow-host", "127.0.0.0/24"], False),
    (["--allow-host", "127.0.0.0/8", "--deny-host", "127.0.0.1/32"], True),
    (["--deny-host", "10.0.0.0/8"], False),
    (["--deny-host", "::1/128"], False),
])
def test_allow_and_deny_host(start, args, refused):
    ms = start(*args)
    assert (denied(ms) is not None) == refused


def test_null_sender_matched_as_angle_brackets(start):
    ms = start("--reject-sender", "<>")
    assert session(ms, "", ["b@y.example"])[0][0] == 553
    assert session(ms, "a@x.example", ["b@y.example"])[0][0] == 250
