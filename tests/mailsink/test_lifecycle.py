"""Start, restart and stop: the default database under XDG_DATA_HOME (or ~/.local/share)
keeps mail across restarts, --db :memory: keeps none; SIGTERM/SIGINT stop accepting, let
a session finish within the grace (else 421) and exit 0 with everything acknowledged
stored; -v writes transcripts and --log-format json writes JSON lines to stderr."""

import json
import os
import re
import signal
import socket
import time

from mslib import (Db, HOSTNAME, TIMEOUT, accepted_id, clean_env, cli, field,
                   is_listening, json_messages, send, show, simple)


def files_under(root):
    out = []
    for dirpath, _, files in os.walk(str(root)):
        out += [os.path.join(dirpath, f) for f in files]
    return sorted(out)


def test_default_database_under_xdg_data_home_survives_restart(start, tmp_path):
    env = clean_env(tmp_path)
    want = tmp_path / "xdg" / "mailsink" / "mailsink.db"
    ms = start(db=None, env=env)
    assert ms.wait_for_line(r"^mailsink: database %s$" % re.escape(str(want)), timeout=5), \
        ms.stderr()
    assert want.exists(), files_under(tmp_path)
    a = send(ms, "a@x.example", ["b@y.example"], simple("before restart"))[0]
    assert ms.stop() == 0
    ms2 = start(db=None, env=env)
    b = send(ms2, "a@x.example", ["b@y.example"], simple("after restart"))[0]
    # subcommands find the same default database
    r = cli(tmp_path, "list", "--json", env=env)
    assert r.returncode == 0, show(r)
    assert [field(m, "id") for m in json_messages(r.stdout)] == [b, a]
    with Db(str(want)) as db:
        assert sorted(db.ids()) == sorted([a, b])
    assert not (tmp_path / "home" / ".local").exists()


def test_default_database_falls_back_to_home(start, tmp_path):
    env = clean_env(tmp_path, {"XDG_DATA_HOME": None})
    want = tmp_path / "home" / ".local" / "share" / "mailsink" / "mailsink.db"
    ms = start(db=None, env=env)
    a = send(ms, "a@x.example", ["b@y.example"], simple("home"))[0]
    assert ms.stop() == 0
    with Db(str(want)) as db:
        assert db.ids() == [a]
    r = cli(tmp_path, "raw", a, env=env)
    assert r.returncode == 0, show(r)


def test_memory_database_keeps_nothing(start, tmp_path):
    env = clean_env(tmp_path)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    before = files_under(tmp_path)
    ms = start(db=":memory:", env=env, cwd=str(cwd))
    rid = send(ms, "a@x.example", ["b@y.example"], simple("volatile"))[0]
    assert rid
    assert ms.stop() == 0
    ms2 = start(db=":memory:", env=env, cwd=str(cwd))
    assert ms2.stop() == 0
    created = [f for f in files_under(tmp_path) if f not in before and not f.endswith(".stderr")]
    assert created == [], "files written with --db :memory:: %r" % created


def test_sigterm_lets_a_session_finish_within_grace(start):
    ms = start("--stop-grace", "10")
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: in flight\r\n\r\nfirst half\r\n")
        ms.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # no longer accepting
        assert not is_listening(ms.port), "still accepting connections after SIGTERM"
        c.send(b"second half\r\n.\r\n")
        code, text = c.reply()
        assert code == 250, text
        rid = accepted_id(text[0])
        code, _ = c.cmd("QUIT")
        assert code == 221
    assert ms.wait(TIMEOUT) == 0
    with Db(ms.db) as db:
        assert db.ids() == [rid]
        assert db.body(rid) == b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"


