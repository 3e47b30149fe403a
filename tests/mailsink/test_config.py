"""Configuration: every bad value gives exit 2 and one clear message naming the problem,
with nothing left listening (and for plain flag errors, no database created); the config
file < environment < command line precedence; --help, --version and the man page."""

import os
import re
import socket

import pytest

from mslib import (REPO, Db, RawClient, clean_env, cli, free_port, have_ipv6, is_listening,
                   show, simple)

# (case id, argv after the listener/db flags, extra env, config file text or None,
#  words one of which stderr must name, whether the db must not have been created)
BAD = [
    ("smtp-garbage", ["--smtp", "garbage"], None, None, ["--smtp", "garbage"], True),
    ("smtp-port-range", ["--smtp", "127.0.0.1:99999"], None, None, ["99999"], True),
    ("smtp-no-port", ["--smtp", "127.0.0.1"], None, None, ["--smtp", "127.0.0.1"], True),
    ("smtp-v6-unclosed", ["--smtp", "[::1:25"], None, None, ["--smtp", "[::1:25"], True),
    ("smtp-port-word", ["--smtp", "127.0.0.1:smtp25"], None, None, ["--smtp", "smtp25"], True),
    ("max-message-size", ["--max-message-size", "x"], None, None, ["--max-message-size"], True),
    ("max-message-size-suffix", ["--max-message-size", "10Q"], None, None,
     ["--max-message-size"], True),
    ("max-recipients-neg", ["--max-recipients", "-1"], None, None, ["--max-recipients"], True),
    ("max-recipients-missing", ["--max-recipients"], None, None, ["--max-recipients"], True),
    ("max-messages", ["--max-messages", "lots"], None, None, ["--max-messages"], True),
    ("max-age", ["--max-age", "5y"], None, None, ["--max-age"], True),
    ("command-timeout", ["--command-timeout", "soon"], None, None, ["--command-timeout"], True),
    ("data-timeout", ["--data-timeout", "-5"], None, None, ["--data-timeout"], True),
    ("stop-grace", ["--stop-grace", "1.5.2"], None, None, ["--stop-grace"], True),
    ("exec-timeout", ["--exec-timeout", "x"], None, None, ["--exec-timeout"], True),
    ("bare-lf", ["--bare-lf", "maybe"], None, None, ["--bare-lf"], True),
    ("log-format", ["--log-format", "xml"], None, None, ["--log-format"], True),
    ("unknown-flag", ["--nope"], None, None, ["--nope"], True),
    ("unknown-subcommand", ["frobnicate"], None, None, ["frobnicate"], True),
    ("deny-host-cidr", ["--deny-host", "10.0.0.0/33"], None, None, ["--deny-host"], False),
    ("allow-host-garbage", ["--allow-host", "not-an-address"], None, None, ["--allow-host"],
     False),
    ("deliver-exec-quote", ["--deliver-exec", "/bin/true 'unclosed"], None, None,
     ["--deliver-exec"], False),
    ("db-unwritable", ["--db", "/proc/forbidden/x.db"], None, None, ["/proc/forbidden"],
     True),
    ("maildir-unwritable", ["--maildir", "/proc/forbidden/md"], None, None,
     ["/proc/forbidden"], False),
    ("mbox-unwritable", ["--mbox", "/proc/forbidden/x.mbox"], None, None,
     ["/proc/forbidden"], False),
    ("eml-dir-unwritable", ["--eml-dir", "/proc/forbidden/eml"], None, None,
     ["/proc/forbidden"], False),
    ("config-missing", ["--config", "/nonexistent/mailsink.conf"], None, None,
     ["/nonexistent/mailsink.conf"], True),
    ("config-unknown-key", ["--config", "@CONF@"], None, "hostname = ok.example\nfrobs = 3\n",
     ["frobs"], True),
    ("config-bad-value", ["--config", "@CONF@"], None, "max-recipients = abc\n",
     ["max-recipients"], True),
    ("config-no-equals", ["--config", "@CONF@"], None, "hostname\n", ["@CONF@", "line 1"],
     True),
    ("env-max-recipients", [], {"MAILSINK_MAX_RECIPIENTS": "abc"}, None,
     ["MAILSINK_MAX_RECIPIENTS", "max-recipients"], True),
    ("env-bare-lf", [], {"MAILSINK_BARE_LF": "sometimes"}, None,
     ["MAILSINK_BARE_LF", "bare-lf"], True),
    ("env-smtp", [], {"MAILSINK_SMTP": "127.0.0.1:0,nonsense"}, None,
     ["MAILSINK_SMTP", "nonsense"], True),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_bad_value_exits_2_with_one_clear_message(tmp_path, case):
    name, args, extra_env, conf, names, no_db = case
    free = free_port()
    db = tmp_path / "mail.db"
    conf_path = tmp_path / "mailsink.conf"
    if conf is not None:
        conf_path.write_text(conf)
    args = [a.replace("@CONF@", str(conf_path)) for a in args]
    names = [n.replace("@CONF@", str(conf_path)) for n in names]
    argv = ["--smtp", "127.0.0.1:%d" % free]
    if "--db" not in args:
        argv += ["--db", str(db)]
    if args and not args[0].startswith("-"):
        argv = args + argv  # a subcommand comes first
    else:
        argv += args
    r = cli(tmp_path, *argv, env=clean_env(tmp_path, extra_env), timeout=20)
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, show(r)
    lines = [l for l in err.splitlines() if l.strip()]
    assert 1 <= len(lines) <= 2, "not one clear message:\n" + err
    assert any(n in lines[0] for n in names), "%r does not name any of %r" % (lines[0], names)
    assert not is_listening(free), "something still listens after the failure"
    if no_db:
        assert not db.exists(), "database created although the configuration was bad"


def test_port_in_use(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    free = free_port()
    try:
        # the first listener binds fine, the second cannot: nothing may stay half-started
        r = cli(tmp_path, "--smtp", "127.0.0.1:%d" % free, "--smtp", "127.0.0.1:%d" % port,
                "--db", str(tmp_path / "mail.db"), timeout=20)
        err = r.stderr.decode("utf-8", "replace")
        assert r.returncode == 2, show(r)
        lines = [l for l in err.splitlines() if l.strip() and "listening on" not in l
                 and not l.startswith("mailsink: database")]
        assert 1 <= len(lines) <= 2, err
        assert str(port) in lines[0], err
        assert not is_listening(free)
    finally:
        busy.close()


def test_help_and_version(tmp_path):
    r = cli(tmp_path, "--help")
    assert r.returncode == 0, show(r)
    out = r.stdout.decode()
    flags = ["--smtp", "--db", "--hostname", "--max-message-size", "--max-recipients",
             "--max-messages", "--max-age", "--command-timeout", "--data-timeout",
             "--stop-grace", "--bare-lf", "-v", "--log-format", "--deliver-exec",
             "--validate-host-exec", "--validate-sender-exec", "--validate-recipient-exec",
             "--exec-timeout", "--accept-rcpt", "--reject-rcpt", "--accept-sender",
             "--reject-sender", "--allow-host", "--deny-host", "--maildir", "--mbox",
             "--eml-dir", "--config", "--version", "list", "show", "raw", "delete", "wait"]
    missing = [f for f in flags if f not in out]
    assert not missing, "--help does not mention %r" % missing
    r = cli(tmp_path, "--version")
    assert r.returncode == 0, show(r)
    assert re.search(rb"\b\d+\.\d+\.\d+\b", r.stdout), show(r)


def test_man_page_documents_flags_and_config_file(tmp_path):
    path = os.path.join(REPO, "docs", "mailsink.1")
    assert os.path.exists(path), "no man page docs/mailsink.1"
    text = open(path, encoding="utf-8").read().replace("\\-", "-")
    for f in ["--smtp", "--db", "--max-messages", "--max-age", "--bare-lf", "--log-format",
              "--deliver-exec", "--validate-sender-exec", "--accept-rcpt", "--deny-host",
              "--maildir", "--mbox", "--eml-dir", "--config", "MAILSINK_", "XDG_DATA_HOME"]:
        assert f in text, "man page does not mention %s" % f
    # and every flag --help lists (a new setting comes with its man page entry)
    r = cli(tmp_path, "--help")
    assert r.returncode == 0, show(r)
    flags = set(re.findall(r"(--[a-z][a-z0-9-]+)", r.stdout.decode()))
    assert len(flags) > 40, flags
    missing = sorted(f for f in flags if not re.search(re.escape(f) + r"\b(?!-)", text))
    assert not missing, "man page does not document %s" % missing


# -- precedence: built-in default < config file < environment < command line --------------------


def greeting(ms):
    c = RawClient(ms.addr, ms.port)
    try:
        code, text = c.reply()
        assert code == 220, text
        c.cmd("QUIT")
        return text[0].split()[0]
    finally:
        c.close()


def test_hostname_precedence(start, tmp_path):
    conf = tmp_path / "mailsink.conf"
    conf.write_text("hostname = file.example\nsmtp = 127.0.0.1:0\ndb = %s\n"
                    % (tmp_path / "conf.db"))
    ms = start("--config", str(conf), smtp=False, db=None, hostname=False)
    assert greeting(ms) == "file.example"
    assert ms.stop() == 0  # one server at a time on the file's database
    env = clean_env(tmp_path, {"MAILSINK_HOSTNAME": "env.example"})
    ms2 = start("--config", str(conf), smtp=False, db=None, hostname=False, env=env)
    assert greeting(ms2) == "env.example"
    assert ms2.stop() == 0
    ms3 = start("--config", str(conf), "--hostname", "flag.example", smtp=False, db=None,
                hostname=False, env=env)
    assert greeting(ms3) == "flag.example"
    # the config file's db was used by all three
    assert (tmp_path / "conf.db").exists()
    assert not (tmp_path / "xdg" / "mailsink" / "mailsink.db").exists()


def test_config_file_from_environment(start, tmp_path):
    conf = tmp_path / "other.conf"
    conf.write_text("hostname = viaenv.example\n")
    env = clean_env(tmp_path, {"MAILSINK_CONFIG": str(conf)})
    ms = start(env=env, hostname=False)
    assert greeting(ms) == "viaenv.example"


def test_config_file_comments_blank_lines_and_spaces(start, tmp_path):
    conf = tmp_path / "mailsink.conf"
    conf.write_text("# a comment\n\n   hostname   =   spaced.example   \n"
                    "max-recipients=2\n")
    ms = start("--config", str(conf), hostname=False)
    assert greeting(ms) == "spaced.example"
    with ms.raw() as c:
        c.reply()
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("MAIL FROM:<a@x.example>")[0] == 250
        assert c.cmd("RCPT TO:<r1@y.example>")[0] == 250
        assert c.cmd("RCPT TO:<r2@y.example>")[0] == 250
        assert c.cmd("RCPT TO:<r3@y.example>")[0] == 452


def test_env_beats_file_and_flag_beats_env_for_numbers(start, tmp_path):
    conf = tmp_path / "mailsink.conf"
    conf.write_text("max-recipients = 1\n")
    env = clean_env(tmp_path, {"MAILSINK_MAX_RECIPIENTS": "2"})

    def rcpts_ok(ms):
        with ms.raw() as c:
            c.reply()
            c.cmd("EHLO client.test")
            c.cmd("MAIL FROM:<a@x.example>")
            n = 0
            for i in range(5):
                if c.cmd("RCPT TO:<r%d@y.example>" % i)[0] == 250:
                    n += 1
        assert ms.stop() == 0  # one server at a time on the database
        return n

    assert rcpts_ok(start("--config", str(conf))) == 1
    assert rcpts_ok(start("--config", str(conf), env=env)) == 2
    assert rcpts_ok(start("--config", str(conf), "--max-recipients", "3", env=env)) == 3


def test_repeatable_smtp_from_env_and_ipv6(start, tmp_path):
    if not have_ipv6():
        pytest.skip("no ::1 on this machine")
    env = clean_env(tmp_path, {"MAILSINK_SMTP": "127.0.0.1:0,[::1]:0"})
    ms = start(env=env, smtp=False, listeners=2)
    addrs = sorted(a for a, _ in ms.listeners)
    assert addrs == ["127.0.0.1", "::1"], ms.listeners
    ids = []
    for addr, port in ms.listeners:
        with ms.smtp(addr=addr, port=port) as s:
            s.sendmail("a@x.example", ["b@y.example"], simple("via %s" % addr))
            ids.append(s.last_id())
    with Db(ms.db) as db:
        assert sorted(db.ids()) == sorted(ids)
        if "client_addr" in db.columns:
            assert sorted(db.row(i)["client_addr"] for i in ids) == ["127.0.0.1", "::1"]


def test_repeatable_smtp_flags_and_file(start, tmp_path):
    conf = tmp_path / "mailsink.conf"
    conf.write_text("smtp = 127.0.0.1:0\nsmtp = 127.0.0.1:0\n")
    ms = start("--config", str(conf), smtp=False, listeners=2)
    ports = {p for _, p in ms.listeners}
    assert len(ports) == 2
    for port in ports:
        with ms.smtp(port=port) as s:
            assert s.noop()[0] == 250


def test_max_message_size_enforced_and_advertised(start):
    ms = start("--max-message-size", "2000")
    with ms.smtp() as s:
        s.ehlo()
        assert s.esmtp_features.get("size") == "2000", s.esmtp_features
        code, _ = s.mail("a@x.example")
        assert code == 250
        assert s.rcpt("b@y.example")[0] == 250
        code, text = s.data(b"Subject: big\r\n\r\n" + b"z" * 70 + (b"\r\n" + b"z" * 70) * 40)
        assert code == 552, text
    with Db(ms.db) as db:
        assert db.count() == 0
    ms2 = start("--max-message-size", "10k")
    with ms2.smtp() as s:
        s.ehlo()
        assert s.esmtp_features.get("size") in ("10240", "10000"), s.esmtp_features


def test_command_timeout(start):
    ms = start("--command-timeout", "1")
    with ms.raw() as c:
        assert c.reply()[0] == 220
        code, text = c.reply()  # nothing sent: the timeout's 421
        assert code == 421 and "4.4.2" in text[0], text
        assert c.closed_by_peer(5)


def test_winning_source_replaces_repeatable_values(start, tmp_path):
    other = free_port()
    env = clean_env(tmp_path, {"MAILSINK_SMTP": "127.0.0.1:%d" % other})
    ms = start(env=env)  # --smtp 127.0.0.1:0 on the command line
    assert ms.wait_for_line(r"database", timeout=5)
    assert len(ms.wait_listening(1)) == 1
    assert not any("127.0.0.1:%d" % other in l for l in ms.lines), ms.stderr()
    assert not is_listening(other)


def test_empty_environment_variable_counts_as_unset(start, tmp_path):
    env = clean_env(tmp_path, {"MAILSINK_MAX_RECIPIENTS": "", "MAILSINK_HOSTNAME": ""})
    ms = start(env=env)
    assert greeting(ms) == "mailsink.test"


def test_durations_with_units_are_accepted(start):
    ms = start("--max-age", "1h30m", "--command-timeout", "2m", "--stop-grace", "5s")
    assert greeting(ms) == "mailsink.test"