def test_sigterm_grace_then_421(start):
    ms = start("--stop-grace", "1")
    rid = send(ms, "a@x.example", ["b@y.example"], simple("acknowledged before stop"))[0]
    with ms.raw() as c:
        assert c.reply()[0] == 220
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("RCPT TO:<b@y.example>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(b"Subject: never finished\r\n\r\npartial\r\n")
        t0 = time.monotonic()
        ms.send_signal(signal.SIGTERM)
        code, text = c.reply()
        took = time.monotonic() - t0
        assert code == 421, text
        assert text[0] == "4.3.2 %s Service shutting down" % HOSTNAME, text
        assert 0.5 < took < 6, took
        assert c.closed_by_peer(5)
    assert ms.wait(TIMEOUT) == 0
    with Db(ms.db) as db:
        assert db.ids() == [rid]


def test_sigint_exits_0_and_idle_stop_is_prompt(start):
    ms = start("--stop-grace", "10")
    rid = send(ms, "a@x.example", ["b@y.example"], simple("before sigint"))[0]
    t0 = time.monotonic()
    ms.send_signal(signal.SIGINT)
    assert ms.wait(TIMEOUT) == 0
    assert time.monotonic() - t0 < 3, "stop without sessions should not wait for the grace"
    with Db(ms.db) as db:
        assert db.ids() == [rid]
        assert db.integrity() == ["ok"]


def test_verbose_transcript(start):
    ms = start("-v")
    n = len(ms.lines)
    rid = send(ms, "trace@x.example", ["b@y.example"], simple("verbose"))[0]
    assert ms.wait_for_line(r"(?i)MAIL FROM:<trace@x\.example>", start=n, timeout=5), ms.stderr()
    assert ms.wait_for_line(r"250 2\.1\.0 Ok", start=n, timeout=5), ms.stderr()
    assert ms.wait_for_line(r"(?i)RCPT TO:<b@y\.example>", start=n, timeout=5), ms.stderr()
    assert ms.wait_for_line(r"250 2\.0\.0 %s Message accepted" % rid, start=n, timeout=5)
    # without -v, no transcript
    quiet = start()
    m = len(quiet.lines)
    send(quiet, "quiet@x.example", ["b@y.example"], simple("quiet"))
    time.sleep(0.5)
    assert not any("quiet@x.example" in l for l in quiet.lines[m:]), quiet.stderr()


def test_log_format_json(start):
    ms = start("-v", "--log-format", "json")
    send(ms, "json@x.example", ["b@y.example"], simple("json"))
    assert ms.wait_for_line(r"json@x\.example", timeout=5), ms.stderr()
    assert ms.stop() == 0
    lines = [l for l in ms.stderr().splitlines() if l.strip()]
    assert len(lines) >= 3
    for l in lines:
        obj = json.loads(l)  # every line is one JSON object
        assert isinstance(obj, dict), l
    assert any("mail from:<json@x.example>" in json.dumps(json.loads(l)).lower()
               for l in lines), lines


def test_log_format_text_startup_lines(ms):
    assert ms.wait_for_line(r"^mailsink: database %s$" % re.escape(ms.db), timeout=5), \
        ms.stderr()
    assert "mailsink: listening on 127.0.0.1:%d\n" % ms.port in ms.stderr(), ms.stderr()


def test_relative_xdg_data_home_is_ignored(start, tmp_path):
    env = clean_env(tmp_path, {"XDG_DATA_HOME": "relative/xdg"})
    ms = start(db=None, env=env)
    want = tmp_path / "home" / ".local" / "share" / "mailsink" / "mailsink.db"
    assert ms.wait_for_line(r"^mailsink: database %s$" % re.escape(str(want)), timeout=5), \
        ms.stderr()
    assert not (tmp_path / "relative").exists()


def test_db_path_with_spaces_and_unicode(start, tmp_path):
    db = str(tmp_path / "dir with space" / "mäil ü.db")
    ms = start(db=db)
    rid = send(ms, "a@x.example", ["b@y.example"], simple("odd path"))[0]
    r = ms.cli("raw", rid)
    assert r.returncode == 0, show(r)
    with Db(db) as d:
        assert r.stdout == d.raw(rid)


def test_half_close_still_gets_the_250_after_commit(start):
    """A client that sends a whole transaction and QUIT, then half-closes (like
    `nc -N`), still reads its 250 (given only after COMMIT) and the 221: the message is
    stored once and the client has no reason to send it again."""
    ms = start()
    sock = socket.create_connection((ms.addr, ms.port), timeout=TIMEOUT)
    sock.sendall(b"EHLO half.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@y.example>\r\n"
                 b"DATA\r\nSubject: half-close\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    sock.shutdown(socket.SHUT_WR)
    got = b""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    sock.close()
    lines = got.decode().split("\r\n")
    accepted = [ln for ln in lines if ln.startswith("250 2.0.0 ")]
    assert len(accepted) == 1, got
    assert lines[-2].startswith("221 "), got
    with Db(ms.db) as db:
        assert db.ids() == [accepted_id(accepted[0][4:])]


def test_max_connections_answers_421_beyond_the_limit(start):
    """--max-connections N: the N+1th open connection is greeted with 421 4.7.0 and
    closed; once one closes, a new connection is served again."""
    ms = start("--max-connections", "2")
    first, second = ms.raw(), ms.raw()
    assert first.reply()[0] == 220 and second.reply()[0] == 220
    third = ms.raw()
    code, lines = third.reply()
    assert code == 421 and "4.7.0" in lines[0] and "too many connections" in lines[0]
    third.close()
    first.cmd("QUIT")
    first.close()
    # the server notices the close on its own loop turn: allow a moment, bounded
    for _ in range(50):
        again = ms.raw()
        code, _ = again.reply()
        again.close()
        if code == 220:
            break
        time.sleep(0.1)
    assert code == 220
    second.cmd("QUIT")
    second.close()


def test_per_address_limit_follows_max_connections_by_default(start):
    """--max-connections 1100 without --max-connections-per-ip: 1,100 connections from
    127.0.0.1 (past libsmtpd's own per-address default of 1,000) are all greeted with 220,
    and the 1,101st gets the global 421 (a catcher's clients mostly share one address)."""
    ms = start("--max-connections", "1100")
    conns = []
    try:
        for _ in range(1100):
            conns.append(ms.raw())
        codes = [c.reply()[0] for c in conns]
        assert codes.count(220) == 1100, sorted(set(codes))
        extra = ms.raw()
        code, lines = extra.reply()
        extra.close()
        assert code == 421 and lines[0].endswith("Error: too many connections"), lines
    finally:
        for c in conns:
            c.close()
